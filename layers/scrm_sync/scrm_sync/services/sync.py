"""The sync core: canonical events in, the unified profiles updated.

map fields -> resolve identity (create, link or merge) -> conditional field writes -> timeline.
Every step is idempotent, so at-least-once delivery has an exactly-once effect, and every write
is guarded by a condition, so concurrent workers and any arrival order give the same profiles.

A queue batch goes through in three stages (`SyncBatch`), because each DynamoDB request costs
more CPU than the rules themselves: one identity read for every identifier of the batch, then
per event its one conditional write (field update, or the new profile with its identifiers),
then the evidence and timeline entries of the whole batch in pages. Only the middle stage is a
per-event round trip; merges, new links, lost races and operator blocks take the full per-event
path, which reads the identity graph afresh. A single event is a batch of one.

Before anything is written, an event naming a suppressed identifier (an erased person's,
domain/privacy.py) is dropped: its outcome says `suppressed` and nothing is stored. Only
identifiers nobody owns can be suppressed, so the batch asks about those only (one read).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from ..domain.events import IDENTIFIERS_REMOVED, ORDER_EVENT_TYPES, CanonicalEvent, original_event_id
from ..domain.identifiers import Identifier
from ..domain.identity_graph import within_link_limits
from ..domain.orders import order_state
from ..domain.precedence import FieldVersion, FieldWrite
from ..domain.privacy import suppression_key
from ..domain.profile import (
    EventRecord,
    RejectedIdentifier,
    ResolvedIdentifiers,
    field_writes,
    new_profile_id,
    normalize_identifiers,
)
from ..domain.rules import Rules
from .ports import Evidence, IdentityLink, OrderStore, Owner, ProfileRepository, TimelineEntry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # re-resolutions after losing a race to a concurrent writer


class UnlinkableEvent(ValueError):
    """The event has no identifier that may link it to a profile; retrying cannot help."""


class ConcurrencyExhausted(RuntimeError):
    """Lost too many races in a row; the message is retried by the queue."""


class EvidenceNotWritten(RuntimeError):
    """The batch's evidence and timeline entries could not be stored: these events must be
    processed again (their field writes are idempotent, so a retry only adds what is missing)."""

    def __init__(self, event_keys: Iterable[str]) -> None:
        self.event_keys = frozenset(event_keys)
        super().__init__(f"evidence of {len(self.event_keys)} events not written")


@dataclass(frozen=True, slots=True)
class Conflict:
    field: str
    winner_source: str
    winner_occurred_at: str
    loser_source: str
    loser_occurred_at: str

    def as_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "winner_source": self.winner_source,
            "winner_occurred_at": self.winner_occurred_at,
            "loser_source": self.loser_source,
            "loser_occurred_at": self.loser_occurred_at,
        }


@dataclass(slots=True)
class SyncOutcome:
    profile_id: str
    created: bool = False
    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    linked: list[Identifier] = field(default_factory=list)
    not_linked: list[Identifier] = field(default_factory=list)
    rejected_identifiers: tuple[RejectedIdentifier, ...] = ()
    timeline_added: bool = False
    evidence: set[str] = field(default_factory=set)  # identifier keys this event links to the profile
    detached: list[Identifier] = field(default_factory=list)  # links an identifiers.removed event removed
    # fields refused because the profile item is at DynamoDB's 400 KB limit (see README)
    too_large: list[str] = field(default_factory=list)
    suppressed: bool = False  # it names an erased person's identifier: dropped, nothing written


class ProfileSync:
    def __init__(
        self,
        repository: ProfileRepository,
        rules: Callable[[], Rules],
        interaction_retention: timedelta = timedelta(days=180),
        orders: OrderStore | None = None,
        suppression_salt: Callable[[], bytes] | None = None,
    ) -> None:
        self._repo = repository
        self._rules = rules
        self._interaction_retention = interaction_retention
        self._orders = orders
        self._salt = suppression_salt  # None: no suppression list (tests of other rules)

    def suppressed_keys(self, identifier_keys: Iterable[str]) -> set[str]:
        """Which of these identifier keys are suppressed (one read)."""
        if self._salt is None:
            return set()
        salt = self._salt()
        by_hash = {suppression_key(key, salt): key for key in identifier_keys}
        if not by_hash:
            return set()
        return {by_hash[hashed] for hashed in self._repo.suppressed(list(by_hash))}

    def batch(self, events: Sequence[CanonicalEvent]) -> SyncBatch:
        """Stage one for a batch of events: their identifiers normalized under one rules
        snapshot and the owners of all of them read at once. Apply each event with
        `SyncBatch.apply` (thread-safe), then `SyncBatch.finish` to store the evidence."""
        return SyncBatch(self, events)

    def apply(self, event: CanonicalEvent) -> SyncOutcome:
        """One event on its own: a batch of one."""
        staged = self.batch([event])
        outcome = staged.apply(event)
        staged.finish()
        return outcome

    def _sync(
        self,
        event: CanonicalEvent,
        rules: Rules,
        identifiers: ResolvedIdentifiers,
        known_owners: Mapping[str, Owner] | None,
        keep: Callable[[Evidence], None],
    ) -> SyncOutcome:
        """One event through identity and field writes; its evidence goes to `keep`. The first
        attempt trusts `known_owners` (read for the whole batch) when given: every write is
        conditional, so a stale owner only costs a retry with owners read afresh."""
        if event.type == IDENTIFIERS_REMOVED:
            return self._detach(event, identifiers.linkable, keep)
        unlinkable = identifiers.unlinkable_reason()
        if unlinkable is not None:
            raise UnlinkableEvent(unlinkable)
        writes = field_writes(event, rules)
        links = [IdentityLink(i, "", event.source, event.event_id) for i in identifiers.linkable]

        owners = known_owners
        for _ in range(MAX_ATTEMPTS):
            outcome = self._attempt(event, rules, writes, links, owners)
            owners = None  # a lost race: read the identity graph again
            if outcome is not None and outcome.suppressed:
                return outcome
            if outcome is not None:
                outcome.rejected_identifiers = identifiers.rejected
                record = EventRecord(
                    source=event.source,
                    event_id=event.event_id,
                    type=event.type,
                    occurred_at=event.occurred_at.astimezone(UTC).isoformat(),
                    identifier_keys=tuple(sorted(outcome.evidence)),
                    writes=tuple(writes),
                    conflicts=tuple(c.as_dict() for c in outcome.conflicts),
                )
                timeline = self._timeline_entry(event)
                keep(Evidence(outcome.profile_id, record, timeline))
                outcome.timeline_added = timeline is not None
                if self._orders is not None and (order := order_state(event, outcome.profile_id)):
                    self._orders.upsert(order)  # latest state per order; an older event is a no-op
                return outcome
        raise ConcurrencyExhausted(f"event {event.idempotency_key} lost {MAX_ATTEMPTS} races")

    # -- one optimistic attempt; None means "state changed under us, resolve again" -----------
    def _attempt(
        self,
        event: CanonicalEvent,
        rules: Rules,
        writes: list[FieldWrite],
        links: list[IdentityLink],
        known_owners: Mapping[str, Owner] | None = None,
    ) -> SyncOutcome | None:
        keys = [link.identifier.key for link in links]
        if known_owners is None:
            owners = self._repo.owners(keys)
        else:
            owners = {key: known_owners[key] for key in keys if key in known_owners}
        active = {key: owner.profile_id for key, owner in owners.items() if not owner.blocked}
        blocked = {key: owner.profile_id for key, owner in owners.items() if owner.blocked}
        candidates = [lk for lk in links if lk.identifier.key not in blocked]
        owner_ids = sorted(set(active.values()))
        if len(owner_ids) > 1:
            # only a merge needs the live ids up front; a single owner's redirect shows up on write
            owner_ids = sorted({self._repo.resolve(pid) for pid in owner_ids})

        if not candidates:
            # only identifiers an operator unlinked: the event stays with their own profile
            owner_ids = [self._repo.resolve(min(blocked.values()))]
        elif not owner_ids:
            profile_id = new_profile_id()
            # a new profile links nothing yet: the per-type limit applies to the event's own links
            allowed, over_limit = within_link_limits(candidates, {}, rules.max_identifiers_per_type)
            claimed = [IdentityLink(lk.identifier, profile_id, lk.source, lk.event_id) for lk in allowed]
            created = self._repo.create_profile(profile_id, writes, claimed)
            if not created.created:
                return None
            return SyncOutcome(
                profile_id,
                created=True,
                applied=[w.field for w in writes],
                linked=[lk.identifier for lk in allowed],
                not_linked=[lk.identifier for lk in over_limit],
                evidence={lk.identifier.key for lk in allowed},
            )

        outcome = SyncOutcome(owner_ids[0], evidence=set(active) if candidates else set(blocked))
        if len(owner_ids) > 1:
            survivor = self._merge(owner_ids, event)
            if survivor is None:
                return None
            outcome.profile_id = survivor
            outcome.merged = [pid for pid in owner_ids if pid != survivor]

        result = self._repo.apply_fields(outcome.profile_id, writes)
        if result.erased:  # erased since the owners were read: the person must not come back
            return SyncOutcome(outcome.profile_id, suppressed=True)
        if result.redirected_to is not None:
            self._finish_merge(outcome.profile_id, result.redirected_to)
            return None
        outcome.applied = [w.field for w in result.applied]
        outcome.duplicates = [w.field for w in result.duplicates]
        outcome.conflicts = [_conflict(lost, current) for lost, current in result.lost]
        outcome.too_large = [w.field for w in result.too_large]

        unlinked = [
            IdentityLink(lk.identifier, outcome.profile_id, lk.source, lk.event_id)
            for lk in candidates
            if lk.identifier.key not in active
        ]
        if unlinked:
            linked = self._repo.link(outcome.profile_id, unlinked, rules.max_identifiers_per_type)
            if linked.redirected_to is not None or linked.owned_elsewhere:
                return None  # merged or claimed meanwhile: resolve again (field writes are idempotent)
            outcome.linked = linked.linked
            outcome.not_linked = linked.over_limit
            outcome.evidence |= {i.key for i in linked.linked}
        return outcome

    # -- identifiers.removed --------------------------------------------------------------------
    def _detach(
        self, event: CanonicalEvent, identifiers: Sequence[Identifier], keep: Callable[[Evidence], None]
    ) -> SyncOutcome:
        """Take the identifiers' links off the profiles that own them; the profiles keep their
        fields. Nothing owned (a replay, or never linked) is nothing to do. Unlike the other
        event types its effect depends on order: CDC applies a row's changes in source order."""
        outcome = SyncOutcome(profile_id="")
        detached_by_profile: dict[str, list[Identifier]] = {}
        pending = list(identifiers)
        expected_live: dict[str, str] = {}  # identifier key -> the live profile it must still be on
        for _ in range(MAX_ATTEMPTS):
            owners = self._repo.owners([i.key for i in pending])
            by_owner: dict[str, list[Identifier]] = {}
            for identifier in pending:
                owner = owners.get(identifier.key)
                if owner is None or owner.blocked:
                    continue
                live = self._repo.resolve(owner.profile_id)
                # a link re-pointed by a merge is still the one to remove; one made on another
                # profile after a concurrent removal is not
                if expected_live.setdefault(identifier.key, live) == live:
                    by_owner.setdefault(owner.profile_id, []).append(identifier)
            pending = []
            for owner_id, owned in sorted(by_owner.items()):
                removed = self._repo.detach_identifiers(owner_id, owned)
                for identifier in removed:
                    detached_by_profile.setdefault(expected_live[identifier.key], []).append(identifier)
                pending.extend(i for i in owned if i not in removed)
            if not pending:
                break
        else:
            raise ConcurrencyExhausted(f"event {event.idempotency_key} lost {MAX_ATTEMPTS} races")

        for profile_id, removed in sorted(detached_by_profile.items()):
            record = EventRecord(
                source=event.source,
                event_id=event.event_id,
                type=event.type,
                occurred_at=event.occurred_at.astimezone(UTC).isoformat(),
                identifier_keys=(),  # a removal is no evidence that identifiers belong together
                writes=(),
                detached_keys=tuple(sorted(i.key for i in removed)),
            )
            keep(Evidence(profile_id, record, None))
            outcome.profile_id = outcome.profile_id or profile_id
            outcome.detached.extend(removed)
        return outcome

    # -- merges ---------------------------------------------------------------------------------
    def _merge(self, profile_ids: list[str], event: CanonicalEvent) -> str | None:
        """Merge every profile into the smallest id (deterministic survivor); None = retry."""
        survivor = profile_ids[0]
        for loser in profile_ids[1:]:
            existing = self._repo.redirect(loser, survivor, event.event_id)
            if existing is not None and existing != survivor:
                return None  # merged elsewhere concurrently: resolve again
            self._finish_merge(loser, survivor)
        return survivor

    def _finish_merge(self, loser: str, target: str) -> None:
        """Copy the merged profile's fields and re-point its identifiers. Idempotent: safe to
        repeat after a crash or by any worker that finds the redirect."""
        live = self._repo.resolve(target)
        _, fields = self._repo.field_versions(loser)
        if fields:
            writes = [FieldWrite(name, value, version) for name, (value, version) in sorted(fields.items())]
            for _ in range(MAX_ATTEMPTS):
                result = self._repo.apply_fields(live, writes)
                if result.redirected_to is None:
                    break
                live = self._repo.resolve(result.redirected_to)
        self._repo.repoint_identifiers(loser, live)

    # -- timeline -------------------------------------------------------------------------------
    def _timeline_entry(self, event: CanonicalEvent) -> TimelineEntry | None:
        occurred = event.occurred_at.astimezone(UTC)
        expires_at = None
        if event.type in ORDER_EVENT_TYPES and event.order is not None:
            kind, data = "order", {**event.order.model_dump(mode="json"), "type": event.type}
        elif event.type == "interaction" and event.interaction is not None:
            kind, data = "interaction", event.interaction.model_dump(mode="json")
            expires_at = int((occurred + self._interaction_retention).timestamp())
        else:
            return None
        return TimelineEntry(
            # a replay replaces its original's entry instead of adding a second one
            sort_key=f"{occurred.isoformat()}#{kind}#{event.source}#{original_event_id(event.event_id)}",
            kind=kind,
            occurred_at=occurred.isoformat(),
            source=event.source,
            event_id=event.event_id,
            data=data,
            expires_at=expires_at,
        )


def _conflict(lost: FieldWrite, current: FieldVersion) -> Conflict:
    return Conflict(
        lost.field, current.source, current.occurred_at, lost.version.source, lost.version.occurred_at
    )


class SyncBatch:
    """One queue batch through the sync core in stages (see the module docstring): built by
    `ProfileSync.batch` with the identity read done, `apply` per event from any number of
    threads, then `finish` once to store the evidence and timeline entries in pages."""

    def __init__(self, core: ProfileSync, events: Sequence[CanonicalEvent]) -> None:
        self._core = core
        self._evidence: dict[str, list[Evidence]] = {}  # event key -> what it leaves behind
        self._lock = threading.Lock()
        self._identifiers: dict[str, ResolvedIdentifiers] = {}
        self._owners: Mapping[str, Owner] | None = None  # None: each event reads its own
        self._suppressed: set[str] | None = None  # None: each event asks about its own
        self._read_failure: Exception | None = None
        self._removed_keys: set[str] = set()
        try:
            self._rules: Rules | Exception = core._rules()
        except Exception as exc:  # no valid configuration: every event of the batch fails with it
            self._rules = exc
            return
        for event in events:
            self._identifiers[event.idempotency_key] = normalize_identifiers(event, self._rules)
        keys = [
            identifier.key
            for event in events
            if event.type != IDENTIFIERS_REMOVED
            for identifier in self._identifiers[event.idempotency_key].linkable
        ]
        # identifiers a removal in this batch may detach: whoever owned them when the batch was
        # read says nothing about after the removal, so their events read the graph themselves
        self._removed_keys = {
            identifier.key
            for event in events
            if event.type == IDENTIFIERS_REMOVED
            for identifier in self._identifiers[event.idempotency_key].linkable
        }
        try:
            self._owners = core._repo.owners(keys) if keys else {}
            # only identifiers nobody owns can be suppressed: ask about those, once for the batch
            self._suppressed = core.suppressed_keys({k for k in keys if k not in self._owners})
        except Exception as exc:
            self._owners = None
            if len(self._identifiers) == 1:
                self._read_failure = exc  # the event's own read: the event fails with it
            else:  # e.g. throttled: each event reads its own owners and succeeds or fails alone
                log.warning(
                    "batch identity read failed; events resolve one by one",
                    extra={"error": type(exc).__name__},
                )

    def apply(self, event: CanonicalEvent) -> SyncOutcome:
        if self._read_failure is not None:
            raise self._read_failure
        # when the batch had no rules, ask again: raises this event's own error, or syncs it
        rules = self._core._rules() if isinstance(self._rules, Exception) else self._rules
        identifiers = self._identifiers.get(event.idempotency_key)
        if identifiers is None:  # not part of the batch as built: nothing read for it yet
            identifiers = normalize_identifiers(event, rules)
        owners = self._owners
        if self._removed_keys and any(i.key in self._removed_keys for i in identifiers.linkable):
            owners = None
        if event.type != IDENTIFIERS_REMOVED and self._names_suppressed(identifiers, owners):
            return SyncOutcome("", suppressed=True)
        kept: list[Evidence] = []
        outcome = self._core._sync(event, rules, identifiers, owners, kept.append)
        with self._lock:
            self._evidence.setdefault(event.idempotency_key, []).extend(kept)
        return outcome

    def _names_suppressed(self, identifiers: ResolvedIdentifiers, owners: Mapping[str, Owner] | None) -> bool:
        keys = [i.key for i in identifiers.linkable]
        if owners is not None and self._suppressed is not None:
            return any(key in self._suppressed for key in keys if key not in owners)
        return bool(self._core.suppressed_keys(keys))  # owners unknown here: ask about them all

    def finish(self) -> None:
        """Store the evidence of every event applied, or raise EvidenceNotWritten naming them
        all (which of a failed page's entries landed is unknown; storing them again is safe)."""
        with self._lock:
            pending, self._evidence = self._evidence, {}
        entries = [entry for kept in pending.values() for entry in kept]
        if not entries:
            return
        try:
            self._core._repo.record_events(entries)
        except Exception as exc:
            raise EvidenceNotWritten(pending) from exc
