"""`scrm replay`: landed pushes re-verified, re-mapped with the current rules, given replay ids; read
from the delivery stream's batched objects and from the older one-object-per-push layout."""

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream, InMemoryQueue
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.events import original_event_id, replay_event_id
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.replay import WebhookReplay
from scrm_sync.services.webhooks import WebhookIngest

from tests.landing_support import deliver, land_one_object_per_push
from tests.unit.channels.test_douyin import CREDS, RECEIVED, envelope, req

DAY = RECEIVED.date()


def like_rules(field: str):
    rule = {"source": f"content.{field}", "target": "interaction_index", "transform": "int"}
    return load_rules({"mappings": {"douyin": {"new_video_digg": [rule]}}})


def webhook(credentials, stream):
    return WebhookIngest(
        {"douyin": DouyinAdapter()}, lambda: credentials, InMemoryLanding(), stream, lambda: like_rules("x")
    )


@pytest.fixture(params=["batched", "one-object-per-push"])
def landed(request):
    """A landing bucket holding two authentic pushes (a URL check is answered, never landed; a
    forged push sits in quarantine/), in the delivery stream's batched layout or the old one."""
    landing, credentials, stream = (
        InMemoryLanding(),
        load_credentials({"douyin": CREDS}),
        InMemoryPushStream(),
    )
    ingest = webhook(credentials, stream)
    requests = [
        req(envelope("new_video_digg", {"item_id": "v", "like_count": 7}), {"msg-id": "m-1"}),
        req(envelope("new_follow_action", {}), {"msg-id": "m-2"}),
        req(json.dumps({"event": "verify_webhook", "content": {"challenge": 1}}).encode()),
        req(b"{}", {"x-douyin-signature": "forged"}),
    ]
    for number, push in enumerate(requests):
        ingest.handle(replace(push, request_id=f"req-{number}"))
    if request.param == "batched":
        deliver(stream, landing)
    else:
        land_one_object_per_push(stream, landing)
    return landing, credentials


def replayer(landing, credentials, rules, queue):
    return WebhookReplay({"douyin": DouyinAdapter()}, lambda: credentials, landing, queue, lambda: rules)


def test_replay_remaps_landed_pushes_with_replay_ids(landed):
    landing, credentials = landed
    queue = InMemoryQueue()
    report = replayer(landing, credentials, like_rules("like_count"), queue).replay("douyin", DAY, DAY, "r1")
    # URL checks are answered, not landed; the forged push sits in quarantine/, never replayed
    assert (report.pushes, report.events, report.skipped) == (2, 2, [])
    events = {json.loads(m)["event_id"]: json.loads(m) for m in queue.messages}
    assert set(events) == {"m-1~replay:r1", "m-2~replay:r1"}
    assert events["m-1~replay:r1"]["attributes"]["interaction_index"] == 7


def test_a_tampered_landing_object_is_refused():
    landing, credentials, stream = (
        InMemoryLanding(),
        load_credentials({"douyin": CREDS}),
        InMemoryPushStream(),
    )
    ingest = webhook(credentials, stream)
    ingest.handle(req(envelope("new_video_digg", {"item_id": "v", "like_count": 7}), {"msg-id": "m-1"}))
    ingest.handle(replace(req(envelope("new_follow_action", {}), {"msg-id": "m-2"}), request_id="req-2"))
    land_one_object_per_push(stream, landing)
    (key,) = [k for k in landing.keys("raw/") if b"like_count" in landing.get(k)]
    document = json.loads(landing.get(key))
    document["body"] = document["body"].replace("open-user-1", "open-attacker")
    landing.put(key, json.dumps(document).encode(), {})
    landing.put("raw/webhooks/douyin/dt=" + DAY.isoformat() + "/zz-broken.json", b"\xff not json", {})
    landing.put("raw/webhooks/dt=" + DAY.isoformat() + "/zz-broken.gz", b"\x1f\x8b truncated", {})
    queue = InMemoryQueue()
    report = replayer(landing, credentials, like_rules("like_count"), queue).replay("douyin", DAY, DAY)
    reasons = sorted(s["reason"].split(":")[0] for s in report.skipped)
    assert reasons == ["signature", "unreadable landing object", "unreadable landing object"]
    assert report.events == 1


def test_one_push_is_picked_out_of_its_batched_object_and_a_duplicate_line_is_replayed_once():
    landing, credentials, stream = (
        InMemoryLanding(),
        load_credentials({"douyin": CREDS}),
        InMemoryPushStream(),
    )
    ingest = webhook(credentials, stream)
    for number in range(3):
        push = req(
            envelope("new_video_digg", {"item_id": "v", "like_count": number}), {"msg-id": f"m-{number}"}
        )
        ingest.handle(replace(push, request_id=f"req-{number}"))
    stream.records.append(stream.records[1])  # the stream delivers at least once
    assert len(deliver(stream, landing, per_object=10)) == 1
    queue = InMemoryQueue()
    replay = replayer(landing, credentials, like_rules("like_count"), queue)

    report = replay.replay("douyin", DAY, DAY, "one", request_id="req-1")
    assert (report.pushes, report.events) == (1, 1)
    assert [json.loads(m)["event_id"] for m in queue.messages] == ["m-1~replay:one"]

    report = replay.replay("douyin", DAY, DAY, "all")
    assert (report.pushes, report.events) == (3, 3)  # the duplicated line once


def test_a_push_in_the_next_days_object_is_replayed_with_its_own_day():
    """Firehose dates an object by its oldest record's arrival: a push received at 23:59:59.9 can
    sit in the next day's object, and one received after midnight in the previous day's."""
    landing, credentials, stream = (
        InMemoryLanding(),
        load_credentials({"douyin": CREDS}),
        InMemoryPushStream(),
    )
    ingest = webhook(credentials, stream)
    ingest.handle(req(envelope("new_video_digg", {"item_id": "v", "like_count": 1}), {"msg-id": "m-late"}))
    deliver(stream, landing, day=DAY + timedelta(days=1))
    queue = InMemoryQueue()
    replay = replayer(landing, credentials, like_rules("like_count"), queue)
    assert replay.replay("douyin", DAY, DAY).pushes == 1
    assert replay.replay("douyin", DAY + timedelta(days=1), DAY + timedelta(days=1)).pushes == 0


def test_days_outside_the_range_are_not_read_and_bad_ranges_refused(landed):
    landing, credentials = landed
    queue = InMemoryQueue()
    replay = replayer(landing, credentials, like_rules("like_count"), queue)
    assert replay.replay("douyin", date(2026, 1, 1), date(2026, 1, 31)).pushes == 0
    with pytest.raises(ValueError):
        replay.replay("douyin", DAY, date(2020, 1, 1))
    with pytest.raises(LookupError):
        replay.replay("youzan", DAY)


def test_replay_ids_keep_their_original():
    assert original_event_id(replay_event_id("m-1", "a")) == "m-1"
    assert replay_event_id(replay_event_id("m-1", "a"), "b") == "m-1~replay:b"
