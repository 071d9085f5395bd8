"""The hot order record: one per (source, order id), holding the latest state an order event
carried, and the rules that key it for the orders table.

An event's version is `<occurred_at in microseconds, fixed width>|<event id>`: a string that sorts
like (time at the source, event id), so the store keeps the latest state with one condition
(`attribute_not_exists(version) OR version < :v`) and a duplicate (same version) changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .events import ORDER_EVENT_TYPES, CanonicalEvent

# The age index is spread over this many partition keys so the archiver's reads and the order
# writes never meet on one hot GSI partition. Changing it re-buckets every order: it is data.
AGE_SHARDS = 16
KEY_PREFIX = "order#"

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_MICROS_WIDTH = 18
_ONE_MICROSECOND = timedelta(microseconds=1)


def order_key(source: str, order_id: str) -> str:
    return f"{KEY_PREFIX}{source}#{order_id}"


def split_order_key(key: str) -> tuple[str, str]:
    """(source, order id) of an order key; sources never contain "#", order ids may."""
    if not key.startswith(KEY_PREFIX) or key.count("#") < 2:
        raise ValueError(f"not an order key: {key}")
    source, order_id = key[len(KEY_PREFIX) :].split("#", 1)
    return source, order_id


def age_shard(key: str) -> str:
    """A stable shard ("0".."15") for an order key; not Python's hash(), which varies per process."""
    return str(int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % AGE_SHARDS)


def all_age_shards() -> list[str]:
    return [str(n) for n in range(AGE_SHARDS)]


def order_version(occurred_at: datetime, event_id: str) -> str:
    micros = (occurred_at.astimezone(UTC) - _EPOCH) // _ONE_MICROSECOND
    return f"{micros:0{_MICROS_WIDTH}d}|{event_id}"


@dataclass(frozen=True, slots=True)
class OrderState:
    """The latest state of one order, as the last applied order event carried it."""

    source: str
    order_id: str
    profile_id: str
    status: str
    total: Decimal | None
    currency: str
    created_at: str | None  # RFC 3339, UTC
    order_date: str  # YYYY-MM-DD (UTC) of created_at, else of the event: the archive partition
    lines: tuple[Mapping[str, Any], ...]
    occurred_at: str  # of the last applied event, RFC 3339 UTC
    event_id: str
    version: str

    @property
    def key(self) -> str:
        return order_key(self.source, self.order_id)


def order_fields(order: OrderState) -> dict[str, Any]:
    """What the order itself says, kept alike by the hot item and the archived row."""
    return {
        "source": order.source,
        "order_id": order.order_id,
        "profile_id": order.profile_id,
        "status": order.status,
        "total": order.total,
        "currency": order.currency,
        "created_at": order.created_at,
        "lines": [dict(line) for line in order.lines],
    }


def order_state(event: CanonicalEvent, profile_id: str) -> OrderState | None:
    """The state an order event carries, for the profile it was resolved to (None: no order)."""
    if event.type not in ORDER_EVENT_TYPES or event.order is None:
        return None
    order = event.order
    occurred = event.occurred_at.astimezone(UTC)
    created = order.created_at.astimezone(UTC) if order.created_at is not None else None
    return OrderState(
        source=event.source,
        order_id=order.order_id,
        profile_id=profile_id,
        status=order.status,
        total=order.total,
        currency=order.currency,
        created_at=created.isoformat() if created else None,
        order_date=(created or occurred).date().isoformat(),
        lines=tuple(line.model_dump(exclude_none=True) for line in order.lines),
        occurred_at=occurred.isoformat(),
        event_id=event.event_id,
        version=order_version(occurred, event.event_id),
    )


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An orders-table item: a live order, or the stub an archived order leaves behind (its key,
    version and where its archived copy is), which keeps older events from reviving it and lets
    a restore find it by id."""

    key: str
    version: str
    order_date: str
    profile_id: str
    state: OrderState | None  # None for a stub
    archived_object: str | None = None  # the archive object holding this order's copy
    archived_version: str | None = None  # the version that copy has
    hold_until: str | None = None  # a restored order stays hot until this day (YYYY-MM-DD)

    @property
    def live(self) -> bool:
        return self.state is not None

    @property
    def archive_is_current(self) -> bool:
        """The archive already holds exactly this version (a restored, unchanged order)."""
        return self.archived_object is not None and self.archived_version == self.version


def archive_cutoff(today: date, after_days: int) -> date:
    """Orders dated before this day are archived."""
    return today - timedelta(days=after_days)
