"""CDC use case: one source row change (DMS -> Kinesis, the binlog bridge or the incremental pull)
through its table mapping into the sync core.

A row's changes must be applied in their source order (a delete detaches what its insert
linked), which the caller keeps. Streams replay: a change recorded in the ledger as applied is
skipped, so a retried batch or a DMS restart never applies an old change after newer ones; the
one change that may be applied twice (applied, then a crash before it was recorded) is the
latest, and applying the latest change again changes nothing. A row that cannot be read raises
MalformedChange: retrying cannot fix it, so the caller keeps it aside instead of blocking the
stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..domain.cdc import ControlChange, RowChange
from ..domain.events import CanonicalEvent, needs_stock
from ..domain.rules import Rules
from ..domain.table_mapping import map_change
from .ports import ChangeLedger, EventQueue
from .sync import ProfileSync, UnlinkableEvent


@dataclass(slots=True)
class CdcOutcome:
    table_key: str
    mapped: bool  # the table has a mapping; changes of other tables are skipped
    applied: list[str] = field(default_factory=list)  # event ids the sync core applied
    replayed: bool = False  # applied before (the ledger has it): skipped
    unchanged: bool = False  # an update that changed no mapped value: nothing to apply
    unlinkable: list[str] = field(default_factory=list)  # events with no identifier that may link
    field_errors: tuple[str, ...] = ()  # mapped paths whose values were unusable (never the values)
    control: ControlChange | None = None  # DDL or task control record: the caller records the drift

    @property
    def skipped(self) -> bool:
        """A row change of a table without a mapping."""
        return not self.mapped and self.control is None


class StockForwardFailed(RuntimeError):
    """An order could not be handed to the inventory lane: retry the change (applying it again
    changes nothing)."""


class CdcSync:
    def __init__(
        self,
        sync: ProfileSync,
        rules: Callable[[], Rules],
        ledger: ChangeLedger,
        inventory_queue: EventQueue | None = None,
    ) -> None:
        self._sync = sync
        self._rules = rules
        self._ledger = ledger
        self._inventory_queue = inventory_queue

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
        if not mapped.events:
            return outcome
        if self._ledger.applied(mapped.event_id):
            outcome.replayed = True
            return outcome
        for event in mapped.events:
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
        """Orders of channels with a fulfilment location also go to the inventory lane, before
        the change is recorded as applied (so a failure here retries the change)."""
        if self._inventory_queue is None:
            return
        inventory_rules = self._rules().inventory
        messages = [(str(i), e.to_message()) for i, e in enumerate(events) if needs_stock(e, inventory_rules)]
        if messages and self._inventory_queue.send(messages):
            raise StockForwardFailed("orders could not be handed to the inventory queue")
