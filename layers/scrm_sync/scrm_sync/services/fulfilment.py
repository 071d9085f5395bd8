"""Marketplace orders against the stock: each line is held at its channel's fulfilment location;
a line that cannot be met there is sent to the nearest store with stock (ship-from-store), as a
transfer instruction the store acknowledges; a rejection, or no acknowledgement in time, asks
the next store. Orders that close give their units back; orders that ship take them off.

Every step is idempotent, because orders arrive more than once (CDC re-reads, platform pushes,
queue redeliveries): the line's reservation id and each transfer attempt are named by the order,
the line and the attempt number, and a transfer's status only moves along TRANSFER_TRANSITIONS.
Instructions are published as `scrm.inventory.transfer` events (EventBridge) for store systems.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ..domain.events import Order
from ..domain.inventory import (
    MAX_RESERVATION_SECONDS,
    TRANSFER_TRANSITIONS,
    InventoryRules,
    LineDemand,
    Reservation,
    ReservationLine,
    ReservationRequest,
    Transfer,
    TransferStatus,
    order_demands,
    parse_transfer_id,
    transfer_sources,
)
from .inventory import Inventory, ReservationConflict
from .ports import EventPublisher, TransferStore

TRANSFER_CHANNEL = "transfer"  # the channel of the reservations that hold a transfer's units


class TransferNotFound(LookupError):
    pass


class TransferTransitionRefused(ValueError):
    """The acknowledgement does not follow the transfer's status (e.g. shipped, then rejected)."""

    def __init__(self, transfer: Transfer, wanted: str) -> None:
        super().__init__(f"transfer is {transfer.status}; it cannot become {wanted}")
        self.transfer = transfer


class TransferEventsUnpublished(RuntimeError):
    """The instruction is recorded but its event could not be published: retry the message."""


@dataclass(slots=True)
class FulfilmentReport:
    reserved: list[str] = field(default_factory=list)  # demand ids held at the fulfilment location
    transfers: list[str] = field(default_factory=list)  # transfer ids requested
    unfulfillable: list[str] = field(default_factory=list)  # demand ids no store can meet
    released: list[str] = field(default_factory=list)
    shipped: list[str] = field(default_factory=list)


class Fulfilment:
    def __init__(
        self,
        inventory: Inventory,
        transfers: TransferStore,
        events: EventPublisher,
        rules: Callable[[], InventoryRules],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._inventory = inventory
        self._transfers = transfers
        self._events = events
        self._rules = rules
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- orders ----------------------------------------------------------------------------------
    def order(self, source: str, order: Order) -> FulfilmentReport:
        rules = self._rules()
        lines = [(line.line_id, line.sku, line.quantity) for line in order.lines]
        action, demands = order_demands(source, order.order_id, order.status, lines, rules)
        report = FulfilmentReport()
        for demand in demands:
            if action == "reserve":
                self._hold(source, order.order_id, demand, rules, report)
            elif action == "release":
                self._inventory.finish(demand.demand_id, "released")
                self._cancel_open_transfer(demand.demand_id, "the order was closed")
                report.released.append(demand.demand_id)
            elif action == "ship":
                self._inventory.finish(demand.demand_id, "shipped")
                report.shipped.append(demand.demand_id)
        return report

    def _hold(
        self, source: str, order_id: str, demand: LineDemand, rules: InventoryRules, report: FulfilmentReport
    ) -> None:
        if self._transfers.latest_transfer(demand.demand_id) is not None:
            return  # a store was asked already: this is a redelivery of the order
        destination = rules.fulfilment[source]
        held = self._inventory.reserve(
            ReservationRequest(
                reservation_id=demand.demand_id,
                location=destination,
                channel=source,
                lines=[ReservationLine(sku=demand.sku, quantity=demand.quantity)],
                order_id=order_id,
                expires_in_seconds=MAX_RESERVATION_SECONDS,  # until the order ships or closes
            )
        )
        if held.status != "short":
            report.reserved.append(demand.demand_id)
            return
        requested = self._next_transfer(demand, source, order_id, destination, attempt=1, tried=())
        if requested is None:
            report.unfulfillable.append(demand.demand_id)
        else:
            report.transfers.append(requested.transfer_id)

    # --- transfers -------------------------------------------------------------------------------
    def _next_transfer(
        self,
        demand: LineDemand,
        channel: str,
        order_id: str,
        destination: str,
        attempt: int,
        tried: tuple[str, ...],
    ) -> Transfer | None:
        """Ask the best store that can still promise the units; None when none can."""
        rules = self._rules()
        now = self._clock()
        balances = self._inventory.balances(demand.sku)
        for candidate in transfer_sources(
            rules, destination, demand.sku, demand.quantity, balances, frozenset(tried)
        ):
            transfer = Transfer(
                demand_id=demand.demand_id,
                attempt=attempt,
                sku=demand.sku,
                quantity=demand.quantity,
                source=candidate,
                destination=destination,
                channel=channel,
                order_id=order_id,
                status="requested",
                requested_at=now,
                ack_by=now + timedelta(seconds=rules.transfer_ack_seconds),
                tried=tried,
            )
            location = self._hold_at_store(transfer, rules)
            if location is None:
                continue  # another order took the units meanwhile: the next store
            if location != candidate:  # a redelivery: this attempt's units were held elsewhere
                transfer = replace(transfer, source=location)
            # published before it is recorded: a failure in between repeats the event (store
            # systems dedupe on transfer_id), never loses it
            self._publish("requested", transfer)
            if not self._transfers.create_transfer(transfer):
                return self._transfers.transfer(demand.demand_id, attempt) or transfer
            return transfer
        self._publish_unfulfillable(demand, channel, order_id, destination, tried)
        return None

    def _hold_at_store(self, transfer: Transfer, rules: InventoryRules) -> str | None:
        request = ReservationRequest(
            reservation_id=transfer.reservation_id,
            location=transfer.source,
            channel=TRANSFER_CHANNEL,
            lines=[ReservationLine(sku=transfer.sku, quantity=transfer.quantity)],
            order_id=transfer.transfer_id,
            expires_in_seconds=rules.transfer_ack_seconds,  # unacknowledged: the sweep lets it go
        )
        try:
            held = self._inventory.reserve(request)
        except ReservationConflict:
            existing = self._inventory.reservation(transfer.reservation_id)
            return existing.location if existing is not None else None
        return None if held.status == "short" else transfer.source

    def transfer(self, transfer_id_text: str) -> Transfer | None:
        parsed = parse_transfer_id(transfer_id_text)
        return self._transfers.transfer(*parsed) if parsed else None

    def acknowledge(self, transfer_id_text: str, status: str, reason: str | None = None) -> Transfer:
        """A store's answer: accepted, rejected or shipped. The same answer twice changes
        nothing; an answer that does not follow the status is refused."""
        transfer = self.transfer(transfer_id_text)
        if transfer is None:
            raise TransferNotFound(transfer_id_text)
        if transfer.status == status:
            return transfer
        if status not in TRANSFER_TRANSITIONS[transfer.status]:
            raise TransferTransitionRefused(transfer, status)
        wanted: TransferStatus = status  # type: ignore[assignment]  # checked above
        allowed = frozenset(s for s, nexts in TRANSFER_TRANSITIONS.items() if status in nexts)
        if not self._transfers.set_transfer_status(transfer, wanted, allowed, reason):
            current = self.transfer(transfer_id_text) or transfer
            if current.status == status:
                return current
            raise TransferTransitionRefused(current, status)
        if wanted == "accepted":
            self._transfers.extend(
                transfer.reservation_id, self._clock() + timedelta(seconds=MAX_RESERVATION_SECONDS)
            )
        elif wanted == "shipped":
            self._inventory.finish(transfer.reservation_id, "shipped")
        elif wanted == "rejected":
            self._inventory.finish(transfer.reservation_id, "released")
            self._ask_next_store(transfer)
        return self.transfer(transfer_id_text) or transfer

    def expire_due(self) -> tuple[int, int]:
        """The minute sweep: expired reservations give their units back, and a transfer whose
        store did not acknowledge in time (or accepted and never shipped) goes to the next
        store. (expired reservations, transfers timed out)"""
        expired = self._inventory.expire_due()
        timed_out = 0
        for reservation in expired:
            if reservation.channel == TRANSFER_CHANNEL and self._time_out(reservation):
                timed_out += 1
        return len(expired), timed_out

    def _time_out(self, reservation: Reservation) -> bool:
        transfer = self.transfer(reservation.order_id or "")
        if transfer is None or transfer.status not in ("requested", "accepted"):
            return False
        reason = "no acknowledgement in time" if transfer.status == "requested" else "accepted, never shipped"
        if not self._transfers.set_transfer_status(
            transfer, "rejected", frozenset({transfer.status}), reason
        ):
            return False
        self._ask_next_store(transfer)
        return True

    def _ask_next_store(self, rejected: Transfer) -> None:
        demand = LineDemand(rejected.demand_id, rejected.sku, rejected.quantity)
        self._next_transfer(
            demand,
            rejected.channel,
            rejected.order_id,
            rejected.destination,
            attempt=rejected.attempt + 1,
            tried=(*rejected.tried, rejected.source),
        )

    def _cancel_open_transfer(self, demand_id: str, reason: str) -> None:
        transfer = self._transfers.latest_transfer(demand_id)
        if transfer is None or transfer.status not in ("requested", "accepted"):
            return
        if self._transfers.set_transfer_status(transfer, "cancelled", frozenset({transfer.status}), reason):
            self._inventory.finish(transfer.reservation_id, "released")
            self._publish("cancelled", transfer)

    # --- events ------------------------------------------------------------------------------------
    def _publish(self, what: str, transfer: Transfer) -> None:
        self._put([{"event": f"transfer.{what}", **transfer.to_dict()}])

    def _publish_unfulfillable(
        self, demand: LineDemand, channel: str, order_id: str, destination: str, tried: Sequence[str]
    ) -> None:
        self._put(
            [
                {
                    "event": "transfer.unfulfillable",
                    "demand_id": demand.demand_id,
                    "sku": demand.sku,
                    "quantity": demand.quantity,
                    "channel": channel,
                    "order_id": order_id,
                    "destination": destination,
                    "tried": list(tried),
                }
            ]
        )

    def _put(self, documents: list[dict[str, object]]) -> None:
        failed = self._events.publish(
            [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in documents]
        )
        if failed:
            raise TransferEventsUnpublished(f"{len(failed)} transfer events could not be published")
