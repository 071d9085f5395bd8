"""`scrm replay` over landed pushes of which some cannot be mapped: the run finishes, the good
events are enqueued, each bad push is reported (its batched object's key, its request id, reason,
kind); and the webhook's mapping-failure records are listed for the operator, each naming the
push a replay picks out of its batched object."""

import gzip
import json
from dataclasses import replace
from datetime import date, timedelta

from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream, InMemoryQueue
from scrm_sync.channels.doudian import DoudianAdapter
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import Rules, load_rules
from scrm_sync.services.replay import WebhookReplay
from scrm_sync.services.webhooks import WebhookIngest

from tests.landing_support import deliver
from tests.unit.channels import test_doudian as doudian
from tests.unit.channels import test_douyin as douyin
from tests.unit.services.test_unmappable_pushes import OVERFLOWING_DIGG, doudian_message

DAY = douyin.RECEIVED.date()
ADAPTERS = {"douyin": DouyinAdapter(), "doudian": DoudianAdapter()}
CREDENTIALS = load_credentials({"douyin": douyin.CREDS, "doudian": doudian.CREDS})
DEFAULT_RULES = load_rules({})  # douyin likes: content.digg_count -> int
ITEM_RULES = load_rules(
    {
        "mappings": {
            "douyin": {"new_video_digg": [{"source": "content.item_id", "target": "last_liked_video"}]}
        }
    }
)
# doudian points -> int; douyin keeps the default
POINTS_RULES = load_rules(
    {"mappings": {"doudian": {"101": [{"source": "data.points", "target": "points", "transform": "int"}]}}}
)


def land_pushes() -> InMemoryLanding:
    """What the webhook landed on DAY (through the delivery stream, two pushes per batched object):
    two good Douyin pushes, the overflowing one, and a Doudian push with one good and one
    overflowing message."""
    landing, stream = InMemoryLanding(), InMemoryPushStream()
    webhook = WebhookIngest(ADAPTERS, lambda: CREDENTIALS, landing, stream, lambda: POINTS_RULES)
    digg = douyin.envelope("new_video_digg", {"item_id": "v-1", "digg_count": 7})
    for number, request in enumerate(
        [
            douyin.req(digg, {"msg-id": "m-1"}),
            douyin.req(douyin.envelope("new_follow_action", {}), {"msg-id": "m-2"}),
            douyin.req(OVERFLOWING_DIGG, {"msg-id": "m-inf"}),
        ]
    ):
        webhook.handle(replace(request, request_id=f"douyin-{number}"))
    body = json.dumps([doudian_message("d-good", 5), doudian_message("d-bad", "1e400")])
    webhook.handle(replace(doudian.req(body.replace('"1e400"', "1e400").encode()), request_id="doudian-0"))
    deliver(stream, landing)
    return landing


def replayer(landing: InMemoryLanding, rules: Rules, queue: InMemoryQueue) -> WebhookReplay:
    return WebhookReplay(ADAPTERS, lambda: CREDENTIALS, landing, queue, lambda: rules)


def raw_key(landing: InMemoryLanding, request_id: str) -> str:
    """The batched landing object holding this push."""
    (key,) = [
        k
        for k in landing.keys("raw/")
        if f'"request_id": "{request_id}"'.encode() in gzip.decompress(landing.get(k))
    ]
    return key


def replayed_ids(queue: InMemoryQueue) -> set[str]:
    return {json.loads(message)["event_id"] for message in queue.messages}


def test_an_unmappable_object_is_skipped_and_reported_and_the_run_finishes():
    landing, queue = land_pushes(), InMemoryQueue()
    report = replayer(landing, DEFAULT_RULES, queue).replay("douyin", DAY, DAY, "r1")
    assert (report.pushes, report.events) == (3, 2)
    assert replayed_ids(queue) == {"m-1~replay:r1", "m-2~replay:r1"}
    (skipped,) = report.skipped
    assert (skipped["key"], skipped["request_id"]) == (raw_key(landing, "douyin-2"), "douyin-2")
    assert skipped["kind"] == "new_video_digg" and skipped["stage"] == "mapping" and skipped["reason"]
    assert report.as_dict()["skipped"] == [skipped]


def test_after_a_rule_fix_the_same_objects_replay_without_skips():
    landing, queue = land_pushes(), InMemoryQueue()
    report = replayer(landing, ITEM_RULES, queue).replay("douyin", DAY, DAY, "fix")
    assert (report.pushes, report.events, report.skipped) == (3, 3, [])
    assert "m-inf~replay:fix" in replayed_ids(queue)


def test_the_good_messages_of_a_partly_unmappable_push_are_replayed():
    landing, queue = land_pushes(), InMemoryQueue()
    report = replayer(landing, POINTS_RULES, queue).replay("doudian", DAY, DAY, "r2")
    assert (report.pushes, report.events) == (1, 1) and replayed_ids(queue) == {"d-good~replay:r2"}
    (skipped,) = report.skipped
    assert (skipped["key"], skipped["request_id"], skipped["kind"]) == (
        raw_key(landing, "doudian-0"),
        "doudian-0",
        "101",
    )


def test_unreadable_and_unparseable_objects_are_skipped_with_their_key():
    landing, queue = land_pushes(), InMemoryQueue()
    folder = f"raw/webhooks/douyin/dt={DAY.isoformat()}/"
    landing.put(folder + "zz-nested.json", b"[" * 100_000 + b"]" * 100_000, {})  # RecursionError
    landing.put(folder + "zz-headers.json", json.dumps({"channel": "douyin", "headers": []}).encode(), {})
    report = replayer(landing, ITEM_RULES, queue).replay("douyin", DAY, DAY)
    assert sorted(s["key"] for s in report.skipped) == [folder + "zz-headers.json", folder + "zz-nested.json"]
    assert all(s["reason"].startswith("unreadable landing object") for s in report.skipped)
    assert report.events == 3


def test_mapping_failure_records_are_listed_by_channel_and_day():
    landing = land_pushes()
    replay = replayer(landing, DEFAULT_RULES, InMemoryQueue())
    records = replay.mapping_failures()
    assert [(r["channel"], r["request_id"]) for r in records] == [
        ("doudian", "doudian-0"),
        ("douyin", "douyin-2"),
    ]
    (record,) = replay.mapping_failures("douyin", since=DAY)
    assert record["key"].startswith(f"quarantine/mapping-failures/douyin/dt={DAY.isoformat()}/")
    assert record["landing_prefix"] == f"raw/webhooks/dt={DAY.isoformat()}/"
    assert raw_key(landing, "douyin-2").startswith(record["landing_prefix"])
    assert record["replay"].endswith(f"--since {DAY.isoformat()} --request-id douyin-2")
    # and that is what `scrm replay` picks out of the day's batched objects
    queue = InMemoryQueue()
    picked = replayer(landing, ITEM_RULES, queue).replay("douyin", DAY, DAY, "fix", request_id="douyin-2")
    assert (picked.pushes, picked.events) == (1, 1) and replayed_ids(queue) == {"m-inf~replay:fix"}
    assert [f["kind"] for f in record["failures"]] == ["new_video_digg"]
    assert replay.mapping_failures("douyin", since=DAY + timedelta(days=1)) == []
    assert replay.mapping_failures("youzan") == []
    assert replay.mapping_failures(since=date(2020, 1, 1)) == records
