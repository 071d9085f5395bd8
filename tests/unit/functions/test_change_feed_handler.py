"""ChangeFeedFunction: stream records in, change documents to the feed; a record whose messages
could not be enqueued is reported with every later one (Lambda retries the stream from it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scrm_sync.services.change_feed import ChangeFeed

from tests.lambda_context import LambdaContext


class RecordingFeed:
    def __init__(self, failing: set[str] | None = None) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.failing = failing or set()

    def publish(self, documents: list[tuple[str, dict[str, Any]]]) -> set[str]:
        self.published.extend(documents)
        return {key for key, _ in documents if key in self.failing}


def profile_record(seq: str, old_level: str | None, new_level: str) -> dict[str, Any]:
    def image(level: str | None) -> dict[str, Any]:
        item: dict[str, Any] = {"pk": {"S": "p1"}, "sk": {"S": "PROFILE"}}
        if level:
            item["v:member_level"] = {"S": level}
            item["m:member_level"] = {"M": {"s": {"S": "mdm"}, "e": {"S": f"e-{level}"}}}
        return item

    return {
        "eventID": seq,
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": "p1"}, "sk": {"S": "PROFILE"}},
            "OldImage": image(old_level),
            "NewImage": image(new_level),
            "SequenceNumber": seq,
            "ApproximateCreationDateTime": 1796289000,
        },
    }


def evidence_record(seq: str) -> dict[str, Any]:
    keys = {"pk": {"S": "p1"}, "sk": {"S": "E#mdm#e1"}}
    return {
        "eventID": seq,
        "eventName": "INSERT",
        "dynamodb": {"Keys": keys, "NewImage": keys, "SequenceNumber": seq},
    }


def identity_record(seq: str) -> dict[str, Any]:
    image = {"identifier_key": {"S": "phone##+8613900139000"}, "profile_id": {"S": "p1"}}
    return {
        "eventID": seq,
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"identifier_key": image["identifier_key"]},
            "NewImage": image,
            "SequenceNumber": seq,
        },
    }


def test_documents_from_both_streams_and_nothing_from_evidence_items(load_handler):
    feed = RecordingFeed()
    handler = load_handler("change_feed", change_feed=feed)
    records = [profile_record("100", None, "gold"), evidence_record("101"), identity_record("102")]
    assert handler.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    kinds = [(key, document["kinds"]) for key, document in feed.published]
    assert kinds == [("100", ["fields"]), ("102", ["identifiers"])]
    assert feed.published[0][1]["changed_at"] == "2026-12-03T09:10:00Z"


def test_the_first_record_that_failed_and_every_later_one_are_retried(load_handler):
    feed = RecordingFeed(failing={"201"})
    handler = load_handler("change_feed", change_feed=feed)
    records = [
        profile_record("200", None, "gold"),
        profile_record("201", "gold", "silver"),
        profile_record("202", "silver", "gold"),
    ]
    answer = handler.lambda_handler({"Records": records}, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "201"}, {"itemIdentifier": "202"}]}


def test_the_sample_event_is_one_member_level_change(load_handler):
    """events/change_feed/profile_change.json, which `scrm invoke ChangeFeedFunction` takes."""
    feed = RecordingFeed()
    handler = load_handler("change_feed", change_feed=feed)
    sample = json.loads(
        (Path(__file__).resolve().parents[3] / "events/change_feed/profile_change.json").read_text()
    )
    assert handler.lambda_handler(sample, LambdaContext()) == {"batchItemFailures": []}
    [(_, document)] = feed.published
    assert document["fields"]["member_level"] == {
        "old": "silver",
        "new": "gold",
        "source": "mdm",
        "event_id": "mdm-1",
        "occurred_at": "2026-12-03T17:10:00+08:00",
    }
    assert isinstance(feed, RecordingFeed) and callable(ChangeFeed.publish)
