"""Schema drift: baseline, new fields, a renamed mapped field with its suggestion, type changes,
each drift recorded once; and through the webhook flow, a renamed Douyin field."""

import json
from datetime import UTC, datetime

from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream, InMemorySchemaRegistry
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.schema_watch import SchemaWatch
from scrm_sync.services.webhooks import WebhookIngest

from tests.unit.channels.test_douyin import CREDS, envelope, req

RULES = load_rules(
    {"mappings": {"shop": {"paid": [{"source": "buyer.mobile", "target": "phone_hint", "transform": "str"}]}}}
)
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def watch(registry=None):
    registry = registry or InMemorySchemaRegistry()
    return SchemaWatch(registry, lambda: RULES, clock=lambda: NOW), registry


def test_the_first_message_is_the_baseline_and_a_repeat_is_no_drift():
    schema_watch, registry = watch()
    payload = {"buyer": {"mobile": "13800138000", "nick": "a"}, "total": 12.5}
    assert schema_watch.observe("shop", "paid", payload) is None
    assert schema_watch.observe("shop", "paid", payload) is None
    assert registry.known_schema("shop", "paid") == {
        "buyer.mobile": "string",
        "buyer.nick": "string",
        "total": "number",
    }
    assert registry.drift_records() == []


def test_a_renamed_mapped_field_is_recorded_once_with_a_suggestion():
    schema_watch, registry = watch()
    schema_watch.observe("shop", "paid", {"buyer": {"mobile": "13800138000"}, "total": 1})
    renamed = {"buyer": {"mobile_no": "13800138000"}, "total": 1}
    record = schema_watch.observe("shop", "paid", renamed)
    assert record is not None
    assert record.missing_mapped == ("buyer.mobile",)
    assert record.new_fields == {"buyer.mobile_no": "string"}
    assert record.suggestions[0]["missing"] == "buyer.mobile"
    assert record.suggestions[0]["use"] == "buyer.mobile_no"
    assert schema_watch.observe("shop", "paid", renamed) is None  # reported once per process
    assert [r.signature for r in registry.drift_records()] == [record.signature]
    # another process (fresh cache) reports what is still open, the vanished field, with the
    # same suggestion; every further process finds that record already kept
    later = watch(registry)[0].observe("shop", "paid", renamed)
    assert later is not None and later.new_fields == {} and later.missing_mapped == ("buyer.mobile",)
    assert later.suggestions[0]["use"] == "buyer.mobile_no"
    assert watch(registry)[0].observe("shop", "paid", renamed).signature == later.signature
    assert len(registry.drift_records("shop")) == 2


def test_new_fields_become_known_and_type_changes_are_reported():
    schema_watch, registry = watch()
    schema_watch.observe("shop", "paid", {"total": 1})
    grown = schema_watch.observe("shop", "paid", {"total": 1, "coupon": {"code": "X"}})
    assert grown is not None and grown.new_fields == {"coupon.code": "string"}
    assert schema_watch.observe("shop", "paid", {"total": 2, "coupon": {"code": "Y"}}) is None
    retyped = schema_watch.observe("shop", "paid", {"total": "2.00"})
    assert retyped is not None and retyped.type_changes == {"total": ("number", "string")}
    assert registry.known_schema("shop", "paid")["total"] == "string"
    # unmapped fields that are simply absent from one message are not drift
    assert schema_watch.observe("shop", "paid", {"total": "3.00"}) is None


def test_a_renamed_douyin_field_through_the_webhook_flow():
    registry = InMemorySchemaRegistry()
    rules = load_rules({})
    credentials = load_credentials({"douyin": CREDS})
    ingest = WebhookIngest(
        {"douyin": DouyinAdapter()},
        lambda: credentials,
        InMemoryLanding(),
        InMemoryPushStream(),
        lambda: rules,
        SchemaWatch(registry, lambda: rules, clock=lambda: NOW),
    )
    first = envelope("new_video_digg", {"item_id": "v-1", "digg_count": 5, "create_time": 1764000000})
    assert ingest.handle(req(first, {"msg-id": "m-1"})).drift_kinds == ()
    renamed = envelope("new_video_digg", {"item_id": "v-1", "like_count": 6, "create_time": 1764000001})
    reply = ingest.handle(req(renamed, {"msg-id": "m-2"}))
    assert reply.status == 200 and reply.drift_kinds == ("new_video_digg",)
    (record,) = registry.drift_records("douyin")
    assert record.missing_mapped == ("content.digg_count",)
    assert record.suggestions[0]["use"] == "content.like_count"
    assert json.loads(json.dumps(record.as_dict()))["suggestions"][0]["missing"] == "content.digg_count"


def test_a_failing_registry_never_fails_the_webhook():
    class Broken(InMemorySchemaRegistry):
        def known_schema(self, source, kind):
            raise ConnectionError("dynamodb unreachable")

    rules = load_rules({})
    credentials = load_credentials({"douyin": CREDS})
    queue = InMemoryPushStream()
    ingest = WebhookIngest(
        {"douyin": DouyinAdapter()},
        lambda: credentials,
        InMemoryLanding(),
        queue,
        lambda: rules,
        SchemaWatch(Broken(), lambda: rules),
    )
    body = envelope("new_video_digg", {"item_id": "v-1", "digg_count": 5})
    assert ingest.handle(req(body, {"msg-id": "m-9"})).status == 200
    assert len(queue.messages) == 1
