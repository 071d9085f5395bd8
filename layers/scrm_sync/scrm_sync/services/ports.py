"""Ports: what the use cases need from storage and messaging, independent of AWS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..domain.archive import InFlightBatch
from ..domain.cdc import StreamRecord
from ..domain.identifiers import Identifier
from ..domain.incremental_pull import KeysetQuery, Watermark
from ..domain.inventory import (
    Balance,
    Delta,
    InventoryMovement,
    Listing,
    Reservation,
    ReservationStatus,
    StockSnapshot,
    Transfer,
    TransferStatus,
)
from ..domain.orders import OrderState, StoredOrder
from ..domain.precedence import FieldVersion, FieldWrite
from ..domain.privacy import ProfileAccess
from ..domain.profile import EventRecord, Profile
from ..domain.stock_push import ListingUpdate

if TYPE_CHECKING:  # device health needs the scrm_edge layer, which only its functions have
    from ..domain.device_health import DeviceState


@dataclass(frozen=True, slots=True)
class IdentityLink:
    identifier: Identifier
    profile_id: str
    source: str
    event_id: str  # the event that made the link: links are explainable and reversible


class ConcurrentChange(RuntimeError):
    """A conditional multi-item change lost a race; re-plan and retry."""


@dataclass(frozen=True, slots=True)
class Owner:
    profile_id: str
    blocked: bool = False  # unlinked by an operator: never links profiles again


@dataclass(slots=True)
class ApplyResult:
    applied: list[FieldWrite] = field(default_factory=list)
    lost: list[tuple[FieldWrite, FieldVersion]] = field(default_factory=list)  # conflicts
    duplicates: list[FieldWrite] = field(default_factory=list)  # the same event, seen again
    redirected_to: str | None = None  # the profile was merged away; nothing was written
    # refused whole: the profile item would pass DynamoDB's 400 KB item limit (nothing written)
    too_large: list[FieldWrite] = field(default_factory=list)
    erased: bool = False  # the profile was erased (a tombstone): nothing was written


@dataclass(slots=True)
class CreateResult:
    created: bool
    already_claimed: list[str] = field(default_factory=list)  # identifier keys someone else owns


@dataclass(slots=True)
class LinkResult:
    linked: list[Identifier] = field(default_factory=list)
    owned_elsewhere: dict[str, str] = field(default_factory=dict)  # key -> profile id
    over_limit: list[Identifier] = field(default_factory=list)
    redirected_to: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    sort_key: str
    kind: str  # "order" | "interaction"
    occurred_at: str
    source: str
    event_id: str
    data: Mapping[str, Any]
    expires_at: int | None = None  # epoch seconds for DynamoDB TTL


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one event leaves on a profile besides its fields: its event record (the evidence of
    its links and writes) and its timeline entry, if it has one."""

    profile_id: str
    record: EventRecord
    timeline: TimelineEntry | None = None


class ProfileRepository(Protocol):
    """Profiles and the identity graph (one port: creation must claim identifiers atomically)."""

    def owners(self, identifier_keys: Sequence[str]) -> dict[str, Owner]:
        """Identifier key -> its owner, for the keys that are linked."""
        ...

    def suppressed(self, suppression_keys: Sequence[str]) -> set[str]:
        """Which of these suppression keys (domain/privacy.py) are on the suppression list."""
        ...

    def create_profile(
        self, profile_id: str, writes: Sequence[FieldWrite], links: Sequence[IdentityLink]
    ) -> CreateResult:
        """Create the profile and claim every identifier, all or nothing."""
        ...

    def apply_fields(self, profile_id: str, writes: Sequence[FieldWrite]) -> ApplyResult:
        """Write each field only if it beats the stored version (a condition per field)."""
        ...

    def link(
        self, profile_id: str, links: Sequence[IdentityLink], max_per_type: Mapping[str, int]
    ) -> LinkResult: ...

    def field_versions(self, profile_id: str) -> tuple[str | None, dict[str, tuple[Any, FieldVersion]]]:
        """(redirect target or None, field -> (value, version))."""
        ...

    def redirect(self, loser_id: str, survivor_id: str, event_id: str) -> str | None:
        """Mark loser as merged into survivor; returns the existing redirect target if it had one."""
        ...

    def repoint_identifiers(self, from_profile: str, to_profile: str) -> int: ...

    def detach_identifiers(self, profile_id: str, identifiers: Sequence[Identifier]) -> list[Identifier]:
        """Remove the links of these identifiers that `profile_id` still owns (each removal is
        conditional on that owner, so a link made elsewhere meanwhile stays); returns the ones
        removed. Not a block: a later event may link them again. Operator-blocked links stay."""
        ...

    def resolve(self, profile_id: str) -> str:
        """Follow merge redirects to the live profile id."""
        ...

    def load(self, profile_id: str, identifiers: bool = True) -> Profile | None:
        """The live profile `profile_id` is or was merged into; `identifiers=False` leaves its
        identifiers out (one read fewer per merged profile)."""
        ...

    def record_events(self, entries: Sequence[Evidence]) -> None:
        """Keep the events' evidence and timeline entries, a batch at a time; idempotent (an entry
        given twice, or stored before, is stored once)."""
        ...

    # -- unlink support ---------------------------------------------------------------------
    def members(self, profile_id: str) -> list[str]:
        """The profile and every profile merged into it, transitively."""
        ...

    def links_of(self, profile_ids: Sequence[str]) -> list[IdentityLink]: ...

    def event_records(self, profile_ids: Sequence[str]) -> list[EventRecord]: ...

    def split(self, plan: SplitPlan) -> None:
        """Apply an unlink atomically: rewrite the kept profile's fields, create the split-off
        profiles, re-point their identifiers and block the unlinked one."""
        ...

    def move_evidence(self, from_ids: Sequence[str], to_profile: str, event_keys: Sequence[str]) -> None:
        """Move event records and timeline entries of these events to another profile; idempotent."""
        ...

    def timeline(self, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]: ...

    def timeline_page(
        self, profile_ids: Sequence[str], limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The newest `limit` entries older than the sort key `before`, and the sort key the next
        page starts before (None when there is none)."""
        ...

    def merged_from(self, profile_id: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class NewProfile:
    profile_id: str
    fields: Mapping[str, tuple[Any, FieldVersion]]
    identifier_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SplitPlan:
    profile_id: str  # keeps its id and the first component
    members: tuple[str, ...]  # profile ids whose identifiers may move
    expected_versions: Mapping[str, str]  # field -> precedence key read before planning
    kept_fields: Mapping[str, tuple[Any, FieldVersion]]
    new_profiles: tuple[NewProfile, ...]
    unlinked_key: str
    unlinked_profile: NewProfile  # the unlinked identifier lives on alone, blocked from linking
    reason: str
    requested_by: str


class EventQueue(Protocol):
    def send(self, messages: Sequence[tuple[str, str]]) -> list[str]:
        """Send (id, body) pairs; returns the ids that could not be sent."""
        ...


class RawLanding(Protocol):
    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None: ...


class PushStream(Protocol):
    """The webhook ingest stream: one record per authentic push, landed raw by its delivery
    stream and synced by its consumer."""

    def put(self, data: bytes, partition_key: str) -> None:
        """Write one record, or raise StreamWriteFailed (nothing may be acked then)."""
        ...


class ChangeLedger(Protocol):
    """The CDC changes already applied. Streams replay: Lambda retries a whole batch after a
    timeout, DMS resends from its checkpoint after a restart. An old change applied again after
    newer ones of its row could re-link what a later delete detached, so a change is applied
    once: skipped when recorded, recorded after it was applied."""

    def applied(self, change_key: str) -> bool: ...

    def record(self, change_key: str) -> None: ...


# -- incremental pull (MySQL without binlog -> CDC stream) ------------------------------------


@dataclass(frozen=True, slots=True)
class SourcePage:
    rows: list[dict[str, Any]]  # in the query's order
    bytes_read: int  # from the database, on the wire (for rows read versus a full extract)


class RowSource(Protocol):
    def fetch(self, query: KeysetQuery) -> SourcePage: ...

    def close(self) -> None:
        """Release the connection at the end of a run; the next fetch reconnects."""
        ...


class StreamWriteFailed(RuntimeError):
    """Records could not all be written: the caller must not advance its watermark."""


class ChangeStream(Protocol):
    def put(self, records: Sequence[StreamRecord]) -> None:
        """Write every record (retrying what the stream throttles), or raise StreamWriteFailed."""
        ...


class WatermarkConflict(RuntimeError):
    """Another run moved the watermark since this run read it: this run must stop."""


@dataclass(frozen=True, slots=True)
class StoredWatermark:
    watermark: Watermark
    version: int  # bumped by every advance; the condition of the next one


class WatermarkStore(Protocol):
    def load(self, table: str) -> StoredWatermark | None: ...

    def advance(self, table: str, watermark: Watermark, expected_version: int) -> int:
        """Store the watermark if its version is still `expected_version` (0: none stored);
        returns the new version, or raises WatermarkConflict."""
        ...


# -- hot orders and their archive ------------------------------------------------------------


class OrderStore(Protocol):
    """The orders table: one item per order with its latest state, or the stub it leaves when it
    is archived (see domain/orders.py)."""

    def upsert(self, order: OrderState) -> OrderWrite:
        """Store the state if its version is newer than the stored one (a stub's too)."""
        ...

    def aged(self, shard: str, before: str) -> Iterator[AgedOrder]:
        """Live orders of one shard dated before the day `before`, oldest first, read lazily
        page by page from the age index (eventually consistent: load() decides)."""
        ...

    def load(self, keys: Sequence[str]) -> dict[str, StoredOrder]:
        """The items as stored now (strongly consistent); missing keys are left out."""
        ...

    def mark_archived(self, entries: Sequence[ArchivedEntry]) -> set[str]:
        """Replace each live order by its archive stub if its version is still the entry's;
        returns the keys that were not replaced because they changed (or are no longer live)."""
        ...

    def put_back(self, order: OrderState, archived_object: str, hold_until: str) -> bool:
        """Restore an archived order over its stub (or where none is left), unless the hot item
        is a live order or newer; keeps the pointer to the archive copy. True if written."""
        ...

    def archived_keys(self, order_id: str) -> list[str]:
        """Keys of archived orders with this order id (any source)."""
        ...

    def newest_archived_order_date(self, profile_id: str) -> str | None: ...


OrderWrite = Literal["applied", "duplicate", "stale"]


@dataclass(frozen=True, slots=True)
class AgedOrder:
    key: str
    order_date: str


@dataclass(frozen=True, slots=True)
class ArchivedEntry:
    key: str
    version: str  # the version the archive object holds; the stub is only written over it
    object_key: str
    profile_id: str
    order_id: str
    archived_at: str


@dataclass(frozen=True, slots=True)
class StoredObject:
    size: int
    sha256: str | None  # hex; None if the store kept no SHA-256 checksum for the object


class ArchiveStore(Protocol):
    """The archive bucket."""

    def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
        """Upload with the SHA-256 checksum (hex) for the store to check and keep."""
        ...

    def head(self, key: str) -> StoredObject | None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def purge_old_versions(self, key: str) -> None:
        """Delete every version of `key` but the current one (an erasure's rewrite)."""
        ...

    def keys(self, prefix: str) -> Iterator[str]: ...


class ArchiveLeaseHeld(RuntimeError):
    """Another archive run holds the lease: this one does nothing."""


class ArchiveLeaseLost(RuntimeError):
    """This run's lease expired and another run took it: stop at once."""


class ArchiveCheckpoints(Protocol):
    """One archive run at a time, and the batch it is writing (domain/archive.py InFlightBatch)."""

    def acquire(self, owner: str, lease_seconds: float) -> InFlightBatch | None:
        """Take the lease (free, expired or already ours) and return the batch a previous run left
        unfinished; raises ArchiveLeaseHeld."""
        ...

    def begin(self, owner: str, batch: InFlightBatch, lease_seconds: float) -> None:
        """Record the batch about to be written (and extend the lease); raises ArchiveLeaseLost."""
        ...

    def finish(self, owner: str, lease_seconds: float) -> None:
        """Clear the batch (and extend the lease); raises ArchiveLeaseLost."""
        ...

    def release(self, owner: str) -> None: ...


# --- WeCom's server API, as every use case that calls it sees its failures ---------------------------
class WeComUnavailable(RuntimeError):
    """Transient (network, 5xx, busy, rate limits 45009/45033, unknown codes): retry later."""

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


class WeComRejected(ValueError):
    """The API answered that this request can never succeed."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode


# --- the inventory ledger ---------------------------------------------------------------------------
# applied: stock changed; superseded: recorded, but an older count changed nothing; duplicate: this
# event was applied before; stale: what the change was computed from moved meanwhile (re-plan)
MovementOutcome = Literal["applied", "superseded", "duplicate", "stale"]
FinishOutcome = Literal["finished", "not_held"]


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    status: Literal["reserved", "exists", "short"]
    reservation: Reservation  # the new one, the one that existed, or the one that could not be held
    short_skus: tuple[str, ...] = ()


class InventoryStore(Protocol):
    def balances(self, sku: str) -> list[Balance]: ...

    def balance(self, sku: str, location: str) -> Balance: ...

    def reservation(self, reservation_id: str) -> Reservation | None: ...

    def movements(self, sku: str, location: str, limit: int = 100) -> list[dict[str, Any]]: ...

    def due_reservations(self, now: datetime, limit: int = 100) -> list[str]: ...

    def apply_movement(
        self,
        source: str,
        event_id: str,
        occurred_at: datetime,
        movement: InventoryMovement,
        delta: Delta | None,
        seen: Balance,
    ) -> MovementOutcome: ...

    def reserve(self, reservation: Reservation, needed: Sequence[tuple[str, int, int]]) -> ReserveOutcome: ...

    def finish(
        self, reservation: Reservation, status: ReservationStatus, reason_id: str
    ) -> FinishOutcome: ...

    def on_hand_at(self, sku: str, location: str, moment: datetime) -> int: ...

    def put_snapshot(self, snapshot: StockSnapshot, per_sku: bool = False) -> bool:
        """Keep a source's snapshot at a location (per_sku: one per SKU there, as a stock table's
        rows report it) unless a newer version is kept already (False then)."""
        ...

    def snapshots(self) -> list[StockSnapshot]: ...


class StockReports(Protocol):
    def accept_row(self, row: StockSnapshot) -> bool:
        """Keep one SKU's reported stock (a stock table's row; raises UnknownLocation)."""
        ...


class TransferStore(Protocol):
    def create_transfer(self, transfer: Transfer) -> bool: ...

    def transfer(self, demand_id: str, attempt: int) -> Transfer | None: ...

    def latest_transfer(self, demand_id: str) -> Transfer | None: ...

    def set_transfer_status(
        self, transfer: Transfer, status: TransferStatus, allowed_from: frozenset[str], reason: str | None
    ) -> bool: ...

    def extend(self, reservation_id: str, expires_at: datetime) -> bool: ...


class EventPublisher(Protocol):
    def publish(self, documents: Sequence[str]) -> list[int]:
        """Put each JSON document as one event; the indexes that failed."""
        ...


# --- marketplace stock APIs ------------------------------------------------------------------------
class MarketplaceUnavailable(RuntimeError):
    """Transient (network, 5xx, limits, unknown answers): retry. `maybe_applied` is False when
    the platform answered that it did not apply the request (an error answer), True when the
    outcome is unknown (no answer, a timeout, a 5xx)."""

    def __init__(self, message: str, *, maybe_applied: bool = True) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class MarketplaceRejected(ValueError):
    """The platform says this request can never succeed (e.g. the listing does not exist)."""


class MarketplaceStock(Protocol):
    # whether the platform dedupes by the update's idempotency key (else pushes are claimed)
    keyed: bool

    def push(self, update: ListingUpdate, listing: Listing) -> None: ...


PushClaim = Literal["clear", "uncertain", "done"]


class PushAttempts(Protocol):
    """Claims of pushes to a platform without idempotency keys, per listing, ordered by the
    stream record's sequence number (a listing's records come in order)."""

    def begin(self, key: str, sequence: int) -> PushClaim:
        """Claim the push of record `sequence`: "done" when it (or a later one) was settled
        already (a redelivered record), "uncertain" when an earlier push may have been applied
        without being settled, else "clear"."""
        ...

    def settle(self, key: str, sequence: int) -> None:
        """Record `sequence` is done with (applied, or refused for good)."""
        ...

    def release(self, key: str, sequence: int) -> None:
        """The platform answered that it did not apply the push: nothing is uncertain, and the
        record is still to be pushed."""
        ...


# --- the access log (PIPL: every profile read accountable) --------------------------------------
class AccessLog(Protocol):
    def record(self, access: ProfileAccess) -> None:
        """Raises when the record could not be written: the read is not answered then."""
        ...

    def of_profile(self, profile_id: str, limit: int) -> list[dict[str, str]]: ...

    def of_caller(self, caller: str, limit: int) -> list[dict[str, str]]: ...


class DeviceHealthStore(Protocol):
    """Device health scores (each device's history) and each device's state."""

    def record_score(self, item: Mapping[str, Any], expire_at: int) -> bool:
        """Keep one score; False when this (device, window) is already kept."""
        ...

    def state(self, device_id: str) -> DeviceState | None: ...

    def save_state(self, state: DeviceState, expected_window: str | None) -> bool:
        """Write `state` if the stored state's window is still `expected_window` (None: no state
        yet); False when another writer moved it first."""
        ...
