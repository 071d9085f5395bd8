"""The webhook flow (verify, map, one stream record per push, ack; quarantine the rest) with a test
channel."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.channels.base import MalformedPush, ParsedPush, SignatureInvalid, WebhookReply, WebhookRequest
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.services.ingest import QueueUnavailable
from scrm_sync.services.push_records import MAX_PUSH_RECORD_BYTES, landing_lines, read_push_events
from scrm_sync.services.webhooks import WebhookIngest


class SignedJsonChannel:
    """A minimal channel: HMAC-SHA256 of the raw body in `x-sig`, JSON canonical events."""

    name = "testchan"

    def is_handshake(self, request):
        return request.query.get("challenge") is not None

    def handshake(self, request, credentials):
        return WebhookReply(200, request.query.get("challenge", ""))

    def verify(self, request, credentials):
        expected = hmac.new(credentials["secret"].encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-sig", "")):
            raise SignatureInvalid("bad x-sig")

    def parse(self, request, credentials):
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            raise MalformedPush("not JSON") from exc
        return ParsedPush(events=[CanonicalEvent.model_validate(e) for e in payload])

    def ack(self, request, push):
        return WebhookReply(200, "success")


SECRET = "dev-test-secret"
EVENT = {
    "event_id": "t-1",
    "source": "testchan",
    "type": "profile.updated",
    "occurred_at": "2026-11-01T00:00:00Z",
    "identifiers": [{"type": "phone", "value": "13800138000"}],
}


def request(body: bytes, sig: str | None = None, method: str = "POST", query=None, channel="testchan"):
    sig = sig if sig is not None else hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(
        channel,
        method,
        {"x-sig": sig, "authorization": "Bearer x"},
        query or {},
        body,
        datetime(2026, 11, 24, tzinfo=UTC),
        "r-1",
    )


@pytest.fixture
def landing():
    return InMemoryLanding()


@pytest.fixture
def queue():
    """The ingest stream (named for what the tests read from it: the events to sync)."""
    return InMemoryPushStream()


@pytest.fixture
def ingest(landing, queue):
    credentials = load_credentials({"testchan": {"secret": SECRET}})
    return WebhookIngest({"testchan": SignedJsonChannel()}, lambda: credentials, landing, queue)


def test_authentic_push_is_one_stream_record_with_its_raw_request_and_events(ingest, landing, queue):
    reply = ingest.handle(request(json.dumps([EVENT]).encode()))
    assert (reply.status, reply.body) == (200, "success")
    ((data, partition_key),) = queue.records
    assert partition_key == "r-1" and data.endswith(b"\n")  # newline-delimited once Firehose batches it
    stored = json.loads(data)
    assert stored["channel"] == "testchan" and stored["request_id"] == "r-1"
    assert stored["body"] == json.dumps([EVENT]) and "authorization" not in stored["headers"]
    assert [e["event_id"] for e in stored["events"]] == ["t-1"]
    # the sync reads the same bytes: the events validate exactly as a queue message would
    assert [e.event_id for e in read_push_events(data).events] == ["t-1"]
    assert landing.objects == {}  # no S3 PUT for a good push


def test_forged_push_is_401_and_quarantined(ingest, landing, queue):
    reply = ingest.handle(request(json.dumps([EVENT]).encode(), sig="0" * 64))
    assert reply.status == 401
    assert queue.records == [] and landing.keys("quarantine/webhooks/testchan/")


@pytest.mark.parametrize("body", [b"garbage", json.dumps([{"event_id": "x"}]).encode(), b"\xff\xfe"])
def test_garbage_from_an_authentic_sender_is_acked_landed_and_recorded(ingest, landing, queue, body):
    # a 4xx would make the platform resend the same bytes forever: ack, keep, record
    reply = ingest.handle(request(body))
    assert (reply.status, reply.body, reply.unmappable) == (200, "success", 1)
    (document,) = queue.documents  # landed raw through the stream, with no events
    assert document["events"] == [] and document["body"].encode("utf-8", "surrogateescape") == body
    (key,) = landing.keys("quarantine/mapping-failures/testchan/dt=2026-11-24/")
    record = json.loads(landing.get(key))
    assert record["landing_prefix"] == "raw/webhooks/dt=2026-11-24/" and record["request_id"] == "r-1"
    assert record["replay"] == "scrm replay --source testchan --since 2026-11-24 --request-id r-1"
    assert record["events_enqueued"] == 0 and len(record["failures"]) == 1


def test_handshake_answers_exactly_what_the_platform_expects(ingest):
    assert ingest.handle(request(b"", method="GET", query={"challenge": "12345"})).body == "12345"


def test_unknown_or_unconfigured_channels_are_404():
    ingest = WebhookIngest(
        {"testchan": SignedJsonChannel()},
        lambda: load_credentials({}),
        InMemoryLanding(),
        InMemoryPushStream(),
    )
    assert ingest.handle(request(b"{}")).status == 404
    assert ingest.handle(request(b"{}", channel="nope")).status == 404


def test_a_stream_outage_surfaces_for_a_platform_retry_and_nothing_is_acked(landing):
    credentials = load_credentials({"testchan": {"secret": SECRET}})
    stream = InMemoryPushStream(fail=True)
    ingest = WebhookIngest({"testchan": SignedJsonChannel()}, lambda: credentials, landing, stream)
    with pytest.raises(QueueUnavailable):  # the handler answers 503: the platform sends it again
        ingest.handle(request(json.dumps([EVENT]).encode()))
    with pytest.raises(QueueUnavailable):  # an unmappable push is not recorded as landed either
        ingest.handle(request(b"garbage"))
    assert landing.objects == {}
    stream.fail = False
    assert ingest.handle(request(json.dumps([EVENT]).encode())).status == 200  # the retry is taken
    assert [d["request_id"] for d in stream.documents] == ["r-1"]


def test_a_push_too_large_for_one_record_is_landed_on_its_own_and_its_events_still_stream(landing, queue):
    credentials = load_credentials({"testchan": {"secret": SECRET}})
    ingest = WebhookIngest({"testchan": SignedJsonChannel()}, lambda: credentials, landing, queue)
    notes = {f"note_{n}": "x" * 4000 for n in range(5)}  # 20 KB: a storable event (at most 25 KB)
    events = [dict(EVENT, event_id=f"t-{i}", attributes=notes) for i in range(45)]
    body = json.dumps(events).encode()
    assert len(body) < 1024 * 1024 < len(body) * 2  # accepted, but body + events pass the record limit

    assert ingest.handle(request(body)).status == 200
    (key,) = landing.keys("raw/webhooks/testchan/dt=2026-11-24/")  # the old per-push layout
    ((_, line),) = landing_lines(landing.get(key))
    assert json.loads(line)["body"] == body.decode()
    assert all(len(data) <= MAX_PUSH_RECORD_BYTES for data, _ in queue.records)
    assert all(d["landed_at"] == key and "body" not in d for d in queue.documents)
    assert [json.loads(m)["event_id"] for m in queue.messages] == [f"t-{i}" for i in range(45)]


def test_rules_file_mappings_apply_to_the_next_push_without_a_restart():
    from scrm_sync.channels.douyin import DouyinAdapter
    from scrm_sync.domain.rules import load_rules

    secret = "dev-douyin-secret"
    credentials = load_credentials({"douyin": {"client_key": "awdev", "client_secret": secret}})
    body = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": "ou-1",
            "client_key": "awdev",
            "content": json.dumps({"digg_count": 42, "item_id": "v1"}),
            "log_id": "l-1",
        }
    ).encode()
    headers = {"x-douyin-signature": hashlib.sha1(secret.encode() + body).hexdigest()}  # noqa: S324
    push = WebhookRequest("douyin", "POST", headers, {}, body, datetime(2026, 11, 24, tzinfo=UTC), "r")
    current = {"rules": load_rules({})}
    queue = InMemoryPushStream()
    ingest = WebhookIngest(
        {"douyin": DouyinAdapter()}, lambda: credentials, InMemoryLanding(), queue, lambda: current["rules"]
    )

    ingest.handle(push)
    event = CanonicalEvent.model_validate_json(queue.messages[-1])
    assert event.attributes == {"interaction_index": 42}  # the shipped default: likes -> interaction_index

    current["rules"] = load_rules(
        {
            "mappings": {
                "douyin": {"new_video_digg": [{"source": "content.item_id", "target": "last_liked_video"}]}
            }
        }
    )
    ingest.handle(push)
    assert CanonicalEvent.model_validate_json(queue.messages[-1]).attributes == {"last_liked_video": "v1"}


def test_an_oversized_body_is_413_and_its_head_kept_for_inspection(ingest, landing, queue):
    from scrm_sync.services.webhooks import MAX_WEBHOOK_BODY_BYTES

    body = b"[" + b" " * (MAX_WEBHOOK_BODY_BYTES + 10) + b"]"
    reply = ingest.handle(request(body))
    assert reply.status == 413
    (key,) = landing.keys("quarantine/")
    kept = json.loads(landing.objects[key][0])
    assert "too large" in kept["note"] and len(kept["body"]) == MAX_WEBHOOK_BODY_BYTES
    assert queue.messages == []
