"""Reconciliation: each source's latest snapshot (what a store's POS or a channel counts at a
location) against the ledger's on_hand at the snapshot's time, per location and overall.

A difference is reported (rate of differing SKU/location pairs, and of units); for the sources
the rules name in `inventory.correct_from`, the ledger is corrected to the count with a `count`
movement per difference (source `reconciliation`, versioned by the snapshot), so every
correction is an event in the movement history, never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..domain.inventory import (
    NO_DIFFERENCE,
    InventoryMovement,
    InventoryRules,
    Reconciliation,
    StockSnapshot,
    reconcile,
)
from .inventory import Inventory, UnknownLocation
from .ports import InventoryStore

CORRECTION_SOURCE = "reconciliation"


@dataclass(slots=True)
class ReconciliationRun:
    overall: Reconciliation = NO_DIFFERENCE
    by_location: dict[str, Reconciliation] = field(default_factory=dict)
    corrected: int = 0
    skipped: list[str] = field(default_factory=list)  # snapshots of locations the rules do not know

    def to_dict(self) -> dict[str, object]:
        return {
            "overall": self.overall.to_dict(),
            "locations": {name: r.to_dict(limit=20) for name, r in sorted(self.by_location.items())},
            "corrected": self.corrected,
            "skipped": self.skipped,
        }


class StockReconciliation:
    def __init__(
        self, inventory: Inventory, store: InventoryStore, rules: Callable[[], InventoryRules]
    ) -> None:
        self._inventory = inventory
        self._store = store
        self._rules = rules

    def accept(self, snapshot: StockSnapshot) -> bool:
        """Keep a snapshot for the next run; False when a newer one is kept already."""
        if snapshot.location not in self._rules().locations:
            raise UnknownLocation([snapshot.location])
        return self._store.put_snapshot(snapshot)

    def accept_row(self, row: StockSnapshot) -> bool:
        """Keep one SKU's reported stock (a stock table's row, a one-item snapshot) for the next
        run, beside the source's other SKUs there; False when a newer one is kept already."""
        if row.location not in self._rules().locations:
            raise UnknownLocation([row.location])
        return self._store.put_snapshot(row, per_sku=True)

    def run(self) -> ReconciliationRun:
        rules = self._rules()
        result = ReconciliationRun()
        for snapshot in self._store.snapshots():
            if snapshot.location not in rules.locations:
                result.skipped.append(f"{snapshot.source}#{snapshot.location}")
                continue
            reported = {item.sku: item.quantity for item in snapshot.items}
            ledger = {
                sku: self._store.on_hand_at(sku, snapshot.location, snapshot.taken_at) for sku in reported
            }
            compared = reconcile(snapshot.location, reported, ledger)
            result.overall = result.overall.plus(compared)
            result.by_location[snapshot.location] = result.by_location.get(
                snapshot.location, NO_DIFFERENCE
            ).plus(compared)
            if snapshot.source in rules.correct_from:
                result.corrected += self._correct(snapshot, compared)
        return result

    def _correct(self, snapshot: StockSnapshot, compared: Reconciliation) -> int:
        corrected = 0
        for difference in compared.differences:
            movement = InventoryMovement(
                kind="count",
                sku=difference.sku,
                location=difference.location,
                quantity=difference.reported,
                source_version=snapshot.version,
            )
            event_id = f"{snapshot.source}:{snapshot.location}:{snapshot.version}:{difference.sku}"
            outcome = self._inventory.apply(CORRECTION_SOURCE, event_id, snapshot.taken_at, movement)
            corrected += outcome == "applied"
        return corrected
