"""In-memory ProfileRepository with the same conditional semantics as the DynamoDB adapter.

Used by unit tests and the domain-CPU benchmark; a shared contract test runs the same scenarios
against both implementations so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..domain.archive import InFlightBatch
from ..domain.audit import AuditEntry
from ..domain.identifiers import Identifier
from ..domain.identity_graph import within_link_limits
from ..domain.orders import OrderState, StoredOrder, age_shard, split_order_key
from ..domain.precedence import FieldVersion, FieldWrite
from ..domain.profile import EventRecord, Profile, utc_now_text
from ..domain.timeline import timeline_page_of
from ..domain.wecom_tags import CorpTag
from ..services.ports import (
    AgedOrder,
    ApplyResult,
    ArchivedEntry,
    ArchiveLeaseHeld,
    ArchiveLeaseLost,
    ConcurrentChange,
    CreateResult,
    Evidence,
    IdentityLink,
    LinkResult,
    OrderWrite,
    Owner,
    SplitPlan,
    StoredObject,
    StreamWriteFailed,
)
from ..services.schema_watch import DriftRecord
from ..services.wecom_tags import MemberTagState


class _ProfileRecord:
    __slots__ = ("counts", "erased_by", "events", "fields", "merged_from", "redirect_to", "updated_at")

    def __init__(self) -> None:
        self.erased_by: str | None = None  # an erasure's tombstone
        self.fields: dict[str, tuple[Any, FieldVersion]] = {}
        self.counts: dict[str, int] = {}
        self.redirect_to: str | None = None
        self.merged_from: set[str] = set()
        self.events: dict[str, EventRecord] = {}
        self.updated_at = utc_now_text()


DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024


def _approximate_item_bytes(fields: Mapping[str, tuple[Any, FieldVersion]]) -> int:
    """Roughly what DynamoDB counts for a profile item's fields: names plus values (UTF-8)."""
    total = 0
    for name, (value, version) in fields.items():
        total += 2 * (len(name.encode()) + 2) + len(str(value).encode()) + len(str(version).encode())
    return total


class _LinksByKey(dict[str, IdentityLink]):
    """Identifier key -> link, also indexed by profile, as the identity table's GSI is: reading or
    moving one profile's links costs the same however many links the repository holds."""

    def __init__(self) -> None:
        super().__init__()
        self._by_profile: dict[str, set[str]] = {}

    def __setitem__(self, key: str, link: IdentityLink) -> None:
        old = self.get(key)
        if old is not None:
            self._unindex(key, old.profile_id)
        super().__setitem__(key, link)
        self._by_profile.setdefault(link.profile_id, set()).add(key)

    def __delitem__(self, key: str) -> None:
        link = self[key]
        super().__delitem__(key)
        self._unindex(key, link.profile_id)

    def _unindex(self, key: str, profile_id: str) -> None:
        keys = self._by_profile.get(profile_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_profile[profile_id]

    def keys_of(self, profile_ids: Iterable[str]) -> list[str]:
        return sorted({key for pid in profile_ids for key in self._by_profile.get(pid, ())})


class InMemoryProfileRepository:
    def __init__(self, item_limit_bytes: int = DYNAMODB_ITEM_LIMIT_BYTES) -> None:
        self.item_limit_bytes = item_limit_bytes  # as DynamoDB refuses an update past 400 KB
        self._lock = threading.RLock()
        self.profiles: dict[str, _ProfileRecord] = {}
        self.identity = _LinksByKey()
        self.blocked: set[str] = set()
        self.suppression: set[str] = set()  # suppression keys (domain/privacy.py)
        self.timeline_entries: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests = 0  # round trips an equivalent DynamoDB adapter would make

    def owners(self, identifier_keys: Sequence[str]) -> dict[str, Owner]:
        with self._lock:
            self.requests += 1
            return {
                k: Owner(self.identity[k].profile_id, k in self.blocked)
                for k in identifier_keys
                if k in self.identity
            }

    def suppressed(self, suppression_keys: Sequence[str]) -> set[str]:
        with self._lock:
            self.requests += 1
            return {k for k in suppression_keys if k in self.suppression}

    def create_profile(
        self, profile_id: str, writes: Sequence[FieldWrite], links: Sequence[IdentityLink]
    ) -> CreateResult:
        with self._lock:
            self.requests += 1
            claimed = [lk.identifier.key for lk in links if lk.identifier.key in self.identity]
            if claimed or profile_id in self.profiles:
                return CreateResult(created=False, already_claimed=claimed)
            record = _ProfileRecord()
            for write in writes:
                record.fields[write.field] = (write.value, write.version)
            for link in links:
                self.identity[link.identifier.key] = link
                record.counts[link.identifier.type] = record.counts.get(link.identifier.type, 0) + 1
            self.profiles[profile_id] = record
            return CreateResult(created=True)

    def apply_fields(self, profile_id: str, writes: Sequence[FieldWrite]) -> ApplyResult:
        result = ApplyResult()
        if not writes:
            return result
        with self._lock:
            self.requests += 1
            record = self.profiles.setdefault(profile_id, _ProfileRecord())
            if record.erased_by is not None:
                result.erased = True
                return result
            if record.redirect_to is not None:
                result.redirected_to = record.redirect_to
                return result
            after = dict(record.fields)
            after.update((w.field, (w.value, w.version)) for w in writes)
            if _approximate_item_bytes(after) > self.item_limit_bytes:
                result.too_large.extend(writes)  # the whole update is refused, as by DynamoDB
                return result
            for write in writes:
                current = record.fields.get(write.field)
                version = current[1] if current else None
                if write.beats(version):
                    record.fields[write.field] = (write.value, write.version)
                    result.applied.append(write)
                elif version is not None and version.key == write.version.key:
                    result.duplicates.append(write)
                elif version is not None:
                    result.lost.append((write, version))
            if result.lost or result.duplicates:
                self.requests += 1  # DynamoDB needs a second, narrowed update after a failed condition
            if result.applied:
                record.updated_at = utc_now_text()
            return result

    def link(
        self, profile_id: str, links: Sequence[IdentityLink], max_per_type: Mapping[str, int]
    ) -> LinkResult:
        result = LinkResult()
        with self._lock:
            self.requests += 1
            record = self.profiles.setdefault(profile_id, _ProfileRecord())
            if record.redirect_to is not None:
                result.redirected_to = record.redirect_to
                return result
            for link in links:
                owner = self.identity.get(link.identifier.key)
                if owner is not None and owner.profile_id != profile_id:
                    result.owned_elsewhere[link.identifier.key] = owner.profile_id
            if result.owned_elsewhere:
                return result
            fresh: dict[str, IdentityLink] = {}  # links already ours (a replay) are no new links
            for link in links:
                if link.identifier.key not in self.identity:
                    fresh.setdefault(link.identifier.key, link)
            allowed, over = within_link_limits(fresh.values(), record.counts, max_per_type)
            for link in allowed:
                self.identity[link.identifier.key] = link
                record.counts[link.identifier.type] = record.counts.get(link.identifier.type, 0) + 1
                result.linked.append(link.identifier)
            result.over_limit.extend(link.identifier for link in over)
            return result

    def field_versions(self, profile_id: str) -> tuple[str | None, dict[str, tuple[Any, FieldVersion]]]:
        with self._lock:
            self.requests += 1
            record = self.profiles.get(profile_id)
            if record is None:
                return None, {}
            return record.redirect_to, dict(record.fields)

    def redirect(self, loser_id: str, survivor_id: str, event_id: str) -> str | None:
        with self._lock:
            self.requests += 2
            record = self.profiles.setdefault(loser_id, _ProfileRecord())
            if record.redirect_to is not None:
                return record.redirect_to
            record.redirect_to = survivor_id
            self.profiles.setdefault(survivor_id, _ProfileRecord()).merged_from.add(loser_id)
            return None

    def repoint_identifiers(self, from_profile: str, to_profile: str) -> int:
        with self._lock:
            self.requests += 1
            moved = 0
            target = self.profiles.setdefault(to_profile, _ProfileRecord())
            for key in self.identity.keys_of([from_profile]):
                link = self.identity[key]
                self.identity[key] = IdentityLink(link.identifier, to_profile, link.source, link.event_id)
                target.counts[link.identifier.type] = target.counts.get(link.identifier.type, 0) + 1
                moved += 1
                self.requests += 1
            return moved

    def detach_identifiers(self, profile_id: str, identifiers: Sequence[Identifier]) -> list[Identifier]:
        with self._lock:
            detached = []
            for identifier in identifiers:
                self.requests += 1
                link = self.identity.get(identifier.key)
                if link is None or link.profile_id != profile_id or identifier.key in self.blocked:
                    continue
                del self.identity[identifier.key]
                record = self.profiles.setdefault(profile_id, _ProfileRecord())
                record.counts[identifier.type] = record.counts.get(identifier.type, 0) - 1
                detached.append(identifier)
            return detached

    def resolve(self, profile_id: str) -> str:
        with self._lock:
            current = profile_id
            while True:
                self.requests += 1
                record = self.profiles.get(current)
                if record is None or record.redirect_to is None:
                    return current
                current = record.redirect_to

    def merged_from(self, profile_id: str) -> list[str]:
        with self._lock:
            record = self.profiles.get(profile_id)
            return sorted(record.merged_from) if record else []

    def load(self, profile_id: str, identifiers: bool = True) -> Profile | None:
        with self._lock:
            live = self.resolve(profile_id)
            record = self.profiles.get(live)
            if record is None:
                return None
            profile = Profile(live, updated_at=record.updated_at, merged_from=list(record.merged_from))
            for name, (value, version) in record.fields.items():
                profile.values[name] = value
                profile.versions[name] = version
            if identifiers:
                members = {live, *record.merged_from}
                profile.identifiers = sorted(Identifier.from_key(k) for k in self.identity.keys_of(members))
            return profile

    def record_events(self, entries: Sequence[Evidence]) -> None:
        with self._lock:
            self.requests += 1
            for entry in entries:
                profile_id, record, timeline = entry.profile_id, entry.record, entry.timeline
                self.profiles.setdefault(profile_id, _ProfileRecord()).events[record.key] = record
                if timeline is not None:
                    self.timeline_entries.setdefault(profile_id, {})[timeline.sort_key] = {
                        "kind": timeline.kind,
                        "occurred_at": timeline.occurred_at,
                        "source": timeline.source,
                        "event_id": timeline.event_id,
                        "data": dict(timeline.data),
                        **({"expires_at": timeline.expires_at} if timeline.expires_at is not None else {}),
                    }

    def timeline(self, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
        return self.timeline_page(profile_ids, limit)[0]

    def timeline_page(
        self, profile_ids: Sequence[str], limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self._lock:
            by_key: dict[str, dict[str, Any]] = {}
            for pid in profile_ids:
                for sk, entry in self.timeline_entries.get(pid, {}).items():
                    if before is None or sk < before:
                        by_key.setdefault(sk, entry)
            return timeline_page_of(by_key, limit, False)

    # -- unlink support ---------------------------------------------------------------------
    def members(self, profile_id: str) -> list[str]:
        with self._lock:
            seen: list[str] = []
            queue = [profile_id]
            while queue:
                current = queue.pop()
                if current not in seen:
                    seen.append(current)
                    queue.extend(self.merged_from(current))
            return seen

    def links_of(self, profile_ids: Sequence[str]) -> list[IdentityLink]:
        with self._lock:
            return [
                self.identity[key] for key in self.identity.keys_of(profile_ids) if key not in self.blocked
            ]

    def event_records(self, profile_ids: Sequence[str]) -> list[EventRecord]:
        with self._lock:
            records: dict[str, EventRecord] = {}
            for pid in profile_ids:
                record = self.profiles.get(pid)
                if record is not None:
                    records.update(record.events)
            return [records[k] for k in sorted(records)]

    def split(self, plan: SplitPlan) -> None:
        with self._lock:
            kept = self.profiles.get(plan.profile_id)
            if kept is None or kept.redirect_to is not None:
                raise ConcurrentChange("profile merged or missing")
            current = {name: version.key for name, (_, version) in kept.fields.items()}
            if current != dict(plan.expected_versions):
                raise ConcurrentChange("fields changed while the unlink was planned")
            moving = [
                (new, key)
                for new in (*plan.new_profiles, plan.unlinked_profile)
                for key in new.identifier_keys
            ]
            for _, key in moving:
                if key not in self.identity or self.identity[key].profile_id not in plan.members:
                    raise ConcurrentChange("identifier moved while the unlink was planned")
            kept.fields = dict(plan.kept_fields)
            kept.updated_at = utc_now_text()
            for new in (*plan.new_profiles, plan.unlinked_profile):
                record = _ProfileRecord()
                record.fields = dict(new.fields)
                self.profiles[new.profile_id] = record
            for new, key in moving:
                link = self.identity[key]
                self.identity[key] = IdentityLink(link.identifier, new.profile_id, link.source, link.event_id)
                kept.counts[link.identifier.type] = kept.counts.get(link.identifier.type, 0) - 1
                target = self.profiles[new.profile_id]
                target.counts[link.identifier.type] = target.counts.get(link.identifier.type, 0) + 1
            self.blocked.add(plan.unlinked_key)

    def move_evidence(self, from_ids: Sequence[str], to_profile: str, event_keys: Sequence[str]) -> None:
        with self._lock:
            wanted = set(event_keys)
            target = self.profiles.setdefault(to_profile, _ProfileRecord())
            for pid in from_ids:
                record = self.profiles.get(pid)
                if record is None:
                    continue
                for key in [k for k in record.events if k in wanted]:
                    target.events[key] = record.events.pop(key)
                entries = self.timeline_entries.get(pid, {})
                for sk in [sk for sk, e in entries.items() if f"{e['source']}#{e['event_id']}" in wanted]:
                    self.timeline_entries.setdefault(to_profile, {})[sk] = entries.pop(sk)


class InMemoryChangeLedger:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def applied(self, change_key: str) -> bool:
        return change_key in self.keys

    def record(self, change_key: str) -> None:
        self.keys.add(change_key)


class InMemoryLanding:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.objects[key] = (body, dict(metadata))

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def get(self, key: str) -> bytes:
        return self.objects[key][0]


class InMemoryQueue:
    def __init__(self, fail: bool = False) -> None:
        self.messages: list[str] = []
        self.fail = fail

    def send(self, messages: Sequence[tuple[str, str]]) -> list[str]:
        if self.fail:
            return [message_id for message_id, _ in messages]
        self.messages.extend(body for _, body in messages)
        return []


class InMemoryPushStream:
    """The webhook ingest stream: records in the order they were put; `fail` refuses them all."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[bytes, str]] = []
        self.fail = fail

    def put(self, data: bytes, partition_key: str) -> None:
        if self.fail:
            raise StreamWriteFailed("the stream refused the record")
        self.records.append((data, partition_key))

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Each record as the landing line the delivery stream writes (JSON, newline-terminated)."""
        return [json.loads(data) for data, _ in self.records]

    @property
    def messages(self) -> list[str]:
        """The canonical event messages of every record, in order (as a queue would hold them)."""
        return [json.dumps(event) for document in self.documents for event in document["events"]]


class InMemoryAuditRepository:
    """Like the DynamoDB adapter, HEAD is kept apart from the entries: tests tamper with
    `chains` the way someone would delete or edit entry items, and HEAD stays as it was."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.chains: dict[str, list[AuditEntry]] = {}
        self.heads: dict[str, AuditEntry] = {}
        self.positions: dict[str, str] = {}
        # when an entry is appended (ISO 8601, UTC): tests of retention set it
        self.clock: Callable[[], str] = lambda: datetime.now(UTC).isoformat(timespec="seconds")

    def head(self, profile_id: str) -> tuple[AuditEntry | None, str]:
        with self._lock:
            return self.heads.get(profile_id), self.positions.get(profile_id, "")

    def append(self, profile_id: str, entry: AuditEntry, position: str, expected_head_seq: int) -> bool:
        with self._lock:
            head = self.heads.get(profile_id)
            chain = self.chains.setdefault(profile_id, [])
            taken = {stored.seq for stored in chain}
            if (head.seq if head else 0) != expected_head_seq or entry.seq in taken:
                return False
            entry = dataclasses.replace(entry, recorded_at=self.clock())
            chain.append(entry)
            self.heads[profile_id] = entry
            self.positions[profile_id] = position
            return True

    def entries(self, profile_id: str) -> list[AuditEntry]:
        with self._lock:
            return list(self.chains.get(profile_id, []))  # appended in sequence order

    def chains_with_content_before(self, before: str) -> list[str]:
        with self._lock:
            return sorted(
                pid
                for pid, chain in self.chains.items()
                if any(e.change_json and "" < e.recorded_at < before for e in chain)
            )

    def chains_before(self, audit_format: int) -> list[str]:
        with self._lock:
            return sorted(pid for pid, head in self.heads.items() if head.format < audit_format)

    def move_head(self, profile_id: str, head: AuditEntry, expected: AuditEntry) -> bool:
        with self._lock:
            current = self.heads.get(profile_id)
            if current is None or (current.seq, current.hash) != (expected.seq, expected.hash):
                return False
            self.heads[profile_id] = head
            return True

    def put_entries(self, profile_id: str, entries: list[AuditEntry]) -> None:
        with self._lock:
            chain = self.chains.setdefault(profile_id, [])
            for entry in entries:
                at = next(i for i, stored in enumerate(chain) if stored.seq == entry.seq)
                chain[at] = entry


class InMemorySchemaRegistry:
    """SchemaRegistry with the DynamoDB adapter's semantics (fields merged, one record per drift)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.schemas: dict[tuple[str, str], dict[str, str]] = {}
        self.drifts: dict[str, DriftRecord] = {}

    def known_schema(self, source: str, kind: str) -> dict[str, str] | None:
        with self._lock:
            known = self.schemas.get((source, kind))
            return dict(known) if known is not None else None

    def remember(self, source: str, kind: str, fields: Mapping[str, str], drift: DriftRecord | None) -> None:
        with self._lock:
            self.schemas.setdefault((source, kind), {}).update(fields)
            if drift is not None:
                self.drifts.setdefault(drift.signature, drift)

    def drift_records(self, source: str | None = None) -> list[DriftRecord]:
        with self._lock:
            found = [d for d in self.drifts.values() if source in (None, d.source)]
        return sorted(found, key=lambda r: r.detected_at)


class InMemorySendCounts:
    """SendCounts with the DynamoDB adapter's semantics (conditional increment, fill never lowers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, int] = {}
        self.expires: dict[str, int] = {}

    def counts(self, keys: Sequence[str]) -> dict[str, int]:
        with self._lock:
            return {key: self.sent[key] for key in keys if key in self.sent}

    def increment_below(self, key: str, ceiling: int, expires_at: int, amount: int = 1) -> int | None:
        with self._lock:
            if amount < 1 or self.sent.get(key, 0) + amount > ceiling:
                return None
            self.sent[key] = self.sent.get(key, 0) + amount
            self.expires[key] = expires_at
            return self.sent[key]

    def fill(self, key: str, limit: int, expires_at: int) -> None:
        with self._lock:
            if self.sent.get(key, 0) < limit:
                self.sent[key] = limit
                self.expires[key] = expires_at


# -- hot orders and their archive (the DynamoDB and S3 adapters' semantics) --------------------


class InMemoryOrderStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: dict[str, StoredOrder] = {}
        self._archived_profile: dict[str, str] = {}  # the sparse index archived_by_profile

    def upsert(self, order: OrderState) -> OrderWrite:
        with self._lock:
            current = self.items.get(order.key)
            if current is not None and current.version >= order.version:
                return "duplicate" if current.version == order.version else "stale"
            order_date = order.order_date
            if order.created_at is None and current is not None:
                order_date = current.order_date  # an order never changes day without a created_at
            self.items[order.key] = StoredOrder(
                key=order.key,
                version=order.version,
                order_date=order_date,
                profile_id=order.profile_id,
                state=dataclasses.replace(order, order_date=order_date),
                archived_object=current.archived_object if current else None,
                archived_version=current.archived_version if current else None,
                hold_until=current.hold_until if current else None,
            )
            return "applied"

    def aged(self, shard: str, before: str) -> Iterator[AgedOrder]:
        with self._lock:
            found = sorted(
                (item.order_date, key)
                for key, item in self.items.items()
                if item.live and age_shard(key) == shard and item.order_date < before
            )
        for order_date, key in found:
            yield AgedOrder(key, order_date)

    def load(self, keys: Sequence[str]) -> dict[str, StoredOrder]:
        with self._lock:
            return {key: self.items[key] for key in keys if key in self.items}

    def mark_archived(self, entries: Sequence[ArchivedEntry]) -> set[str]:
        changed: set[str] = set()
        with self._lock:
            for entry in entries:
                current = self.items.get(entry.key)
                if current is None or not current.live or current.version != entry.version:
                    changed.add(entry.key)
                    continue
                self.items[entry.key] = StoredOrder(
                    key=entry.key,
                    version=entry.version,
                    order_date=current.order_date,
                    profile_id=current.profile_id,
                    state=None,
                    archived_object=entry.object_key,
                    archived_version=entry.version,
                )
                self._archived_profile[entry.key] = entry.profile_id
        return changed

    def put_back(self, order: OrderState, archived_object: str, hold_until: str) -> bool:
        with self._lock:
            current = self.items.get(order.key)
            if current is not None and (current.live or current.version > order.version):
                return False
            self.items[order.key] = StoredOrder(
                key=order.key,
                version=order.version,
                order_date=order.order_date,
                profile_id=order.profile_id,
                state=order,
                archived_object=archived_object,
                archived_version=order.version,
                hold_until=hold_until,
            )
            self._archived_profile[order.key] = order.profile_id
            return True

    def archived_keys(self, order_id: str) -> list[str]:
        with self._lock:
            return sorted(
                key
                for key, item in self.items.items()
                if item.archived_object is not None and split_order_key(key)[1] == order_id
            )

    def newest_archived_order_date(self, profile_id: str) -> str | None:
        with self._lock:
            dates = [
                self.items[key].order_date
                for key, owner in self._archived_profile.items()
                if owner == profile_id
            ]
        return max(dates, default=None)


class InMemoryArchiveStore:
    """An S3 bucket that checks the SHA-256 it is given, like S3 with ChecksumSHA256.

    `keep_bodies=False` keeps only each object's size and checksum (as S3 reports them): the
    benchmark archives a million orders without holding the archive in memory."""

    def __init__(self, keep_bodies: bool = True) -> None:
        self.objects: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self.bytes_put = 0
        self._keep_bodies = keep_bodies
        self._stored: dict[str, StoredObject] = {}

    def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
        self.requests["PutObject"] += 1
        if hashlib.sha256(body).hexdigest() != sha256:
            raise ValueError(f"BadDigest: the body of {key} does not match its SHA-256")
        self.bytes_put += len(body)
        self._stored[key] = StoredObject(len(body), sha256)
        if self._keep_bodies:
            self.objects[key] = body

    def head(self, key: str) -> StoredObject | None:
        self.requests["HeadObject"] += 1
        if not self._keep_bodies:
            return self._stored.get(key)
        body = self.objects.get(key)  # recomputed: tests corrupt bodies in place
        return StoredObject(len(body), hashlib.sha256(body).hexdigest()) if body is not None else None

    def get(self, key: str) -> bytes | None:
        self.requests["GetObject"] += 1
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self.requests["DeleteObject"] += 1
        self.objects.pop(key, None)
        self._stored.pop(key, None)

    def purge_old_versions(self, key: str) -> None:
        pass  # an unversioned store keeps only the current object

    def keys(self, prefix: str) -> Iterator[str]:
        self.requests["ListObjectsV2"] += 1
        return iter(sorted(k for k in self._stored if k.startswith(prefix)))


class InMemoryArchiveCheckpoints:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.owner: str | None = None
        self.lease_until = 0.0
        self.inflight: InFlightBatch | None = None

    def acquire(self, owner: str, lease_seconds: float) -> InFlightBatch | None:
        now = self._clock()
        if self.owner not in (None, owner) and self.lease_until >= now:
            raise ArchiveLeaseHeld("another archive run holds the lease")
        self.owner, self.lease_until = owner, now + lease_seconds
        return self.inflight

    def begin(self, owner: str, batch: InFlightBatch, lease_seconds: float) -> None:
        self._check(owner)
        self.inflight, self.lease_until = batch, self._clock() + lease_seconds

    def finish(self, owner: str, lease_seconds: float) -> None:
        self._check(owner)
        self.inflight, self.lease_until = None, self._clock() + lease_seconds

    def release(self, owner: str) -> None:
        if self.owner == owner:
            self.owner, self.lease_until = None, 0.0

    def _check(self, owner: str) -> None:
        if self.owner != owner:
            raise ArchiveLeaseLost("the archive lease was taken over by another run")


# -- the WeCom tag writer's state (the DynamoDB adapter's semantics) ----------------------------


class InMemoryTagStateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pairs: dict[str, MemberTagState] = {}
        self.ids: dict[str, dict[CorpTag, str]] = {}
        self.leases: dict[str, float] = {}

    def states(self, keys: Sequence[str]) -> dict[str, MemberTagState]:
        with self._lock:
            return {key: self.pairs[key] for key in keys if key in self.pairs}

    def claim(self, key: str, version: int, pending: frozenset[CorpTag], now: float) -> bool:
        with self._lock:
            state = self.pairs.get(key, MemberTagState())
            if state.version != version:
                return False
            self.pairs[key] = MemberTagState(state.written, frozenset(pending), now, version + 1)
            return True

    def confirm(self, key: str, version: int, written: frozenset[CorpTag]) -> bool:
        with self._lock:
            state = self.pairs.get(key)
            if state is None or state.version != version:
                return False
            self.pairs[key] = MemberTagState(frozenset(written), None, None, version)
            return True

    def tag_ids(self, corp_id: str) -> dict[CorpTag, str]:
        with self._lock:
            return dict(self.ids.get(corp_id, {}))

    def save_tag_ids(self, corp_id: str, ids: Mapping[CorpTag, str]) -> None:
        with self._lock:
            self.ids[corp_id] = dict(ids)

    def lock(self, name: str, now: float, lease_seconds: float) -> bool:
        with self._lock:
            if self.leases.get(name, 0.0) >= now:
                return False
            self.leases[name] = now + lease_seconds
            return True

    def unlock(self, name: str) -> None:
        with self._lock:
            self.leases.pop(name, None)
