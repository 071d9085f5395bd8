"""POS stock tables through CDC: each row is a versioned count for the inventory lane (the POS is
the authority for its store), or with `report_only` the POS's reported stock for reconciliation;
no profile is touched, a replayed change is skipped, a row that cannot be a count is malformed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from scrm_sync.adapters.memory import InMemoryChangeLedger, InMemoryProfileRepository, InMemoryQueue
from scrm_sync.domain.cdc import MalformedChange
from scrm_sync.domain.inventory import StockSnapshot
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.table_mapping import TableMapping
from scrm_sync.services.cdc import CdcSync, StockForwardFailed
from scrm_sync.services.inventory import UnknownLocation
from scrm_sync.services.sync import ProfileSync

from tests.cdc_factories import change

STOCK_TABLE = {
    "source": "pos",
    "kind": "stock",
    "primary_key": ["store_code", "sku"],
    "modified_column": "updated_at",
    "stock": {
        "sku": "sku",
        "quantity": "qty",
        "location": "store_code",
        "location_codes": {"SH-017": "store-xuhui", "SH-021": "store-pudong"},
    },
}
LOCATIONS = {"store-xuhui": {"kind": "store"}, "store-pudong": {"kind": "store"}, "wh": {"kind": "warehouse"}}


def rules(**stock: Any) -> Any:
    table = {**STOCK_TABLE, "stock": {**STOCK_TABLE["stock"], **stock}}
    return load_rules({"table_mappings": {"pos.stock": table}, "inventory": {"locations": LOCATIONS}})


def row(
    qty: Any = 7, store: str = "SH-017", updated: str = "2026-12-03 10:00:00", **extra: Any
) -> dict[str, Any]:
    return {"store_code": store, "sku": "LIP-M106", "qty": qty, "updated_at": updated, **extra}


class Reports:
    def __init__(self) -> None:
        self.kept: list[StockSnapshot] = []

    def accept_row(self, snapshot: StockSnapshot) -> bool:
        if snapshot.location not in LOCATIONS:
            raise UnknownLocation([snapshot.location])
        self.kept.append(snapshot)
        return True


def sync(
    current: Any, queue: InMemoryQueue | None = None, reports: Reports | None = None
) -> tuple[CdcSync, InMemoryProfileRepository]:
    repo = InMemoryProfileRepository()
    cdc = CdcSync(ProfileSync(repo, lambda: current), lambda: current, InMemoryChangeLedger(), queue, reports)
    return cdc, repo


def test_a_stock_row_is_a_versioned_count_for_the_inventory_lane_and_touches_no_profile() -> None:
    queue = InMemoryQueue()
    cdc, repo = sync(rules(), queue)
    first = change("pos.stock", "insert", row(7))
    outcome = cdc.apply(first)
    later = cdc.apply(change("pos.stock", "update", row(5, updated="2026-12-03 10:05:00"), before=row(7)))
    assert outcome.applied and later.applied and not repo.profiles
    counts = [json.loads(m) for m in queue.messages]
    assert [c["type"] for c in counts] == ["inventory", "inventory"]
    assert [c["inventory"]["quantity"] for c in counts] == [7, 5]
    assert {c["inventory"]["location"] for c in counts} == {"store-xuhui"}  # the POS code, mapped
    assert counts[0]["inventory"]["source_version"] < counts[1]["inventory"]["source_version"]
    assert counts[0]["inventory"]["kind"] == "count" and counts[0]["source"] == "pos"
    # Beijing time: 10:00 +08:00 is 02:00 UTC
    assert counts[0]["inventory"]["source_version"] == 1_796_263_200_000_000

    assert cdc.apply(first).replayed  # the same change again: skipped, nothing forwarded
    assert len(queue.messages) == 2


def test_an_update_that_leaves_the_stock_alone_and_a_deleted_row_change_nothing() -> None:
    queue = InMemoryQueue()
    cdc, _ = sync(rules(), queue)
    same = cdc.apply(change("pos.stock", "update", row(7, note="x"), before=row(7, note="y")))
    deleted = cdc.apply(change("pos.stock", "delete", row(7)))
    assert same.unchanged and not deleted.applied and queue.messages == []


def test_a_version_column_orders_the_counts_when_the_table_has_one() -> None:
    queue = InMemoryQueue()
    cdc, _ = sync(rules(version="row_version"), queue)
    cdc.apply(change("pos.stock", "insert", row(3, row_version=41)))
    assert json.loads(queue.messages[0])["inventory"]["source_version"] == 41
    with pytest.raises(MalformedChange, match="row_version"):
        cdc.apply(change("pos.stock", "insert", row(3, row_version="v2")))


@pytest.mark.parametrize(
    ("bad_row", "named"),
    [
        (row(-2), "qty"),
        (row(2.5), "qty"),
        (row(None), "qty"),
        (row(4, store="GZ-001"), "location"),  # not mapped, and no location name
        (row(4, store="store-shenzhen"), "store-shenzhen"),  # a location the rules do not know
        ({**row(4), "sku": None}, "sku"),
    ],
)
def test_a_row_that_cannot_be_a_count_is_malformed_and_names_its_column(
    bad_row: dict[str, Any], named: str
) -> None:
    queue = InMemoryQueue()
    cdc, _ = sync(rules(), queue)
    with pytest.raises(MalformedChange, match=named):
        cdc.apply(change("pos.stock", "insert", bad_row))
    assert queue.messages == []


def test_report_only_rows_are_kept_for_reconciliation_not_applied() -> None:
    queue, reports = InMemoryQueue(), Reports()
    cdc, _ = sync(rules(report_only=True), queue, reports)
    outcome = cdc.apply(change("pos.stock", "insert", row(2, store="SH-021")))
    assert outcome.reported and queue.messages == []
    (kept,) = reports.kept
    assert (kept.source, kept.location, [(i.sku, i.quantity) for i in kept.items]) == (
        "pos",
        "store-pudong",
        [("LIP-M106", 2)],
    )
    assert kept.taken_at == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    with pytest.raises(MalformedChange, match="location"):
        cdc.apply(change("pos.stock", "insert", row(2, store="GZ-001")))


def test_counts_without_an_inventory_lane_fail_the_change_instead_of_vanishing() -> None:
    cdc, _ = sync(rules(), None)
    with pytest.raises(StockForwardFailed):
        cdc.apply(change("pos.stock", "insert", row(1)))
    failing, _ = sync(rules(), InMemoryQueue(fail=True))
    with pytest.raises(StockForwardFailed):
        failing.apply(change("pos.stock", "insert", row(1)))


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"identifiers": {"phone": {"type": "phone"}}}, "names no customer"),
        ({"stock": {"sku": "sku", "quantity": "qty"}}, "location"),
        ({"modified_column": None}, "version or modified_column"),
        ({"on_delete": "detach_identifiers"}, "ignore"),
        ({"stock": None}, "needs 'stock' columns"),
    ],
)
def test_stock_table_mistakes_are_named_when_the_rules_are_loaded(
    mistake: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TableMapping.model_validate({**STOCK_TABLE, **mistake})


def test_member_tables_still_need_an_identifier() -> None:
    with pytest.raises(ValidationError, match="at least one identifier"):
        TableMapping.model_validate({"source": "pos", "kind": "member", "primary_key": ["id"]})
