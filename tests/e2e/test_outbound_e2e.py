"""Outbound sync through `scrm local run`: profile changes reach WeCom tags (the fake WeCom the
stack serves), signed webhooks (receivers that verify with the `standardwebhooks` library) and
the profile event bus, with retries, dead letters and `scrm outbound replay`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.fake_receiver import RECEIVER_SECRET, FakeReceiver, running_receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEV_CHANNELS = json.loads((ROOT / "config/channels.dev.json").read_text())
CORP_ID = DEV_CHANNELS["wecom"]["corp_id"]


class Receivers:
    def __init__(self, healthy: FakeReceiver, flaky: FakeReceiver, dead: FakeReceiver) -> None:
        self.healthy, self.flaky, self.dead = healthy, flaky, dead


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    with (
        running_receiver() as healthy,
        running_receiver(fail_first=3) as flaky,
        running_receiver(always_fail=True) as dead,
    ):
        yield Receivers(healthy, flaky, dead)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receivers: Receivers) -> Iterator[RunningStack]:
    channels = dict(DEV_CHANNELS)
    channels["outbound_webhooks"] = {
        "erp": {"url": receivers.healthy.url, "secret": RECEIVER_SECRET, "fields": ["member_level", "name"]},
        "pos": {"url": receivers.flaky.url, "secret": RECEIVER_SECRET, "fields": ["member_level"]},
        "bi": {"url": receivers.dead.url, "secret": RECEIVER_SECRET, "fields": ["member_level"]},
    }
    path = tmp_path_factory.mktemp("outbound") / "channels.json"
    path.write_text(json.dumps(channels, ensure_ascii=False))
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path)}) as running:
        yield running


def post(stack: RunningStack, *events: dict[str, Any]) -> None:
    status, report = stack.call("POST", "/events", {"events": list(events)})
    assert status == 202 and report["rejected"] == 0, report


def mdm_level(phone: str, level: str, run: str, minute: int = 0, **attributes: Any) -> dict[str, Any]:
    return {
        "event_id": f"mdm-{run}-{level}-{minute}",
        "source": "mdm",
        "type": "profile.updated",
        "occurred_at": f"2026-12-03T09:{minute // 60:02d}:{minute % 60:02d}+08:00",
        "identifiers": [{"type": "phone", "value": phone}],
        "attributes": {"member_level": level, **attributes},
    }


def deliveries_of(receiver: FakeReceiver, profile_id: str) -> list[dict[str, Any]]:
    with receiver.lock:
        return [d for d in receiver.deliveries.values() if d.get("profile_id") == profile_id]


def profile_id_of(stack: RunningStack, phone: str) -> str:
    def found() -> str | None:
        status, body = stack.call("GET", f"/profiles?type=phone&value={phone}")
        return body["profile_id"] if status == 200 else None

    return str(wait_for(found, timeout=60))


def test_every_delivery_is_signed_and_a_receiver_that_recovers_gets_everything(stack, receivers):
    run = uuid.uuid4().hex[:8]
    phone = f"137{int(run, 16) % 10**8:08d}"
    post(stack, mdm_level(phone, "silver", run, 1, name="赵六"))
    profile_id = profile_id_of(stack, phone)

    def levels(receiver: FakeReceiver) -> list[str]:
        found = sorted(deliveries_of(receiver, profile_id), key=lambda d: d["sequence"])
        return [d["fields"]["member_level"]["new"] for d in found if "member_level" in d.get("fields", {})]

    wait_for(lambda: levels(receivers.healthy) == ["silver"], timeout=90)
    post(stack, mdm_level(phone, "gold", run, 2))  # a second change (one batch would merge the two)
    wait_for(lambda: levels(receivers.healthy) == ["silver", "gold"], timeout=90)
    wait_for(lambda: levels(receivers.flaky) == ["silver", "gold"], timeout=90)
    assert not receivers.healthy.rejected and not receivers.flaky.rejected  # every delivery verified
    first = sorted(deliveries_of(receivers.healthy, profile_id), key=lambda d: d["sequence"])[0]
    assert set(first["fields"]) == {"member_level", "name"}  # what the subscription asked for
    assert {d["id"] for d in deliveries_of(receivers.flaky, profile_id)} <= {
        d["id"] for d in deliveries_of(receivers.healthy, profile_id)
    }  # the same change has the same id at every receiver
    failed_then_ok = [a for a in receivers.flaky.attempts if a.status == 500]
    assert len(failed_then_ok) == 3
    assert all(a.headers["webhook-id"] == failed_then_ok[0].headers["webhook-id"] for a in failed_then_ok)


def test_a_receiver_that_never_recovers_ends_in_the_dead_letter_queue_and_replays(stack, receivers):
    run = uuid.uuid4().hex[:8]
    phone = f"136{int(run, 16) % 10**8:08d}"
    post(stack, mdm_level(phone, "normal", run, 3))
    profile_id = profile_id_of(stack, phone)
    wait_for(lambda: deliveries_of(receivers.healthy, profile_id), timeout=90)

    def dead_lettered() -> bool:
        return stack.dead_letters().get(f"{stack.env['SCRM_STACK_NAME']}-WebhookDeliveryDeadLetterQueue.fifo", 0) > 0

    wait_for(dead_lettered, timeout=120)
    assert not deliveries_of(receivers.dead, profile_id)

    dry = stack.scrm("outbound", "replay", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["webhooks"]["kept"] >= 1 and json.loads(dry.stdout)["webhooks"]["moved"] == 0

    receivers.dead.always_fail = False  # the receiver is fixed
    replayed = stack.scrm("outbound", "replay", "--destination", "webhooks", "--subscription", "bi")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["webhooks"]["moved"] >= 1
    wait_for(lambda: deliveries_of(receivers.dead, profile_id), timeout=60)
    [delivered] = deliveries_of(receivers.dead, profile_id)
    assert delivered["fields"]["member_level"]["new"] == "normal"
    assert not receivers.dead.rejected


def test_changes_reach_the_event_bus_for_rules_to_route(stack):
    events, sqs = stack.client("events"), stack.client("sqs")
    bus = f"{stack.env['SCRM_STACK_NAME']}-profiles"
    queue_url = sqs.create_queue(QueueName=f"bus-watch-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="watch-profile-changes",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["scrm.sync"], "detail-type": ["scrm.profile.changed"]}),
    )
    events.put_targets(Rule="watch-profile-changes", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    run = uuid.uuid4().hex[:8]
    phone = f"135{int(run, 16) % 10**8:08d}"
    post(stack, mdm_level(phone, "gold", run, 4))
    profile_id = profile_id_of(stack, phone)

    def on_the_bus() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            event = json.loads(message["Body"])
            if event["detail"]["profile_id"] == profile_id:
                return event
        return None

    event = wait_for(on_the_bus, timeout=90)
    assert event["source"] == "scrm.sync" and event["detail-type"] == "scrm.profile.changed"
    assert event["detail"]["fields"]["member_level"]["new"] == "gold"
