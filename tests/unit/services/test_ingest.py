"""POST /events rules through the EventIngest use case (in-memory queue and landing)."""

import json
from datetime import UTC, datetime

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryQueue
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.ingest import BadRequest, EventIngest, QueueUnavailable

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
GOOD = {
    "event_id": "e-1",
    "source": "pos",
    "type": "profile.updated",
    "occurred_at": "2026-11-01T09:30:00+08:00",
    "identifiers": [{"type": "phone", "value": "138 0013 8000"}],
    "attributes": {"name": "王小明"},
}


@pytest.fixture
def queue():
    return InMemoryQueue()


@pytest.fixture
def landing():
    return InMemoryLanding()


@pytest.fixture
def ingest(queue, landing):
    return EventIngest(queue, landing, lambda: load_rules({}))


def accept(ingest, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return ingest.accept(body, "req-1", NOW, "tester")


def test_one_valid_event_is_landed_then_enqueued(ingest, queue, landing):
    report = accept(ingest, GOOD)
    assert report.to_dict()["accepted"] == 1
    assert landing.keys("raw/events/dt=2026-11-24/") == [report.raw_key]
    assert CanonicalEvent.model_validate_json(queue.messages[0]).event_id == "e-1"


def test_an_invalid_event_never_blocks_the_valid_ones_and_names_the_field(ingest, queue, landing):
    bad = dict(GOOD, event_id="e-2", occurred_at="2026-11-01 09:30")  # no offset
    report = accept(ingest, {"events": [GOOD, bad]}).to_dict()
    assert report["accepted"] == 1 and report["rejected"] == 1
    assert report["results"][1]["errors"][0]["field"] == "occurred_at"
    assert len(queue.messages) == 1
    assert landing.keys("quarantine/events/")


def test_masked_identifiers_are_reported_and_never_enqueued_as_links(ingest, queue):
    event = dict(
        GOOD, identifiers=[{"type": "phone", "value": "138****8000"}, {"type": "email", "value": "A@B.cn"}]
    )
    result = accept(ingest, event).results[0]
    assert result.status == "accepted"
    assert result.rejected_identifiers == [{"type": "phone", "value": "138***", "reason": "value is masked"}]


def test_an_event_without_any_valid_identifier_is_rejected(ingest, queue):
    event = dict(GOOD, identifiers=[{"type": "phone", "value": "138****8000"}])
    result = accept(ingest, event).results[0]
    assert result.status == "rejected" and result.errors[0]["field"] == "identifiers"
    assert queue.messages == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "one event object"),
        (json.dumps({"events": []}).encode(), "non-empty list"),
        (json.dumps({"events": [GOOD] * 501}).encode(), "at most 500"),
    ],
)
def test_unreadable_requests_are_bad_requests_and_kept(ingest, landing, body, message):
    with pytest.raises(BadRequest, match=message):
        accept(ingest, body)
    assert landing.keys("quarantine/events/")


def test_queue_outage_is_reported_for_a_retry_after_the_raw_request_is_kept(landing):
    ingest = EventIngest(InMemoryQueue(fail=True), landing, lambda: load_rules({}))
    with pytest.raises(QueueUnavailable):
        accept(ingest, GOOD)
    assert landing.keys("raw/events/")


def test_order_events_need_an_order():
    report_event = dict(GOOD, type="order.created")
    ingest = EventIngest(InMemoryQueue(), InMemoryLanding(), lambda: load_rules({}))
    result = accept(ingest, report_event).results[0]
    assert result.status == "rejected" and "order" in result.errors[0]["message"]
