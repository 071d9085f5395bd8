"""The webhook delivery use case with an in-memory sender (no network): what is dropped, what
fails for a retry, per-attempt timestamps with a stable id, and the bodies the feed queues."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from scrm_sync.domain.outbound_webhooks import WebhookSubscriptions, encode_body, select_for
from scrm_sync.services.outbound_webhooks import (
    DeliveryFailed,
    ReceiverUnreachable,
    WebhookDelivery,
    documents_for,
)
from standardwebhooks import Webhook

from tests.unit.domain.test_outbound_webhooks import DOCUMENT, SECRET

URL = "https://crm.example.com/hooks?token=abc"
START = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)


class Sender:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, dict[str, str], bytes, float]] = []

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        self.posts.append((url, dict(headers), body, timeout))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=7.9)
        return self.now


def entry(**crm) -> dict:
    return {
        "crm": {"url": URL, "secret": SECRET, "fields": ["member_level"], **crm},
        "bi": {"url": "http://127.0.0.1:9/bi", "secret": SECRET, "kinds": ["identifiers", "merged"]},
    }


def delivery(sender: Sender, config: dict | None = None, clock: Clock | None = None) -> WebhookDelivery:
    current = {"entry": entry() if config is None else config}
    return WebhookDelivery(lambda: WebhookSubscriptions.parse(current["entry"]), sender, clock or Clock())


def body_for(name: str, config: dict | None = None) -> bytes:
    return dict(documents_for(WebhookSubscriptions.parse(config or entry()), DOCUMENT))[name]


def test_documents_for_gives_each_subscription_its_selection_sorted_by_name():
    bodies = documents_for(WebhookSubscriptions.parse(entry()), DOCUMENT)
    assert [name for name, _ in bodies] == ["bi", "crm"]
    bi, crm = (json.loads(body) for _, body in bodies)
    assert bi["kinds"] == ["identifiers", "merged"] and "fields" not in bi
    assert crm["kinds"] == ["fields", "merged"] and list(crm["fields"]) == ["member_level"]
    assert "identifiers" not in crm
    assert bodies == documents_for(WebhookSubscriptions.parse(entry()), dict(reversed(DOCUMENT.items())))


def test_documents_for_skips_subscriptions_that_select_nothing():
    config = entry(kinds=["split"])
    assert [name for name, _ in documents_for(WebhookSubscriptions.parse(config), DOCUMENT)] == ["bi"]
    assert documents_for(WebhookSubscriptions.parse(None), DOCUMENT) == []


def test_bodies_are_compact_utf8_not_ascii_escaped():
    body = body_for("crm", entry(fields=["name"]))
    assert "张三丰".encode() in body and b"\\u" not in body and b", " not in body


def test_a_delivery_is_signed_and_posted_with_the_subscription_timeout():
    sender = Sender(204)
    body = body_for("crm")
    result = delivery(sender).deliver("crm", body, DOCUMENT["id"])
    assert result.delivered and result.status == 204 and result.subscription == "crm"
    url, headers, sent, timeout = sender.posts[0]
    assert (url, sent, timeout) == (URL, body, 5.0)
    assert headers["webhook-id"] == DOCUMENT["id"]
    assert headers["webhook-timestamp"] == str(int((START + timedelta(seconds=7.9)).timestamp()))
    signature = Webhook(SECRET).sign(DOCUMENT["id"], START + timedelta(seconds=7), body.decode())
    assert headers["webhook-signature"] == signature


def test_every_attempt_takes_a_new_timestamp_and_keeps_the_id():
    sender = Sender(500, ReceiverUnreachable("timed out"), 200)
    deliver = delivery(sender)
    body = body_for("crm")
    for _ in range(2):
        with pytest.raises(DeliveryFailed):
            deliver.deliver("crm", body, DOCUMENT["id"])
    assert deliver.deliver("crm", body, DOCUMENT["id"]).delivered
    ids = {headers["webhook-id"] for _, headers, _, _ in sender.posts}
    stamps = [int(headers["webhook-timestamp"]) for _, headers, _, _ in sender.posts]
    assert ids == {DOCUMENT["id"]}
    assert stamps == sorted(set(stamps)) and len(stamps) == 3


@pytest.mark.parametrize(
    ("answer", "reason", "status"),
    [
        (500, "HTTP 500", 500),
        (301, "HTTP 301", 301),
        (410, "HTTP 410", 410),
        (ReceiverUnreachable("timed out"), "receiver unreachable (timed out)", None),
    ],
)
def test_failures_name_the_subscription_and_status_never_the_url_or_secret(answer, reason, status):
    with pytest.raises(DeliveryFailed) as failed:
        delivery(Sender(answer)).deliver("crm", body_for("crm"), DOCUMENT["id"])
    assert (failed.value.subscription, failed.value.reason, failed.value.status) == ("crm", reason, status)
    assert str(failed.value) == f"webhook crm: {reason}"
    assert failed.value.__cause__ is None  # nothing chained that could carry the URL
    assert failed.value.__context__ is None or failed.value.__suppress_context__
    for hidden in ("token", "abc", "crm.example.com", SECRET.removeprefix("whsec_")):
        assert hidden not in str(failed.value)


def test_removed_or_disabled_subscriptions_are_dropped_without_a_post():
    sender = Sender()
    body = body_for("crm")
    removed = delivery(sender, {"bi": entry()["bi"]}).deliver("crm", body, DOCUMENT["id"])
    disabled = delivery(sender, entry(enabled=False)).deliver("crm", body, DOCUMENT["id"])
    assert (removed.outcome, removed.reason) == ("dropped", "removed")
    assert (disabled.outcome, disabled.reason) == ("dropped", "disabled")
    assert sender.posts == []


def test_a_narrowed_subscription_holds_for_bodies_already_queued():
    body = body_for("bi")  # queued while bi took identifiers
    sender = Sender()
    narrowed = {**entry(), "bi": {**entry()["bi"], "kinds": ["merged"]}}
    assert delivery(sender, narrowed).deliver("bi", body, DOCUMENT["id"]).delivered
    sent = json.loads(sender.posts[0][2])
    assert "identifiers" not in sent and sent["kinds"] == ["merged"]
    only_identifiers = {"bi": {**entry()["bi"], "kinds": ["identifiers"]}}
    gone = delivery(sender, only_identifiers).deliver("bi", body_for("crm"), DOCUMENT["id"])
    assert (gone.outcome, gone.reason) == ("dropped", "nothing selected")


def test_an_unchanged_subscription_sends_the_queued_bytes_exactly():
    sender = Sender()
    body = encode_body(select_for(WebhookSubscriptions.parse(entry()).get("crm"), DOCUMENT) or {})  # type: ignore[arg-type]
    delivery(sender).deliver("crm", body, DOCUMENT["id"])
    assert sender.posts[0][2] == body


def test_a_queued_body_that_is_not_a_json_object_fails_without_a_post():
    sender = Sender()
    for bad in (b"not json", b"[1]"):
        with pytest.raises(DeliveryFailed, match="webhook crm: the queued body"):
            delivery(sender).deliver("crm", bad, DOCUMENT["id"])
    assert sender.posts == []
