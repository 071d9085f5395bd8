"""The DynamoDB schema registry (the template's SchemaTable, on moto) behaves like the in-memory one."""

from datetime import UTC, datetime

import pytest
from scrm_sync.adapters.dynamodb_schemas import DynamoSchemaRegistry
from scrm_sync.adapters.memory import InMemorySchemaRegistry
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.schema_watch import SchemaWatch

RULES = load_rules({"mappings": {"shop": {"paid": [{"source": "buyer.mobile", "target": "phone_hint"}]}}})


@pytest.fixture(params=["dynamodb", "memory"])
def registry(request, app_resources):
    if request.param == "memory":
        return InMemorySchemaRegistry()
    return DynamoSchemaRegistry(app_resources.clients("dynamodb"), app_resources.table("SchemaTable"))


def observe(registry, payload):
    watch = SchemaWatch(registry, lambda: RULES, clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
    return watch.observe("shop", "paid", payload)


def test_schema_and_drift_round_trip(registry):
    assert registry.known_schema("shop", "paid") is None
    assert observe(registry, {"buyer": {"mobile": "x", "nick": "n"}, "lines": [{"sku": "a"}]}) is None
    assert registry.known_schema("shop", "paid") == {
        "buyer.mobile": "string",
        "buyer.nick": "string",
        "lines.0.sku": "string",
    }
    record = observe(registry, {"buyer": {"phone": "x", "nick": "n"}, "lines": [{"sku": "a"}]})
    assert record is not None
    (kept,) = registry.drift_records("shop")
    assert kept.signature == record.signature
    assert kept.as_dict() == record.as_dict()
    assert registry.known_schema("shop", "paid")["buyer.phone"] == "string"
    registry.remember("shop", "paid", {}, record)  # the same drift again: still one record
    assert len(registry.drift_records()) == 1
    assert registry.drift_records("another-source") == []


def test_many_new_fields_are_merged(registry):
    observe(registry, {"a": 1})
    wide = {"a": 1, **{f"f{i:03d}": i for i in range(250)}}
    record = observe(registry, wide)
    assert record is not None and len(record.new_fields) == 250
    assert len(registry.known_schema("shop", "paid")) == 251
