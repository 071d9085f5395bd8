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
from scrm_sync.domain.followers import follower_field
from scrm_sync.domain.rules import load_rules

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.e2e.test_webhooks_e2e import raw, wecom_push
from tests.fake_receiver import RECEIVER_SECRET, FakeReceiver, running_receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEV_CHANNELS = json.loads((ROOT / "config/channels.dev.json").read_text())
CORP_ID = DEV_CHANNELS["wecom"]["corp_id"]
DEV_RULES = load_rules(json.loads((ROOT / "config/rules.dev.json").read_text()))
MEMBERS = ("zhangsan", "lisi")
MARK_TAG = "/cgi-bin/externalcontact/mark_tag"
ADD_CORP_TAG = "/cgi-bin/externalcontact/add_corp_tag"


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
    # retries as in AWS (a failed message waits its backoff), on a shorter schedule: 1 s, 2 s, 4 s ...
    # and the dead-letter queue after 5 attempts
    overrides = "RetryBackoffBaseSeconds=1 OutboundMaxReceiveCount=5"
    with start_local_stack(
        {"SCRM_CHANNELS_FILE": str(path), "SCRM_PARAMETER_OVERRIDES": overrides}
    ) as running:
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


def wait_for_quietly(predicate: Any, seconds: float) -> Any:
    """predicate()'s value once truthy within `seconds`, else its last (falsy) value."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


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
    # FIFO per subscription and profile: "gold" waited until "silver" got through
    succeeded = [json.loads(a.body)["sequence"] for a in receivers.flaky.attempts if a.status == 200]
    assert succeeded == sorted(succeeded)


def test_a_receiver_that_never_recovers_ends_in_the_dead_letter_queue_and_replays(stack, receivers):
    run = uuid.uuid4().hex[:8]
    phone = f"136{int(run, 16) % 10**8:08d}"
    post(stack, mdm_level(phone, "normal", run, 3))
    profile_id = profile_id_of(stack, phone)
    wait_for(lambda: deliveries_of(receivers.healthy, profile_id), timeout=90)

    def failed_attempts() -> int:
        with receivers.dead.lock:
            return sum(profile_id.encode() in a.body and a.status >= 500 for a in receivers.dead.attempts)

    # every attempt OutboundMaxReceiveCount (5 here) allows fails; the next receive dead-letters it
    wait_for(lambda: failed_attempts() >= 5, timeout=120)
    assert not deliveries_of(receivers.dead, profile_id)
    dead_letter_queue = f"{stack.env['SCRM_STACK_NAME']}-WebhookDeliveryDeadLetterQueue.fifo"
    wait_for(lambda: stack.dead_letters().get(dead_letter_queue, 0) > 0, timeout=120)

    dry = stack.scrm("outbound", "replay", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        json.loads(dry.stdout)["webhooks"]["kept"] >= 1 and json.loads(dry.stdout)["webhooks"]["moved"] == 0
    )

    receivers.dead.always_fail = False  # the receiver is fixed

    def replayed_and_delivered() -> list[dict[str, Any]]:
        # the message reaches the dead-letter queue at its next receive after the last failed
        # attempt: a replay that ran before that moved only earlier letters, so replay until it is back
        replayed = stack.scrm("outbound", "replay", "--destination", "webhooks", "--subscription", "bi")
        assert replayed.returncode == 0, replayed.stderr
        return wait_for_quietly(lambda: deliveries_of(receivers.dead, profile_id), seconds=10)

    wait_for(replayed_and_delivered, timeout=120, interval=0.5)
    assert failed_attempts() == 5  # never attempted again until replayed
    [delivered] = deliveries_of(receivers.dead, profile_id)
    assert delivered["fields"]["member_level"]["new"] == "normal"
    assert not receivers.dead.rejected


def test_changes_reach_the_event_bus_for_rules_to_route(stack):
    events, sqs = stack.client("events"), stack.client("sqs")
    bus = f"{stack.env['SCRM_STACK_NAME']}-profiles"
    queue_url = sqs.create_queue(QueueName=f"bus-watch-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="watch-profile-changes",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["scrm.sync"], "detail-type": ["scrm.profile.changed"]}),
    )
    events.put_targets(
        Rule="watch-profile-changes", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    run = uuid.uuid4().hex[:8]
    phone = f"135{int(run, 16) % 10**8:08d}"
    post(stack, mdm_level(phone, "gold", run, 4))
    profile_id = profile_id_of(stack, phone)

    def on_the_bus() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            event = json.loads(message["Body"])
            if event["detail"]["profile_id"] == profile_id and "fields" in event["detail"]["kinds"]:
                return event  # (the phone's link is a change of its own, kind "identifiers")
        return None

    event = wait_for(on_the_bus, timeout=90)
    assert event["source"] == "scrm.sync" and event["detail-type"] == "scrm.profile.changed"
    assert event["detail"]["fields"]["member_level"]["new"] == "gold"


# --- WeCom tags ----------------------------------------------------------------------------------------
def fake_wecom(stack: RunningStack) -> dict[str, Any]:
    status, state = stack.call("GET", "/__local/wecom/__inspect", api_key=None)
    assert status == 200, state
    return dict(state)


def calls(stack: RunningStack, path: str, external_userid: str | None = None) -> list[dict[str, Any]]:
    return [
        r["body"]
        for r in fake_wecom(stack)["requests"]
        if r["path"] == path
        and (external_userid is None or r["body"].get("external_userid") == external_userid)
    ]


def tags_on(stack: RunningStack, external_userid: str) -> dict[str, set[str]]:
    return {
        m["userid"]: set(m["tags"])
        for m in fake_wecom(stack)["marked"]
        if m["external_userid"] == external_userid
    }


def followed_contact(stack: RunningStack, run: str) -> tuple[str, str]:
    """A WeCom contact both members follow (known to the fake WeCom too), joined to a phone."""
    external, phone = f"wmOUT-{run}", f"138{int(run, 16) % 10**8:08d}"
    status, _ = stack.call(
        "POST",
        "/__local/wecom/__inspect/contacts",
        {"external_userid": external, "follow_user": list(MEMBERS)},
    )
    assert status == 200
    post(
        stack,
        {
            "event_id": f"wecom-follow-{run}",
            "source": "wecom",
            "type": "profile.updated",
            "occurred_at": "2026-12-01T09:00:00+08:00",
            "identifiers": [
                {"type": "wecom_external_userid", "value": external, "scope": CORP_ID},
                {"type": "phone", "value": phone},
            ],
            "attributes": {follower_field(m): m for m in MEMBERS},
        },
    )
    return external, phone


def test_raising_a_customer_to_gold_tags_them_once_for_every_following_member(stack):
    run = uuid.uuid4().hex[:8]
    external, phone = followed_contact(stack, run)
    stack.wait_drained()
    assert calls(stack, MARK_TAG, external) == []  # no rule attribute yet: nothing to write

    post(stack, mdm_level(phone, "gold", run, 10))
    wait_for(lambda: tags_on(stack, external) == {m: {"金卡"} for m in MEMBERS}, timeout=90)
    stack.wait_drained()
    marks = calls(stack, MARK_TAG, external)
    assert sorted(m["userid"] for m in marks) == sorted(MEMBERS)  # one call per following member
    gold_id = next(
        t["id"]
        for g in fake_wecom(stack)["tag_groups"]
        if g["group_name"] == "会员等级"
        for t in g["tag"]
        if t["name"] == "金卡"
    )
    assert all(m["add_tag"] == [gold_id] and "remove_tag" not in m for m in marks)
    assert [c["group_name"] for c in calls(stack, ADD_CORP_TAG)] == ["会员等级"]  # created once, all its tags
    assert {t["name"] for t in calls(stack, ADD_CORP_TAG)[0]["tag"]} == {"金卡", "银卡", "普卡"}

    # the same change delivered again (SQS after its deduplication window): no second call
    profile_id = profile_id_of(stack, phone)
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName=f"{stack.env['SCRM_STACK_NAME']}-WeComTagQueue.fifo")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps({"id": "chg_redelivered", "profile_id": profile_id, "changed_at": None}),
        MessageGroupId=profile_id,
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    stack.wait_drained()
    assert len(calls(stack, MARK_TAG, external)) == 2

    # silver: the old tag goes and the new one comes in one call per member
    post(stack, mdm_level(phone, "silver", run, 11))
    wait_for(lambda: tags_on(stack, external) == {m: {"银卡"} for m in MEMBERS}, timeout=90)
    stack.wait_drained()
    latest = calls(stack, MARK_TAG, external)[2:]
    assert len(latest) == 2 and all(m["remove_tag"] == [gold_id] and len(m["add_tag"]) == 1 for m in latest)
    assert len(calls(stack, ADD_CORP_TAG)) == 1


def test_a_wecom_callback_echoing_the_tags_is_applied_to_the_profile_but_not_written_back(stack):
    run = uuid.uuid4().hex[:8]
    external, phone = followed_contact(stack, run)
    post(stack, mdm_level(phone, "gold", run, 20))
    wait_for(lambda: tags_on(stack, external) == {m: {"金卡"} for m in MEMBERS}, timeout=90)
    stack.wait_drained()
    before = len(calls(stack, MARK_TAG))

    # WeCom tells the app a member edited the contact; the enrichment re-pulls it (with the tags)
    now = str(int(time.time()))
    inner = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[edit_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID></xml>"
    )
    query, body = wecom_push(DEV_CHANNELS["wecom"], inner, now)
    assert raw(stack, "POST", "/webhooks/wecom", query, body)[0] == 200

    def wecom_tags() -> str | None:
        status, found = stack.call("GET", f"/profiles?type=phone&value={phone}")
        return found["attributes"].get("wecom_tags") if status == 200 else None

    assert wait_for(lambda: wecom_tags() == "金卡", timeout=90)  # applied to the profile
    stack.wait_drained()
    assert len(calls(stack, MARK_TAG)) == before  # and not written back


def test_fifty_concurrent_changes_to_one_customer_end_with_the_tags_of_the_final_attributes(stack):
    run = uuid.uuid4().hex[:8]
    external, phone = followed_contact(stack, run)
    stack.wait_drained()
    levels = ("gold", "silver", "normal")
    changes = [
        {
            "event_id": f"crm-{run}-{n}",
            "source": "mdm",
            "type": "profile.updated",
            # distinct times, sent in a shuffled order: the latest occurred_at must win
            "occurred_at": f"2026-12-02T{10 + n // 60:02d}:{n % 60:02d}:00+08:00",
            "identifiers": [{"type": "phone", "value": phone}],
            "attributes": {"member_level": levels[(n * 7) % 3], "lifetime_value": (n * 733) % 9000},
        }
        for n in range(50)
    ]
    order = sorted(range(50), key=lambda n: (n * 17) % 50)
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: post(stack, changes[n]), order))
    stack.wait_drained()
    status, final = stack.call("GET", f"/profiles?type=phone&value={phone}")
    assert status == 200
    assert final["attributes"]["member_level"] == changes[49]["attributes"]["member_level"]
    wanted = {t.name for t in DEV_RULES.wecom_tags.desired(final["attributes"])}
    wait_for(lambda: tags_on(stack, external) == {m: wanted for m in MEMBERS}, timeout=120)
