"""Inventory use cases: apply stock movements once, hold stock without overselling, give back
what is released or expired, and show a SKU's stock everywhere.

Which movements need a read first: only those whose change depends on the current balance (a
count sets an absolute on_hand; a transfer_in takes from `incoming`, not below zero). The rest
are one conditional transaction with no read, which is what keeps a hot SKU fast at a peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..domain.inventory import (
    Balance,
    InventoryMovement,
    InventoryRules,
    Reservation,
    ReservationLine,
    ReservationRequest,
    ReservationStatus,
    Shortfall,
    balance_view,
    movement_delta,
    request_fingerprint,
)
from .ports import ConcurrentChange, InventoryStore, MovementOutcome

_STALE_RETRIES = 8
_NEEDS_CURRENT_BALANCE = frozenset({"count", "transfer_in"})


class UnknownLocation(ValueError):
    """A location that the rules document's inventory.locations does not name."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            f"unknown location {', '.join(repr(n) for n in names)}: add it to the rules document's"
            " inventory.locations"
        )
        self.names = names


class ReservationConflict(ValueError):
    """The reservation id is taken by a reservation with other lines, location or channel."""


class ReservationNotFound(LookupError):
    """No reservation has this id (yet: a release may arrive before its reserve)."""


@dataclass(frozen=True, slots=True)
class ReserveResult:
    status: str  # "reserved" | "exists" | "short"
    reservation: Reservation
    shortfalls: tuple[Shortfall, ...] = ()


class Inventory:
    def __init__(
        self,
        store: InventoryStore,
        rules: Callable[[], InventoryRules],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- reads -------------------------------------------------------------------------------------
    def stock(self, sku: str) -> dict[str, object]:
        return {"sku": sku, **balance_view(self._store.balances(sku), self._rules())}

    def reservation(self, reservation_id: str) -> Reservation | None:
        return self._store.reservation(reservation_id)

    def balances(self, sku: str) -> list[Balance]:
        return self._store.balances(sku)

    def movements(self, sku: str, location: str, limit: int = 100) -> list[dict[str, object]]:
        """The append-only history of one SKU at one location, newest first."""
        return self._store.movements(sku, location, limit)

    # --- movements -------------------------------------------------------------------------------
    def apply(
        self, source: str, event_id: str, occurred_at: datetime, movement: InventoryMovement
    ) -> MovementOutcome | ReserveResult:
        """One inventory event. Reservation kinds go through the reservation paths (a reserve
        event is a one-line reservation at its location for its source's channel)."""
        unknown = self._rules().unknown_locations(movement)
        if unknown:
            raise UnknownLocation(unknown)
        if movement.kind == "reserve":
            assert movement.reservation_id is not None
            request = ReservationRequest(
                reservation_id=movement.reservation_id,
                location=movement.location,
                channel=source,
                lines=[ReservationLine(sku=movement.sku, quantity=movement.quantity)],
            )
            return self.reserve(request)
        if movement.kind in ("release", "ship"):
            assert movement.reservation_id is not None
            finished = self.finish(
                movement.reservation_id, "shipped" if movement.kind == "ship" else "released"
            )
            if finished is None:
                raise ReservationNotFound(movement.reservation_id)
            return "applied"
        for _ in range(_STALE_RETRIES):
            seen = (
                self._store.balance(movement.sku, movement.location)
                if movement.kind in _NEEDS_CURRENT_BALANCE
                else Balance(movement.sku, movement.location)
            )
            delta = movement_delta(movement, seen)
            outcome = self._store.apply_movement(source, event_id, occurred_at, movement, delta, seen)
            if outcome != "stale":
                return outcome
        raise ConcurrentChange(f"{movement.kind} kept racing other changes")

    # --- reservations ----------------------------------------------------------------------------
    def reserve(self, request: ReservationRequest) -> ReserveResult:
        rules = self._rules()
        if request.location not in rules.locations:
            raise UnknownLocation([request.location])
        now = self._clock()
        seconds = request.expires_in_seconds or rules.reservation_seconds
        reservation = Reservation(
            reservation_id=request.reservation_id,
            location=request.location,
            channel=request.channel,
            lines=tuple((line.sku, line.quantity) for line in request.lines),
            status="held",
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
            order_id=request.order_id,
            fingerprint=request_fingerprint(request),
        )
        needed = [
            (sku, quantity, rules.safety_stock_of(sku, request.location))
            for sku, quantity in reservation.lines
        ]
        outcome = self._store.reserve(reservation, needed)
        if outcome.status == "exists":
            if outcome.reservation.fingerprint != reservation.fingerprint:
                raise ReservationConflict(
                    f"reservation {request.reservation_id!r} exists with other lines, location or channel"
                )
            return ReserveResult("exists", outcome.reservation)
        if outcome.status == "short":
            return ReserveResult("short", reservation, self._shortfalls(reservation, rules))
        return ReserveResult("reserved", outcome.reservation)

    def _shortfalls(self, reservation: Reservation, rules: InventoryRules) -> tuple[Shortfall, ...]:
        found = []
        for sku, quantity in reservation.lines:
            by_location = {
                b.location: b.available(rules.safety_stock_of(sku, b.location))
                for b in self._store.balances(sku)
            }
            here = by_location.pop(reservation.location, 0)
            if here < quantity:
                elsewhere = {name: units for name, units in sorted(by_location.items()) if units > 0}
                found.append(Shortfall(sku, quantity, max(here, 0), elsewhere))
        return tuple(found)

    def finish(
        self, reservation_id: str, status: ReservationStatus, reason: str | None = None
    ) -> Reservation | None:
        """Release or ship a held reservation (idempotent: finishing a finished one changes
        nothing, and the reservation is returned as it is). A reservation past its expiry is
        expired first, whatever was asked: its units were no longer promised. None when there
        is no such reservation."""
        reservation = self._store.reservation(reservation_id)
        if reservation is None:
            return None
        if reservation.status == "held":
            if reservation.status_at(self._clock()) == "expired":
                status, reason = "expired", "expired"
            self._store.finish(reservation, status, reason or status)
            reservation = self._store.reservation(reservation_id) or reservation
        return reservation

    def expire_due(self, limit: int = 500) -> list[Reservation]:
        """Release held reservations past their expiry (the schedule; DynamoDB TTL is only
        best-effort, and reads already show them as expired); the ones this run expired."""
        now = self._clock()
        expired = []
        for reservation_id in self._store.due_reservations(now, limit):
            reservation = self._store.reservation(reservation_id)
            if reservation is None or reservation.status != "held" or reservation.expires_at > now:
                continue
            if self._store.finish(reservation, "expired", "expired") == "finished":
                expired.append(reservation)
        return expired

    def now(self) -> datetime:
        return self._clock()
