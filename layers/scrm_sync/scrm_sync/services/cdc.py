"""CDC use case: one source row change (DMS -> Kinesis, the binlog bridge or the incremental pull)
through its table mapping into the sync core.

A row's changes must be applied in their source order (a delete detaches what its insert
linked), which the caller keeps. Streams replay: a change recorded in the ledger as applied is
skipped, so a retried batch or a DMS restart never applies an old change after newer ones; the
one change that may be applied twice (applied, then a crash before it was recorded) is the
latest, and applying the latest change again changes nothing. A row that cannot be read raises
MalformedChange: retrying cannot fix it, so the caller keeps it aside instead of blocking the
stream.

Rows of stock tables name no customer: their counts go to the inventory lane (like the orders
of channels with a fulfilment location), and report-only rows are kept as the source's reported
stock for reconciliation. A stock row naming a location the rules do not know is malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..domain.cdc import ControlChange, MalformedChange, RowChange
from ..domain.events import INVENTORY, CanonicalEvent, needs_stock
from ..domain.inventory import StockSnapshot
from ..domain.rules import Rules
from ..domain.table_mapping import map_change
from .inventory import UnknownLocation
from .ports import ChangeLedger, EventQueue, StockReports
from .sync import ProfileSync, UnlinkableEvent


@dataclass(slots=True)
class CdcOutcome:
    table_key: str
    mapped: bool  # the table has a mapping; changes of other tables are skipped
    applied: list[str] = field(default_factory=list)  # event ids the sync core applied
    replayed: bool = False  # applied before (the ledger has it): skipped
    unchanged: bool = False  # an update that changed no mapped value: nothing to apply
    unlinkable: list[str] = field(default_factory=list)  # events with no identifier that may link
    reported: bool = False  # a report-only stock row kept for reconciliation
    field_errors: tuple[str, ...] = ()  # mapped paths whose values were unusable (never the values)
    control: ControlChange | None = None  # DDL or task control record: the caller records the drift

    @property
    def skipped(self) -> bool:
        """A row change of a table without a mapping."""
        return not self.mapped and self.control is None


class StockForwardFailed(RuntimeError):
    """An order or a stock count could not be handed to the inventory lane: retry the change
    (applying it again changes nothing)."""


class CdcSync:
    def __init__(
        self,
        sync: ProfileSync,
        rules: Callable[[], Rules],
        ledger: ChangeLedger,
        inventory_queue: EventQueue | None = None,
        stock_reports: StockReports | None = None,
    ) -> None:
        self._sync = sync
        self._rules = rules
        self._ledger = ledger
        self._inventory_queue = inventory_queue
        self._stock_reports = stock_reports

    def apply(self, change: RowChange | ControlChange) -> CdcOutcome:
        mapping = self._rules().table_mapping(change.table_key)
        if isinstance(change, ControlChange):
            return CdcOutcome(change.table_key, mapped=mapping is not None, control=change)
        if mapping is None:
            return CdcOutcome(change.table_key, mapped=False)
        mapped = map_change(change, mapping)
        outcome = CdcOutcome(
            change.table_key,
            mapped=True,
            unchanged=mapped.unchanged,
            field_errors=mapped.field_errors,
        )
        if mapped.without_identifiers:
            outcome.unlinkable.append(mapped.event_id)
        if not mapped.events and mapped.reported is None:
            return outcome
        if self._ledger.applied(mapped.event_id):
            outcome.replayed = True
            return outcome
        if mapped.reported is not None:
            self._keep_report(mapped.reported)
            outcome.reported = True
        for event in mapped.events:
            if event.type == INVENTORY:  # a stock count: the inventory lane applies it
                self._known_location(event.inventory.location if event.inventory else "")
                outcome.applied.append(event.event_id)
                continue
            try:
                self._sync.apply(event)
            except UnlinkableEvent:
                # every identifier was invalid or blocklisted: retrying cannot link it
                outcome.unlinkable.append(event.event_id)
                continue
            outcome.applied.append(event.event_id)
        self._forward_orders(mapped.events)
        self._ledger.record(mapped.event_id)
        return outcome

    def _forward_orders(self, events: Sequence[CanonicalEvent]) -> None:
        """Stock counts, and orders of channels with a fulfilment location, go to the inventory
        lane before the change is recorded as applied (so a failure here retries the change)."""
        inventory_rules = self._rules().inventory
        messages = [
            (str(i), e.to_message())
            for i, e in enumerate(events)
            if e.type == INVENTORY or needs_stock(e, inventory_rules)
        ]
        if not messages:
            return
        if self._inventory_queue is None:
            if any(e.type == INVENTORY for e in events):
                raise StockForwardFailed("stock counts need the inventory queue")
            return  # without an inventory lane, orders only update profiles
        if self._inventory_queue.send(messages):
            raise StockForwardFailed("orders could not be handed to the inventory queue")

    def _known_location(self, location: str) -> None:
        if location not in self._rules().inventory.locations:
            raise MalformedChange(f"stock location {location!r} is not in the rules' inventory.locations")

    def _keep_report(self, row: StockSnapshot) -> None:
        if self._stock_reports is None:
            raise StockForwardFailed("report-only stock rows need the inventory table")
        try:
            self._stock_reports.accept_row(row)  # an older version than the one kept is no news
        except UnknownLocation as exc:
            raise MalformedChange(str(exc)) from None
