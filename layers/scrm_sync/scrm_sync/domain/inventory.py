"""Omnichannel inventory: stock per SKU per location, and the movements that change it.

A balance holds `on_hand` (physically there), `reserved` (held for orders not yet shipped) and
`incoming` (shipped to it, not yet received). What can be promised is
`available = on_hand - reserved - safety_stock`, where the safety stock is configuration (per
location, overridable per SKU) read when a reservation is made, so changing it needs no rewrite
of the balances. Storage keeps `free = on_hand - reserved` next to the two, because a DynamoDB
condition cannot subtract: a reservation is `free >= quantity + safety_stock`, checked and
applied in one conditional write.

Movements (the canonical event's `inventory` payload, or the reservations API):
- receipt, return: on_hand += q          - sale: on_hand -= q (what was sold is gone, even if
- adjustment: on_hand += q (signed)        that takes available below zero: it is reported)
- count: on_hand := q (absolute), applied only when its `source_version` is newer than the last
  count's, so an older count never overwrites a newer one
- reserve: reserved += q, only if available >= q (never oversell)
- release: reserved -= q                 - ship: reserved -= q and on_hand -= q
- transfer_out: on_hand -= q here, incoming += q at `counterpart` (the receiving location)
- transfer_in: on_hand += q here, incoming -= q (not below zero)
Every movement is applied once per (source, event id); reservations once per reservation id.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MovementKind = Literal[
    "receipt",
    "sale",
    "return",
    "adjustment",
    "count",
    "reserve",
    "release",
    "ship",
    "transfer_out",
    "transfer_in",
]
RESERVATION_KINDS: Final = frozenset({"reserve", "release", "ship"})
TRANSFER_KINDS: Final = frozenset({"transfer_out", "transfer_in"})
MAX_QUANTITY: Final = 1_000_000_000  # far beyond any shelf; keeps sums exact in DynamoDB numbers
MAX_RESERVATION_LINES: Final = 40  # one transaction: a reservation item + 2 items per line <= 100
DEFAULT_RESERVATION_SECONDS: Final = 15 * 60
MAX_RESERVATION_SECONDS: Final = 7 * 24 * 3600

_CODE = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"  # no "/": a SKU is a URL path segment
_CODE_PATTERN = re.compile(_CODE)
Sku = Annotated[str, StringConstraints(pattern=_CODE)]
LocationCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")]  # tmall, youzan, pos...
ReservationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
SignedQuantity = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InventoryMovement(_Model):
    """One stock movement at one location (the canonical `inventory` event's payload)."""

    kind: MovementKind
    sku: Sku
    location: LocationCode
    quantity: SignedQuantity
    source_version: Annotated[int, Field(ge=0)] | None = None  # counts: newer wins
    reservation_id: ReservationId | None = None  # reserve, release, ship
    counterpart: LocationCode | None = None  # transfer_out: where it goes; transfer_in: where from

    @model_validator(mode="after")
    def _fields_for_kind(self) -> InventoryMovement:
        if self.quantity < 0 and self.kind != "adjustment":
            raise ValueError(f"quantity must not be negative for a {self.kind} (use an adjustment)")
        if self.kind == "count" and self.source_version is None:
            raise ValueError("a count needs a source_version (newer counts win)")
        if self.kind in RESERVATION_KINDS and self.reservation_id is None:
            raise ValueError(f"a {self.kind} needs a reservation_id")
        if self.kind == "transfer_out" and self.counterpart is None:
            raise ValueError("a transfer_out needs a counterpart (the receiving location)")
        if self.counterpart is not None and self.counterpart == self.location:
            raise ValueError("counterpart must differ from location")
        return self


@dataclass(frozen=True, slots=True)
class Balance:
    sku: str
    location: str
    on_hand: int = 0
    reserved: int = 0
    incoming: int = 0
    count_version: int | None = None  # source version of the last count applied

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved

    def available(self, safety_stock: int = 0) -> int:
        return self.on_hand - self.reserved - safety_stock

    def plus(self, delta: Delta) -> Balance:
        return replace(
            self,
            on_hand=self.on_hand + delta.on_hand,
            reserved=self.reserved + delta.reserved,
            incoming=self.incoming + delta.incoming,
            count_version=delta.count_version if delta.count_version is not None else self.count_version,
        )


@dataclass(frozen=True, slots=True)
class Delta:
    """What a movement adds to one balance (and, for counts, the version it sets)."""

    on_hand: int = 0
    reserved: int = 0
    incoming: int = 0
    count_version: int | None = None

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_zero(self) -> bool:
        return not (self.on_hand or self.reserved or self.incoming) and self.count_version is None


def movement_delta(movement: InventoryMovement, current: Balance) -> Delta | None:
    """The change a movement makes to its own location's balance; None when a count is older
    than (or as old as) the count already applied. Reservation kinds take the quantity from the
    reservation, so the caller passes the reserved quantity as `movement.quantity`."""
    q = movement.quantity
    match movement.kind:
        case "receipt" | "return" | "adjustment":
            return Delta(on_hand=q)
        case "transfer_in":
            return Delta(on_hand=q, incoming=-min(q, current.incoming))
        case "sale" | "transfer_out":
            return Delta(on_hand=-q)
        case "count":
            assert movement.source_version is not None
            if current.count_version is not None and movement.source_version <= current.count_version:
                return None
            return Delta(on_hand=q - current.on_hand, count_version=movement.source_version)
        case "reserve":
            return Delta(reserved=q)
        case "release":
            return Delta(reserved=-q)
        case "ship":
            return Delta(on_hand=-q, reserved=-q)
    raise AssertionError(movement.kind)  # pragma: no cover - Literal is exhaustive


# --- configuration: the rules document's `inventory` section -----------------------------------

LocationKind = Literal["warehouse", "store", "channel"]


class Location(_Model):
    kind: LocationKind = "store"
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] = 100  # lower is preferred among equals
    safety_stock: Quantity = 0
    # the sales channel an allocation location sells on (kind "channel"): tmall, doudian, youzan...
    channel: ChannelName | None = None

    @model_validator(mode="after")
    def _both_coordinates(self) -> Location:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class Listing(_Model):
    """Where a SKU is sold on a marketplace: the item (Tmall item_id / num_iid, Doudian
    product_id) and, for items with variants, the channel's SKU id."""

    item_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    sku_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = None


# Marketplace order statuses that end a line's demand (Tmall's, then generic ones); rules may replace
DEFAULT_CLOSED_STATUSES: Final = frozenset(
    {"TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO", "cancelled", "canceled", "closed", "deleted"}
)
DEFAULT_SHIPPED_STATUSES: Final = frozenset(
    {"WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "shipped", "completed"}
)
DEFAULT_TRANSFER_ACK_SECONDS: Final = 30 * 60


class InventoryRules(_Model):
    """Where stock is kept, how much of it is never promised, and where each sales channel's
    orders are fulfilled (a line that cannot be met there goes to the nearest store with stock)."""

    locations: dict[LocationCode, Location] = Field(default_factory=dict)
    # per SKU overrides of a location's safety stock: {"sku": {"location": units}}
    safety_stock: dict[Sku, dict[LocationCode, Quantity]] = Field(default_factory=dict)
    reservation_seconds: Annotated[int, Field(ge=60, le=MAX_RESERVATION_SECONDS)] = (
        DEFAULT_RESERVATION_SECONDS
    )
    # order source (tmall, doudian, youzan, ...) -> the location its orders are fulfilled from
    fulfilment: dict[ChannelName, LocationCode] = Field(default_factory=dict)
    # how long a store has to accept a transfer before the next store is asked
    transfer_ack_seconds: Annotated[int, Field(ge=60, le=MAX_RESERVATION_SECONDS)] = (
        DEFAULT_TRANSFER_ACK_SECONDS
    )
    closed_statuses: frozenset[str] = DEFAULT_CLOSED_STATUSES
    shipped_statuses: frozenset[str] = DEFAULT_SHIPPED_STATUSES
    # snapshot sources whose counts are the truth: reconciliation corrects the ledger to them with
    # count events (in the movement history), never by overwriting a balance
    correct_from: frozenset[ChannelName] = frozenset()
    # channel -> SKU -> its marketplace listing, for the stock push of channel allocations
    listings: dict[ChannelName, dict[Sku, Listing]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_name_known_locations(self) -> InventoryRules:
        for sku, per_location in self.safety_stock.items():
            unknown = sorted(set(per_location) - set(self.locations))
            if unknown:
                raise ValueError(f"safety_stock[{sku!r}] names unknown locations: {', '.join(unknown)}")
        unknown = sorted({loc for loc in self.fulfilment.values() if loc not in self.locations})
        if unknown:
            raise ValueError(f"fulfilment names unknown locations: {', '.join(unknown)}")
        return self

    def safety_stock_of(self, sku: str, location: str) -> int:
        override = self.safety_stock.get(sku, {}).get(location)
        if override is not None:
            return override
        known = self.locations.get(location)
        return known.safety_stock if known else 0

    def unknown_locations(self, movement: InventoryMovement) -> list[str]:
        named = [movement.location] + ([movement.counterpart] if movement.counterpart else [])
        return [name for name in named if name not in self.locations]


# --- reservations ------------------------------------------------------------------------------

ReservationStatus = Literal["held", "released", "shipped", "expired"]


def _each_sku_once(skus: list[str], hint: str = "") -> None:
    repeated = sorted(sku for sku, times in Counter(skus).items() if times > 1)
    if repeated:
        raise ValueError(f"each sku may appear once, not {', '.join(repeated)} {hint}".rstrip())


class ReservationLine(_Model):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class ReservationRequest(_Model):
    """POST /inventory/reservations: hold stock at one location, all lines or none."""

    reservation_id: ReservationId  # the caller's key: a retry with the same id reserves nothing more
    location: LocationCode
    channel: ChannelName
    lines: list[ReservationLine] = Field(min_length=1, max_length=MAX_RESERVATION_LINES)
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    expires_in_seconds: Annotated[int, Field(ge=60, le=MAX_RESERVATION_SECONDS)] | None = None

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> ReservationRequest:
        _each_sku_once([line.sku for line in self.lines], "(add the quantities)")
        return self


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    location: str
    channel: str
    lines: tuple[tuple[str, int], ...]  # (sku, quantity)
    status: ReservationStatus
    created_at: datetime
    expires_at: datetime
    order_id: str | None = None
    fingerprint: str = ""  # what was asked (a retry with other lines is a conflict, not a duplicate)

    def status_at(self, now: datetime) -> ReservationStatus:
        """Expiry is evaluated when read: the sweep that releases it may not have run yet."""
        return "expired" if self.status == "held" and now >= self.expires_at else self.status

    def to_dict(self, now: datetime) -> dict[str, object]:
        out: dict[str, object] = {
            "reservation_id": self.reservation_id,
            "location": self.location,
            "channel": self.channel,
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in self.lines],
            "status": self.status_at(now),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        if self.order_id is not None:
            out["order_id"] = self.order_id
        return out


def request_fingerprint(request: ReservationRequest) -> str:
    lines = ";".join(f"{line.sku}={line.quantity}" for line in sorted(request.lines, key=lambda x: x.sku))
    return f"{request.location}|{request.channel}|{lines}"


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A line that could not be held: what was asked, what the location can promise, and what
    every other location could (so the caller can choose another)."""

    sku: str
    requested: int
    available: int
    elsewhere: Mapping[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "requested": self.requested,
            "available": self.available,
            "available_elsewhere": dict(self.elsewhere),
        }


def balance_view(balances: list[Balance], rules: InventoryRules) -> dict[str, object]:
    """GET /inventory/{sku}: every location's quantities, and the totals."""
    locations: list[dict[str, object]] = []
    totals = dict.fromkeys(("on_hand", "reserved", "available", "incoming"), 0)
    for balance in sorted(balances, key=lambda b: b.location):
        safety = rules.safety_stock_of(balance.sku, balance.location)
        known = rules.locations.get(balance.location)
        locations.append(
            {
                "location": balance.location,
                "kind": known.kind if known else None,
                "on_hand": balance.on_hand,
                "reserved": balance.reserved,
                "safety_stock": safety,
                "available": balance.available(safety),
                "incoming": balance.incoming,
            }
        )
        totals["on_hand"] += balance.on_hand
        totals["reserved"] += balance.reserved
        totals["available"] += max(balance.available(safety), 0)  # a shortfall is not stock elsewhere
        totals["incoming"] += balance.incoming
    return {"locations": locations, "total": totals}


# --- order fulfilment and store transfers ------------------------------------------------------

EARTH_RADIUS_KM: Final = 6371.0088  # the mean radius (IUGG)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._:\-]")


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance; infinite when either location has no coordinates."""
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return math.inf
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def transfer_sources(
    rules: InventoryRules,
    destination: str,
    sku: str,
    quantity: int,
    balances: list[Balance],
    exclude: frozenset[str] = frozenset(),
) -> list[str]:
    """Stores and warehouses that can promise `quantity`, best first: nearest to `destination`
    (haversine on the configured coordinates; a location without them comes last), then the
    lower priority number, then the most available, then the name (so every replica agrees)."""
    target = rules.locations.get(destination)
    ranked: list[tuple[float, int, int, str]] = []
    for balance in balances:
        name = balance.location
        known = rules.locations.get(name)
        if known is None or known.kind == "channel" or name == destination or name in exclude:
            continue
        available = balance.available(rules.safety_stock_of(sku, name))
        if available < quantity:
            continue
        distance = haversine_km(target, known) if target is not None else math.inf
        ranked.append((distance, known.priority, -available, name))
    return [name for *_, name in sorted(ranked)]


FulfilmentAction = Literal["reserve", "release", "ship"]


@dataclass(frozen=True, slots=True)
class LineDemand:
    """One order line's claim on stock, named so that every delivery of the order agrees."""

    demand_id: str  # also the reservation id at the fulfilment location
    sku: str
    quantity: int


def demand_id(source: str, order_id: str, line_key: str) -> str:
    raw = f"{source}:{order_id}:{line_key}"
    safe = _UNSAFE_ID.sub("-", raw)
    if safe == raw and len(safe) <= 100:
        return safe
    return f"{source}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"  # readable when it can be


def order_demands(
    source: str,
    order_id: str,
    status: str,
    lines: Sequence[tuple[str | None, str | None, object]],
    rules: InventoryRules,
) -> tuple[FulfilmentAction | None, list[LineDemand]]:
    """What an order's current status means for its lines' stock: `lines` are (line id, sku,
    quantity). None when the source has no fulfilment location, or nothing to do."""
    if source not in rules.fulfilment:
        return None, []
    if status in rules.closed_statuses:
        action: FulfilmentAction = "release"
    elif status in rules.shipped_statuses:
        action = "ship"
    else:
        action = "reserve"
    demands = []
    for index, (line_id, sku, quantity) in enumerate(lines):
        if not sku or not _CODE_PATTERN.match(sku):
            continue
        try:
            units = int(str(quantity))
        except ValueError:
            continue
        if units <= 0 or units > MAX_QUANTITY:
            continue
        demands.append(LineDemand(demand_id(source, order_id, line_id or str(index)), sku, units))
    return action, demands


TransferStatus = Literal["requested", "accepted", "shipped", "rejected", "cancelled"]


class TransferAck(_Model):
    """POST /inventory/transfers/{id}/ack: a store's answer to a transfer instruction."""

    status: Literal["accepted", "rejected", "shipped"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


# status -> the acknowledgements that may follow it
TRANSFER_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "requested": frozenset({"accepted", "rejected", "shipped"}),
    "accepted": frozenset({"rejected", "shipped"}),
    "shipped": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Transfer:
    """An instruction to one store: ship (or transfer) this order line's units. A rejection or
    a missed acknowledgement deadline ends this attempt; the next store gets attempt + 1."""

    demand_id: str
    attempt: int
    sku: str
    quantity: int
    source: str  # the store asked to ship
    destination: str  # the order's fulfilment location
    channel: str
    order_id: str
    status: TransferStatus
    requested_at: datetime
    ack_by: datetime
    tried: tuple[str, ...] = ()  # stores asked before this attempt
    reason: str | None = None

    @property
    def transfer_id(self) -> str:
        return transfer_id(self.demand_id, self.attempt)

    @property
    def reservation_id(self) -> str:
        """The units held at the source store for this attempt."""
        return f"{self.demand_id}-t{self.attempt}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "transfer_id": self.transfer_id,
            "status": self.status,
            "sku": self.sku,
            "quantity": self.quantity,
            "source": self.source,
            "destination": self.destination,
            "channel": self.channel,
            "order_id": self.order_id,
            "attempt": self.attempt,
            "requested_at": self.requested_at.isoformat(),
            "ack_by": self.ack_by.isoformat(),
            "tried": list(self.tried),
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def transfer_id(demand: str, attempt: int) -> str:
    return f"{demand}~{attempt}"


def parse_transfer_id(text: str) -> tuple[str, int] | None:
    demand, _, attempt = text.rpartition("~")
    if not demand or not attempt.isdigit() or not 1 <= int(attempt) <= 1000:
        return None
    return demand, int(attempt)


# --- reconciliation: what the sources say they hold, against the ledger ------------------------

DIFFERENCE_ALARM_PERCENT: Final = 0.3  # the template's InventoryDifferenceAlarm threshold
MAX_SNAPSHOT_ITEMS: Final = 1000


class SnapshotItem(_Model):
    sku: Sku
    quantity: Quantity


class StockSnapshot(_Model):
    """POST /inventory/snapshots: what a source (a store's POS, a channel) counts at a location
    at one moment. A newer version replaces the source's previous snapshot there."""

    source: ChannelName
    location: LocationCode
    version: Annotated[int, Field(ge=0)]
    taken_at: AwareDatetime
    items: list[SnapshotItem] = Field(min_length=1, max_length=MAX_SNAPSHOT_ITEMS)

    @model_validator(mode="after")
    def _one_item_per_sku(self) -> StockSnapshot:
        _each_sku_once([item.sku for item in self.items])
        return self


@dataclass(frozen=True, slots=True)
class StockDifference:
    sku: str
    location: str
    reported: int
    ledger: int  # on_hand as of the snapshot's time

    @property
    def difference(self) -> int:
        return self.reported - self.ledger


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One comparison: the share of (SKU, location) pairs that differ, and of units."""

    compared: int
    differences: tuple[StockDifference, ...]
    reported_units: int
    differing_units: int

    @property
    def difference_percent(self) -> float:
        return 100.0 * len(self.differences) / self.compared if self.compared else 0.0

    @property
    def unit_difference_percent(self) -> float:
        return 100.0 * self.differing_units / self.reported_units if self.reported_units else 0.0

    def plus(self, other: Reconciliation) -> Reconciliation:
        return Reconciliation(
            self.compared + other.compared,
            self.differences + other.differences,
            self.reported_units + other.reported_units,
            self.differing_units + other.differing_units,
        )

    def to_dict(self, limit: int = 100) -> dict[str, object]:
        return {
            "compared": self.compared,
            "differing": len(self.differences),
            "difference_percent": round(self.difference_percent, 4),
            "unit_difference_percent": round(self.unit_difference_percent, 4),
            "differences": [
                {"sku": d.sku, "location": d.location, "reported": d.reported, "ledger": d.ledger}
                for d in self.differences[:limit]
            ],
        }


NO_DIFFERENCE: Final = Reconciliation(0, (), 0, 0)


def reconcile(location: str, reported: Mapping[str, int], ledger: Mapping[str, int]) -> Reconciliation:
    """Compare a snapshot (sku -> units) with the ledger's on_hand at its time (sku -> units;
    a SKU the ledger never saw holds 0)."""
    differences = tuple(
        StockDifference(sku, location, units, ledger.get(sku, 0))
        for sku, units in sorted(reported.items())
        if units != ledger.get(sku, 0)
    )
    return Reconciliation(
        compared=len(reported),
        differences=differences,
        reported_units=sum(reported.values()),
        differing_units=sum(abs(d.difference) for d in differences),
    )
