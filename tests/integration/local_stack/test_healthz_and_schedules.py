"""/healthz before and after provisioning, backlog draining; schedules fired on demand."""

from __future__ import annotations

from pathlib import Path

from scrm_local.schedules import scheduled_event
from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import gate_closed, get_json, recorded, settings, wait_for


def test_healthz_is_503_until_ready_then_reports_the_backlog_draining(config_dir: Path) -> None:
    stack = LocalStack(settings(config_dir))
    try:
        stack.start_servers()
        port = stack.settings.http_port
        assert get_json(port, "/healthz") == (503, {"status": "starting"})
        assert get_json(port, "/act/dict") == (503, {"message": "Service Unavailable"})
        stack.provision()
        assert get_json(port, "/healthz") == (200, {"status": "ok", "backlog": 0})
        assert stack.clients is not None
        # hold the batches in the handler: the backlog is observable, not a race
        with gate_closed(stack, "SqsWorkerFunction"):
            sqs = stack.clients("sqs")
            url = sqs.get_queue_url(QueueName=f"{stack.settings.stack_name}-WorkQueue")["QueueUrl"]
            for i in range(7):
                sqs.send_message(QueueUrl=url, MessageBody=f"hold-{i}")
            stack.clients("kinesis").put_record(
                StreamName=f"{stack.settings.stack_name}-ChangesStream", Data=b"x", PartitionKey="p"
            )
            status, body = get_json(port, "/healthz")
            assert status == 200 and body["backlog"] > 0
        wait_for(lambda: get_json(port, "/healthz") == (200, {"status": "ok", "backlog": 0}))
        processed = [r["body"] for batch in recorded(stack, "SqsWorkerFunction") for r in batch]
        assert sorted(processed) == [f"hold-{i}" for i in range(7)]
    finally:
        stack.stop()


def test_schedules_fire_on_demand_with_the_eventbridge_shape(stack: LocalStack) -> None:
    assert stack.template is not None
    schedules = {s.event_name: s for s in stack.template.function("ScheduledFunction").schedules}
    result = stack.invoke("ScheduledFunction", scheduled_event(schedules["Nightly"]))
    event = result["received"]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [
        f"arn:aws:events:us-east-1:123456789012:rule/{stack.settings.stack_name}-ScheduledFunctionNightly"
    ]
    assert event["detail"] == {} and event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert stack.invoke("ScheduledFunction", scheduled_event(schedules["Hourly"]))["received"] == {
        "job": "reconcile"
    }


def test_rate_schedules_run_when_enabled(config_dir: Path) -> None:
    from scrm_local.schedules import ScheduleRunner
    from scrm_local.template import ScheduleSpec

    fired: list[object] = []
    spec = ScheduleSpec("Fn", "Fast", "Schedule", "rate(1 minute)", "arn:rule")
    runner = ScheduleRunner([spec], lambda fid, event: fired.append((fid, event)))
    runner.due = [(spec, 0.05)]  # a minute is too long for a test
    runner.start()
    try:
        wait_for(lambda: len(fired) >= 2)
    finally:
        runner.stop()
    assert fired[0][0] == "Fn"  # type: ignore[index]
