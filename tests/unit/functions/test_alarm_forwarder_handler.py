"""AlarmForwarderFunction's handler with the service on in-memory fakes: the events/alarms samples
(shared with `scrm invoke`) in both shapes, partial batch failures, and its metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scrm_sync.adapters.memory import InMemorySendCounts
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.services.alarms import AlarmForwarder, RobotUnavailable
from scrm_sync.services.send_budget import SendBudget

from tests.alarm_factories import (
    LambdaContext,
    alarm_message,
    load_handler,
    sample,
    sample_alarm,
    sqs_event,
    sqs_record,
)

ROBOT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=handler-test-key"


class Robot:
    def __init__(self, fail: bool = False) -> None:
        self.posts: list[str] = []
        self.fail = fail

    def post_markdown(self, content: str) -> None:
        if self.fail:
            raise RobotUnavailable("robot answered HTTP 502")
        self.posts.append(content)


def forwarder(robot: Robot) -> AlarmForwarder:
    credentials = load_credentials({"wecom_robot": {"webhook_url": ROBOT_URL}})
    return AlarmForwarder(lambda: credentials, lambda url: robot, SendBudget(InMemorySendCounts()))


def emitted_metrics(out: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" in document:
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = document[definition["Name"]]
                found[definition["Name"]] = sum(values) if isinstance(values, list) else values
    return found


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "sync_success_rate_alarm.json",
            [
                "ALARM</font> scrm-sync-dev-SyncSuccessRateAlarm-1Q2W3E4R5T6Y",
                "OK → ALARM",
                "sync success rate (%): IF(ok + bad > 0, 100 * ok / (ok + bad), 100)",
                "< 99.9",
                "2026-11-25 10:00:30 (Asia/Shanghai)",
                "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1"
                "#alarmsV2:alarm/scrm-sync-dev-SyncSuccessRateAlarm-1Q2W3E4R5T6Y",
                "the functions' logs.\n原因 Reason: Threshold Crossed",  # description stripped
                "was less than the threshold (99.9)",
            ],
        ),
        (
            "dlq_messages_visible.json",
            [
                "ALARM</font> scrm-sync-dev-IngestDeadLetterAlarm-7U8I9O0P1A2S",
                "AWS/SQS/ApproximateNumberOfMessagesVisible MAXIMUM (QueueName=scrm-sync-dev-Ingest",
                "> 0.0",
                "2026-11-25 10:04:12 (Asia/Shanghai)",
                "redrive",
            ],
        ),
        (
            "sync_success_rate_ok.json",
            ['<font color="info">OK</font> scrm-sync-dev-SyncSuccessRateAlarm-', "ALARM → OK", "10:15:30"],
        ),
    ],
)
def test_each_sqs_sample_posts_its_markdown(monkeypatch, capsys, name: str, expected: list[str]):
    robot = Robot()
    module = load_handler(monkeypatch, forwarder(robot))
    response = module.lambda_handler(sample(name), LambdaContext())
    assert response == {"batchItemFailures": []}
    (text,) = robot.posts
    for fragment in expected:
        assert fragment in text
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["AlarmsReceived"] == 1.0 and metrics["AlarmPosts"] == 1.0


def test_the_plain_sns_sample_posts_the_same_message(monkeypatch):
    robot = Robot()
    module = load_handler(monkeypatch, forwarder(robot))
    assert module.lambda_handler(sample("sync_success_rate_alarm_sns.json"), LambdaContext()) == {
        "posts": 1,
        "alarms": 1,
    }
    via_sqs = Robot()
    load_handler(monkeypatch, forwarder(via_sqs)).lambda_handler(
        sample("sync_success_rate_alarm.json"), LambdaContext()
    )
    assert robot.posts == via_sqs.posts


def test_a_raw_delivery_body_is_the_alarm_itself(monkeypatch):
    robot = Robot()
    module = load_handler(monkeypatch, forwarder(robot))
    record = sqs_record(alarm_message("raw-alarm"))
    record["body"] = json.dumps(sample_alarm())
    assert module.lambda_handler(sqs_event([record]), LambdaContext()) == {"batchItemFailures": []}
    assert "scrm-sync-dev-SyncSuccessRateAlarm-1Q2W3E4R5T6Y" in robot.posts[0]


def test_records_the_robot_could_not_take_are_reported_as_batch_item_failures(monkeypatch, capsys):
    module = load_handler(monkeypatch, forwarder(Robot(fail=True)))
    records = [sqs_record(alarm_message(f"a-{i}"), message_id=f"id-{i}") for i in range(3)]
    response = module.lambda_handler(sqs_event(records), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": f"id-{i}"} for i in range(3)]}
    out = capsys.readouterr().out
    assert emitted_metrics(out)["AlarmsUndelivered"] == 3.0
    assert "HTTP 502" in out and "handler-test-key" not in out


def test_a_burst_batch_is_grouped_and_nothing_fails(monkeypatch):
    robot = Robot()
    module = load_handler(monkeypatch, forwarder(robot))
    records = [sqs_record(alarm_message(f"burst-{i:02d}"), message_id=f"id-{i}") for i in range(50)]
    response = module.lambda_handler(sqs_event(records), LambdaContext())
    assert response == {"batchItemFailures": []} and len(robot.posts) <= 20
    assert all(any(f"burst-{i:02d}" in p for p in robot.posts) for i in range(50))


def test_an_sns_event_that_cannot_be_posted_fails_the_invocation_for_lambdas_retries(monkeypatch):
    module = load_handler(monkeypatch, forwarder(Robot(fail=True)))
    with pytest.raises(module.AlarmsNotForwarded, match="1 of 1 alarms"):
        module.lambda_handler(sample("sync_success_rate_alarm_sns.json"), LambdaContext())


def test_a_message_that_is_not_an_alarm_is_failed_so_it_ends_in_the_dlq(monkeypatch):
    robot = Robot()
    module = load_handler(monkeypatch, forwarder(robot))
    records: list[dict[str, Any]] = [
        sqs_record("just text", message_id="junk"),
        sqs_record(alarm_message("ok")),
    ]
    response = module.lambda_handler(sqs_event(records), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "junk"}]} and len(robot.posts) == 1
