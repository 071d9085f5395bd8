"""Three-tier field precedence as one total order, encoded in a string that DynamoDB can compare.

1. a higher authority rank wins (MDM highest by default);
2. between equal ranks the later `occurred_at` wins, except
3. for write-once fields, where the earliest `occurred_at` wins;
ties break on source and event id, so every replica and every arrival order agrees.

A field write carries its key; the store accepts it only if the stored key is smaller
(`attribute_not_exists(k) OR k < :k`), which is the whole rule in one condition expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_MICROS_WIDTH = 18  # datetime.max is 3.16e17 microseconds after datetime.min
_MAX_MICROS = 10**_MICROS_WIDTH - 1
_ONE_MICROSECOND = timedelta(microseconds=1)


def precedence_key(rank: int, occurred_at: datetime, source: str, event_id: str, write_once: bool) -> str:
    micros = (occurred_at.astimezone(UTC) - _EPOCH) // _ONE_MICROSECOND
    if write_once:
        micros = _MAX_MICROS - micros  # earliest first: invert time, keep everything else
    return f"{rank:04d}{micros:0{_MICROS_WIDTH}d}{source}|{event_id}"


@dataclass(frozen=True, slots=True)
class FieldVersion:
    """Where a field's current value came from."""

    key: str
    source: str
    occurred_at: str  # RFC 3339, UTC
    event_id: str


@dataclass(frozen=True, slots=True)
class FieldWrite:
    field: str
    value: object  # None clears the field; the version stays so older writes cannot revive it
    version: FieldVersion

    def beats(self, current: FieldVersion | None) -> bool:
        return current is None or current.key < self.version.key


def winner(a: FieldWrite, b: FieldWrite) -> FieldWrite:
    return a if a.version.key >= b.version.key else b
