"""Shared by the order-archive tests: order events and the archive invariant, checked through
the ports so the same check runs on the in-memory fakes and on moto."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_sync.domain.archive import (
    DATA_PREFIX,
    MANIFEST_PREFIX,
    Manifest,
    decode_rows,
    manifest_key,
    row_key,
)
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.services.ports import ArchiveStore, OrderStore

TODAY = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
_ids = itertools.count(1)


class Clock:
    """A settable wall clock (epoch seconds) for archive runs and their leases."""

    def __init__(self) -> None:
        self.now = TODAY.timestamp()

    def __call__(self) -> float:
        return self.now


def days_ago(days: float) -> datetime:
    return TODAY - timedelta(days=days)


def order_event(
    order_id: str,
    *,
    created: datetime,
    at: datetime | None = None,
    status: str = "paid",
    source: str = "youzan",
    phone: str = "13800138000",
    event_id: str | None = None,
    total: str = "99.50",
    with_created_at: bool = True,
) -> CanonicalEvent:
    order: dict[str, Any] = {
        "order_id": order_id,
        "status": status,
        "total": total,
        "currency": "CNY",
        "lines": [
            {"sku": "SKU-1", "name": "保温杯 500ml", "quantity": "2", "price": "49.75", "amount": total}
        ],
    }
    if with_created_at:
        order["created_at"] = created.isoformat()
    return CanonicalEvent.model_validate(
        {
            "event_id": event_id or f"{source}-{next(_ids)}",
            "source": source,
            "type": "order.created" if at is None else "order.updated",
            "occurred_at": (at or created).isoformat(),
            "identifiers": [{"type": "phone", "value": phone}],
            "order": order,
        }
    )


def archived_rows(store: ArchiveStore) -> dict[str, list[dict[str, Any]]]:
    """Every archive object's rows, checked against its manifest (raises AssertionError)."""
    objects: dict[str, list[dict[str, Any]]] = {}
    manifests = set(store.keys(MANIFEST_PREFIX))
    for data_key in store.keys(DATA_PREFIX):
        assert manifest_key(data_key) in manifests, f"{data_key} has no manifest"
        body = store.get(data_key)
        manifest_body = store.get(manifest_key(data_key))
        assert body is not None and manifest_body is not None
        manifest = Manifest.from_bytes(manifest_body)
        assert manifest.matches(body), f"{data_key} does not match its manifest"
        rows = decode_rows(body)
        assert manifest.rows == len(rows) and list(manifest.order_keys) == [row_key(r) for r in rows]
        objects[data_key] = rows
    assert len(manifests) == len(objects), "a manifest without its object"
    return objects


def assert_archive_consistent(orders: OrderStore, store: ArchiveStore, keys: Iterable[str]) -> dict[str, str]:
    """The archive invariant: every order is either hot (and in no archive object, unless it is
    a restored order whose copy is current) or a stub pointing to the one object holding its
    version, and no order is in two objects (Athena would count it twice). Returns order key ->
    archive object for the archived orders."""
    objects = archived_rows(store)
    location: dict[str, str] = {}
    copies = Counter(row_key(r) for rows in objects.values() for r in rows)
    assert not [k for k, n in copies.items() if n > 1], f"orders archived twice: {copies.most_common(3)}"
    stored = orders.load(sorted(set(keys) | set(copies)))
    for data_key, rows in objects.items():
        for row in rows:
            item = stored[row_key(row)]
            assert item.archived_object == data_key, f"{row_key(row)} is in {data_key} but points elsewhere"
            assert item.archived_version == row["version"]
            location[row_key(row)] = data_key
    for key in keys:
        item = stored[key]
        if item.live and not item.archive_is_current:
            assert key not in copies, f"{key} is hot and archived"
        if not item.live:
            assert location.get(key) == item.archived_object, f"{key} is a stub without its archive copy"
    return location


def assert_nothing_lost(orders: OrderStore, store: ArchiveStore, keys: Iterable[str]) -> None:
    """What must hold even right after a crash: every order is hot, or a stub whose archive
    object holds its archived version."""
    stored = orders.load(list(keys))
    for key in keys:
        item = stored[key]
        if item.live:
            continue
        assert item.archived_object is not None, f"{key} is a stub without an archive object"
        body = store.get(item.archived_object)
        assert body is not None, f"{key}: {item.archived_object} is missing"
        versions = {row_key(r): r["version"] for r in decode_rows(body)}
        assert versions.get(key) == item.archived_version, f"{key} is not in {item.archived_object}"


def create_orders_table(client: Any, name: str) -> None:
    """The OrdersTable of template.yaml (keep the two in step)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "age_bucket", "AttributeType": "S"},
            {"AttributeName": "order_date", "AttributeType": "S"},
            {"AttributeName": "archived_profile_id", "AttributeType": "S"},
            {"AttributeName": "archived_order_id", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_age",
                "KeySchema": [
                    {"AttributeName": "age_bucket", "KeyType": "HASH"},
                    {"AttributeName": "order_date", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "archived_by_profile",
                "KeySchema": [
                    {"AttributeName": "archived_profile_id", "KeyType": "HASH"},
                    {"AttributeName": "order_date", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "archived_by_order",
                "KeySchema": [{"AttributeName": "archived_order_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    )


def create_checkpoints_table(client: Any, name: str) -> None:
    """The CheckpointsTable of template.yaml."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
