"""Reconciliation on moto: a store's snapshot against the ledger as of the snapshot's time,
the difference rate that InventoryReconcileFunction publishes (and the template's alarm fires
on), and corrections recorded as count events in the movement history."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from scrm_sync.adapters.dynamodb_inventory import DynamoInventoryStore
from scrm_sync.adapters.memory import InMemoryChangeLedger, InMemoryProfileRepository
from scrm_sync.domain.inventory import (
    InventoryMovement,
    InventoryRules,
    Location,
    SnapshotItem,
    StockSnapshot,
)
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.cdc import CdcSync
from scrm_sync.services.inventory import Inventory
from scrm_sync.services.reconciliation import StockReconciliation
from scrm_sync.services.sync import ProfileSync

from tests.cdc_factories import change
from tests.integration.conftest import AppResources, load_function
from tests.lambda_context import LambdaContext
from tests.unit.template.sam import TEMPLATE

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SKUS = 200


def services(
    resources: AppResources, correct_from: frozenset[str] = frozenset()
) -> tuple[Inventory, StockReconciliation]:
    rules = InventoryRules(locations={"store-xuhui": Location()}, correct_from=correct_from)
    store = DynamoInventoryStore(resources.clients("dynamodb"), resources.table("InventoryTable"))
    inventory = Inventory(store, lambda: rules)
    return inventory, StockReconciliation(inventory, store, lambda: rules)


def seed(inventory: Inventory, prefix: str) -> None:
    for n in range(SKUS):
        movement = InventoryMovement(kind="receipt", sku=f"{prefix}-{n}", location="store-xuhui", quantity=10)
        inventory.apply("wms", f"r-{prefix}-{n}", T0, movement)
    # a sale after the count was taken: the count cannot have seen it, so it is no difference
    sale = InventoryMovement(kind="sale", sku=f"{prefix}-0", location="store-xuhui", quantity=2)
    inventory.apply("pos", f"s-{prefix}", T0 + timedelta(minutes=5), sale)


def snapshot(prefix: str, version: int, off: dict[int, int]) -> StockSnapshot:
    return StockSnapshot(
        source="pos",
        location="store-xuhui",
        version=version,
        taken_at=T0 + timedelta(minutes=1),
        items=[SnapshotItem(sku=f"{prefix}-{n}", quantity=off.get(n, 10)) for n in range(SKUS)],
    )


def test_a_seeded_difference_is_reported_at_its_rate_and_crosses_the_alarm(
    app_resources: AppResources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = uuid.uuid4().hex[:6]
    inventory, reconciliation = services(app_resources)
    seed(inventory, prefix)
    assert reconciliation.accept(snapshot(prefix, 2, {7: 9}))  # one of 200 pairs is one unit short
    assert not reconciliation.accept(snapshot(prefix, 1, {}))  # an older snapshot is refused

    run = reconciliation.run()
    assert (run.overall.compared, len(run.overall.differences)) == (SKUS, 1)
    assert run.overall.difference_percent == pytest.approx(0.5)
    assert run.overall.unit_difference_percent == pytest.approx(100 * 1 / (SKUS * 10 - 1))
    (difference,) = run.overall.differences
    assert (difference.sku, difference.reported, difference.ledger) == (f"{prefix}-7", 9, 10)
    assert run.corrected == 0 and inventory.stock(f"{prefix}-7")["total"]["on_hand"] == 10  # type: ignore[index]

    # the function publishes the rate the alarm watches
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSync")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "reconcile-test")
    app = load_function("inventory_reconcile")
    monkeypatch.setattr(app, "reconciliation", lambda: reconciliation)
    capsys.readouterr()
    app.lambda_handler({}, LambdaContext())
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    overall = next(d for d in documents if "InventoryDifferencePercent" in d and "Location" not in d)
    per_location = next(d for d in documents if d.get("Location") == "store-xuhui")
    published = [
        value[0] if isinstance(value, list) else value
        for value in (overall["InventoryDifferencePercent"], per_location["InventoryDifferencePercent"])
    ]
    assert published == [pytest.approx(0.5), pytest.approx(0.5)]
    alarm = TEMPLATE["Resources"]["InventoryDifferenceAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ComparisonOperator"]) == (
        "ScrmSync",
        "InventoryDifferencePercent",
        "GreaterThanThreshold",
    )
    assert published[0] > alarm["Threshold"] == 0.3


def test_sources_the_rules_trust_are_corrected_with_count_events(app_resources: AppResources) -> None:
    prefix = uuid.uuid4().hex[:6]
    inventory, reconciliation = services(app_resources, correct_from=frozenset({"pos"}))
    seed(inventory, prefix)
    reconciliation.accept(snapshot(prefix, 3, {7: 9, 8: 12}))
    assert reconciliation.run().corrected == 2
    assert reconciliation.run().overall.differences == ()  # corrected: the next run agrees
    on_hand = inventory.stock(f"{prefix}-8")["total"]["on_hand"]  # type: ignore[index]
    assert on_hand == 12
    history = inventory.movements(f"{prefix}-8", "store-xuhui")
    assert [(m["kind"], m["source"]) for m in history if m["source"] == "reconciliation"] == [
        ("count", "reconciliation")
    ]


def test_report_only_pos_stock_rows_are_compared_sku_by_sku_at_each_rows_time(
    app_resources: AppResources,
) -> None:
    """A POS stock table mapped `report_only`: each row change is that SKU's reported stock,
    kept beside the other SKUs' rows (not replacing them), the newest version per SKU."""
    prefix = uuid.uuid4().hex[:6]
    inventory, reconciliation = services(app_resources)
    for n in range(3):
        movement = InventoryMovement(kind="receipt", sku=f"{prefix}-{n}", location="store-xuhui", quantity=10)
        inventory.apply("wms", f"r-{prefix}-{n}", T0, movement)
    later_sale = InventoryMovement(kind="sale", sku=f"{prefix}-1", location="store-xuhui", quantity=4)
    inventory.apply("pos", f"s-{prefix}", T0 + timedelta(hours=1), later_sale)
    rules = load_rules(
        {
            "table_mappings": {
                "pos.stock": {
                    "source": "pos",
                    "kind": "stock",
                    "primary_key": ["store", "sku"],
                    "modified_column": "updated_at",
                    "timezone": "UTC",
                    "stock": {"sku": "sku", "quantity": "qty", "location": "store", "report_only": True},
                }
            },
            "inventory": {"locations": {"store-xuhui": {}}},
        }
    )
    cdc = CdcSync(
        ProfileSync(InMemoryProfileRepository(), lambda: rules),
        lambda: rules,
        InMemoryChangeLedger(),
        stock_reports=reconciliation,
    )

    def row(n: int, qty: int, minute: int) -> dict[str, object]:
        updated = (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S.%f")
        return {"store": "store-xuhui", "sku": f"{prefix}-{n}", "qty": qty, "updated_at": updated}

    cdc.apply(change("pos.stock", "insert", row(0, 10, 1)))
    cdc.apply(change("pos.stock", "insert", row(1, 10, 2)))  # before the sale: agrees
    cdc.apply(change("pos.stock", "insert", row(2, 7, 5)))  # three short
    cdc.apply(change("pos.stock", "update", row(2, 8, 3), before=row(2, 7, 5)))  # older: kept out
    run = reconciliation.run()
    mine = [d for d in run.overall.differences if d.sku.startswith(prefix)]
    assert [(d.sku, d.reported, d.ledger) for d in mine] == [(f"{prefix}-2", 7, 10)]
    assert run.by_location["store-xuhui"].compared >= 3
