"""`scrm replay`: landed pushes re-verified, re-mapped with the current rules, given replay ids."""

import json
from dataclasses import replace
from datetime import date

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryQueue
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.events import original_event_id, replay_event_id
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.replay import WebhookReplay
from scrm_sync.services.webhooks import WebhookIngest

from tests.unit.channels.test_douyin import CREDS, RECEIVED, envelope, req

DAY = RECEIVED.date()


def like_rules(field: str):
    rule = {"source": f"content.{field}", "target": "interaction_index", "transform": "int"}
    return load_rules({"mappings": {"douyin": {"new_video_digg": [rule]}}})


@pytest.fixture
def landed():
    """A landing bucket holding two authentic pushes, a URL check and a forged push."""
    landing, credentials = InMemoryLanding(), load_credentials({"douyin": CREDS})
    ingest = WebhookIngest(
        {"douyin": DouyinAdapter()}, lambda: credentials, landing, InMemoryQueue(), lambda: like_rules("x")
    )
    requests = [
        req(envelope("new_video_digg", {"item_id": "v", "like_count": 7}), {"msg-id": "m-1"}),
        req(envelope("new_follow_action", {}), {"msg-id": "m-2"}),
        req(json.dumps({"event": "verify_webhook", "content": {"challenge": 1}}).encode()),
        req(b"{}", {"x-douyin-signature": "forged"}),
    ]
    for number, request in enumerate(requests):
        ingest.handle(replace(request, request_id=f"req-{number}"))
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


def test_a_tampered_landing_object_is_refused(landed):
    landing, credentials = landed
    (key,) = [k for k in landing.keys("raw/") if b"like_count" in landing.get(k)]
    document = json.loads(landing.get(key))
    document["body"] = document["body"].replace("open-user-1", "open-attacker")
    landing.put(key, json.dumps(document).encode(), {})
    landing.put("raw/webhooks/douyin/dt=" + DAY.isoformat() + "/zz-broken.json", b"\xff not json", {})
    queue = InMemoryQueue()
    report = replayer(landing, credentials, like_rules("like_count"), queue).replay("douyin", DAY, DAY)
    reasons = sorted(s["reason"].split(":")[0] for s in report.skipped)
    assert reasons == ["signature", "unreadable landing object"]
    assert report.events == 1


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
