"""Erasure (PIPL): a person's data removed from every store, and kept from coming back.

`ErasureRequests.request` (POST /erasures, DELETE /profiles/{id}) resolves the person (the
profile, and the profiles merged into it), puts each of their identifiers on the suppression list
before anything is destroyed (so late events, platform retries, replays and CDC re-reads are
dropped from then on), and records a pending erasure. `ErasureRun.run` (ErasureFunction, on a
schedule) works through pending erasures store by store (domain/privacy.py STORES); a store that
fails is retried by the next run, and `GET /erasures/{id}` shows each store's status:
- profiles, identity, evidence, timeline: the profile items are marked `erased_by` and deleted
  (the audit chain records that as one `erased` change, without values), with their identity
  links (blocked ones too), event records and timeline entries;
- orders: hot orders and archived order stubs keep the order, not the person (`profile_id`
  becomes "erased"); archive: the archived objects holding them are rewritten with that change,
  with new manifests, verified like the archive's own writes;
- landing, quarantine: one pass over the landing bucket for every erasure of the run drops the
  raw pushes, events and kept requests that name the person (by identifier, or by the person's
  values in text the sync never mapped); the pass resumes where it stopped if a run ends first;
- audit: the chains' content is removed, their digests and the erasure's own entry stay;
- watermarks: an incremental-pull position that names the person's source row is rewound to
  just before that row's time.

Late arrivals: a platform retry or a client's request for a person erased already is dropped by
the sync core, but its raw request was landed before the sync read it. The sync functions note
the days that happened on (`LateArrivals`), and the next run scrubs those days' landing objects
of every event naming a suppressed identifier (looked up by hash: the values are gone by then).
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ..domain.audit import erasure_change
from ..domain.identifiers import Identifier
from ..domain.privacy import (
    STORES,
    Erasure,
    PersonTest,
    identifier_keys_in,
    needles_of,
    new_erasure_id,
    scrub_text,
    suppression_key,
)
from .audit import AuditTrail

log = logging.getLogger(__name__)
_GZIP_MAGIC = b"\x1f\x8b"

LANDING_STORES = ("landing", "quarantine")
_WORKERS = 8


class NothingToErase(LookupError):
    """No profile has this id, and no identifier was given to suppress."""


@dataclass(frozen=True, slots=True)
class PersonalData:
    """What the stores hold of a person, found when the erasure is requested."""

    profile_ids: tuple[str, ...]
    identifiers: tuple[Identifier, ...]
    attribute_values: tuple[object, ...]


class ErasureStore(Protocol):
    def create(self, erasure: Erasure) -> None: ...

    def get(self, erasure_id: str) -> Erasure | None: ...

    def save(self, erasure: Erasure) -> None:
        """Store statuses; a complete erasure keeps no identifier keys or needles."""
        ...

    def pending(self, limit: int) -> list[Erasure]: ...

    def suppress(self, suppression_keys: Sequence[tuple[str, str]], erasure_id: str, at: str) -> None:
        """(suppression key, identifier type) entries on the suppression list."""
        ...

    def release(self, suppression_keys: Sequence[str], released_by: str, reason: str, at: str) -> int:
        """Take keys off the suppression list and record who did it and why; the number taken off."""
        ...

    def scrub_pass(self) -> ScrubPass | None:
        """The landing pass in progress, if any."""
        ...

    def save_scrub_pass(self, scrub: ScrubPass | None) -> None: ...


class PersonalDataStores(Protocol):
    """The DynamoDB stores of profiles (profiles, identity, timeline, orders tables)."""

    def find(self, profile_id: str | None, identifier_keys: Sequence[str]) -> PersonalData:
        """The person behind a profile id (resolved through merges) or identifiers."""
        ...

    def erase_profiles(self, profile_ids: Sequence[str], erasure: Erasure) -> None: ...

    def erase_identity(self, profile_ids: Sequence[str]) -> None: ...

    def erase_evidence(self, profile_ids: Sequence[str]) -> None: ...

    def order_keys(self, profile_ids: Sequence[str]) -> list[str]:
        """Keys of the person's orders (hot and archived), read before the timeline goes."""
        ...

    def erase_timeline(self, profile_ids: Sequence[str]) -> None: ...

    def anonymize_orders(self, order_keys: Sequence[str]) -> dict[str, set[str]]:
        """Hot orders and archived stubs keep the order, not the person; returns the archived
        objects to rewrite -> the order keys in each."""
        ...


class ArchiveRewriter(Protocol):
    def anonymize(self, data_key: str, order_keys: set[str]) -> None:
        """Rewrite one archived object with these orders' profile id erased (and its manifest)."""
        ...


@dataclass(slots=True)
class ScrubPass:
    """One pass over the landing bucket for a set of erasures; `after` is the last key done."""

    erasure_ids: list[str]
    after: str = ""
    started_at: str = ""


@dataclass(slots=True)
class ScrubReport:
    objects: int = 0
    rewritten: int = 0
    deleted: int = 0
    finished: bool = False


class LandingScrubber(Protocol):
    def scrub(
        self,
        erasures: Sequence[Erasure],
        after: str,
        keep_going: Callable[[], bool],
        progress: Callable[[str], None],
    ) -> ScrubReport:
        """Objects after `after` in key order, each rewritten without what names the people
        (or deleted when nothing else is left); `progress(key)` after each object."""
        ...

    def scrub_suppressed(
        self, prefix: str, suppressed: Callable[[set[str]], set[str]], keep_going: Callable[[], bool]
    ) -> ScrubReport:
        """The objects under `prefix` without the events naming suppressed identifiers."""
        ...


class LateArrivals(Protocol):
    """Landing prefixes (one day of one kind) that hold requests of suppressed people."""

    def note(self, prefixes: Sequence[str], at: str) -> None: ...

    def pending(self) -> list[tuple[str, str]]:
        """(prefix, when it was last noted)."""
        ...

    def done(self, prefix: str, noted_at: str) -> None:
        """Forget the prefix, unless it was noted again since `noted_at`."""
        ...


class PullWatermarks(Protocol):
    def rewind_naming(self, needles: Sequence[str]) -> int:
        """Incremental-pull watermarks whose position names one of these values, rewound."""
        ...


class SuppressionList(Protocol):
    def suppressed(self, suppression_keys: Sequence[str]) -> set[str]: ...


class LandingObjects(Protocol):
    def keys_after(self, prefixes: Sequence[str], after: str) -> Iterator[str]: ...

    def get(self, key: str) -> bytes: ...

    def replace(self, key: str, body: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


LANDING_PREFIXES = ("quarantine/", "raw/")  # raw pushes and events, refused and unmapped ones


class LandingScrub:
    """Every landing object read once per pass, and written back without the people being erased
    (domain/privacy.py `scrub_text`), or deleted when nothing else is left. GZIP'd objects stay
    GZIP'd; an object that names nobody is not written."""

    def __init__(self, objects: LandingObjects, normalize: Callable[[Mapping[str, Any]], str | None]) -> None:
        self._objects = objects
        self._normalize = normalize

    def scrub(
        self,
        erasures: Sequence[Erasure],
        after: str,
        keep_going: Callable[[], bool],
        progress: Callable[[str], None],
    ) -> ScrubReport:
        report = ScrubReport()
        person = PersonTest(
            [k for e in erasures for k in e.identifier_keys],
            [n for e in erasures for n in e.needles],
            [n for e in erasures for n in e.names],
            self._normalize,
        )
        for key in self._objects.keys_after(LANDING_PREFIXES, after):
            if not keep_going():
                return report
            report.objects += 1
            self._scrub_object(key, person, report)
            progress(key)
        report.finished = True
        return report

    def scrub_suppressed(
        self, prefix: str, suppressed: Callable[[set[str]], set[str]], keep_going: Callable[[], bool]
    ) -> ScrubReport:
        """Late arrivals: the objects under `prefix` without the events whose identifiers are
        suppressed (`suppressed(keys)` says which are)."""
        report = ScrubReport()
        for key in self._objects.keys_after([prefix], ""):
            if not keep_going():
                return report
            report.objects += 1
            zipped, text = self._read(key)
            named = suppressed(identifier_keys_in(text, self._normalize))
            if named:
                self._write(key, zipped, text, PersonTest(named, [], [], self._normalize), report)
        report.finished = True
        return report

    def _read(self, key: str) -> tuple[bool, str]:
        body = self._objects.get(key)
        zipped = body[:2] == _GZIP_MAGIC
        raw = gzip.decompress(body) if zipped else body
        return zipped, raw.decode("utf-8", errors="surrogateescape")

    def _scrub_object(self, key: str, person: PersonTest, report: ScrubReport) -> None:
        zipped, text = self._read(key)
        self._write(key, zipped, text, person, report)

    def _write(self, key: str, zipped: bool, text: str, person: PersonTest, report: ScrubReport) -> None:
        scrubbed = scrub_text(text, person)
        if scrubbed is None:
            self._objects.delete(key)
            report.deleted += 1
        elif scrubbed is not text:
            out = scrubbed.encode("utf-8", errors="surrogateescape")
            self._objects.replace(key, gzip.compress(out) if zipped else out)
            report.rewritten += 1


@dataclass(slots=True)
class RunReport:
    erasures: int = 0
    completed: int = 0
    failed_stores: dict[str, int] = field(default_factory=dict)
    landing: ScrubReport | None = None
    late_arrivals: int = 0  # landing objects rewritten for requests that came after an erasure

    def as_dict(self) -> dict[str, Any]:
        return {
            "erasures": self.erasures,
            "completed": self.completed,
            "failed_stores": dict(self.failed_stores),
            "landing": None if self.landing is None else asdict(self.landing),
            "late_arrivals": self.late_arrivals,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ErasureRequests:
    def __init__(
        self,
        data: PersonalDataStores,
        store: ErasureStore,
        salt: Callable[[], bytes],
        clock: Callable[[], str] = _now,
    ) -> None:
        self._data = data
        self._store = store
        self._salt = salt
        self._clock = clock

    def request(
        self, requested_by: str, profile_id: str | None = None, identifiers: Sequence[Identifier] = ()
    ) -> Erasure:
        """Suppress, then record the erasure (raises NothingToErase)."""
        person = self._data.find(profile_id, [i.key for i in identifiers])
        if not person.profile_ids and not identifiers:
            raise NothingToErase("no profile has this id")
        every = {i.key: i for i in (*person.identifiers, *identifiers)}
        erasure = Erasure(
            erasure_id=new_erasure_id(),
            requested_by=requested_by,
            requested_at=self._clock(),
            profile_ids=person.profile_ids,
            identifier_keys=tuple(sorted(every)),
            needles=needles_of(i.value for i in every.values()),
            names=needles_of(person.attribute_values),
            stores=dict.fromkeys(STORES, "pending"),
        )
        salt = self._salt()
        self._store.suppress(
            [(suppression_key(key, salt), i.type) for key, i in sorted(every.items())],
            erasure.erasure_id,
            erasure.requested_at,
        )
        self._store.create(erasure)
        return erasure

    def status(self, erasure_id: str) -> Erasure | None:
        return self._store.get(erasure_id)

    def release(self, identifiers: Sequence[Identifier], released_by: str, reason: str) -> int:
        """A person who comes back and consents again: their identifiers off the suppression
        list, recorded (who, when, why, which types) and never silently."""
        salt = self._salt()
        keys = [suppression_key(i.key, salt) for i in identifiers]
        return self._store.release(keys, released_by, reason, self._clock())


class ErasureRun:
    def __init__(
        self,
        data: PersonalDataStores,
        store: ErasureStore,
        archive: ArchiveRewriter,
        landing: LandingScrubber,
        audit: AuditTrail,
        arrivals: LateArrivals,
        suppression: SuppressionList,
        salt: Callable[[], bytes],
        watermarks: PullWatermarks,
        clock: Callable[[], str] = _now,
    ) -> None:
        self._watermarks = watermarks
        self._data = data
        self._store = store
        self._archive = archive
        self._landing = landing
        self._audit = audit
        self._arrivals = arrivals
        self._suppression = suppression
        self._salt = salt
        self._clock = clock

    def run(self, remaining_seconds: Callable[[], float], limit: int = 1000) -> RunReport:
        report = RunReport()
        pending = self._store.pending(limit)
        report.erasures = len(pending)
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            done = {e.erasure_id: e for e in pool.map(self._dynamodb_stores, pending)}
        scrubbed, report.landing = self._scrub_landing(done, remaining_seconds)
        for erasure_id in scrubbed - done.keys():  # in the pass, beyond this run's limit
            if (waiting := self._store.get(erasure_id)) is not None:
                done[erasure_id] = waiting
        for erasure in done.values():
            if erasure.erasure_id in scrubbed:
                for store in LANDING_STORES:
                    erasure = erasure.with_store(store, "erased")
            if erasure.status == "complete":
                erasure = replace(erasure, completed_at=self._clock())
                report.completed += 1
            for store, status in erasure.stores.items():
                if status == "failed":
                    report.failed_stores[store] = report.failed_stores.get(store, 0) + 1
            self._store.save(erasure)
        report.late_arrivals = self._scrub_late_arrivals(remaining_seconds)
        return report

    def _scrub_late_arrivals(self, remaining_seconds: Callable[[], float]) -> int:
        scrubbed = 0
        for prefix, noted_at in self._arrivals.pending():
            result = self._landing.scrub_suppressed(
                prefix, self._suppressed_keys, lambda: remaining_seconds() > 60
            )
            if not result.finished:
                break
            self._arrivals.done(prefix, noted_at)
            scrubbed += result.rewritten + result.deleted
        return scrubbed

    def _suppressed_keys(self, identifier_keys: set[str]) -> set[str]:
        salt = self._salt()
        by_hash = {suppression_key(key, salt): key for key in identifier_keys}
        return {by_hash[h] for h in self._suppression.suppressed(list(by_hash))} if by_hash else set()

    # -- DynamoDB stores, the archive and the audit chain: one erasure at a time --------------------
    def _dynamodb_stores(self, erasure: Erasure) -> Erasure:
        """In this order: the orders (found through the timeline, so before it goes), identity
        links (so nothing resolves to the profile any more: suppression applies), the profile
        items (tombstones), event records, the timeline, the audit chain's content."""
        ids = list(erasure.profile_ids)
        if erasure.stores.get("orders") != "erased" or erasure.stores.get("archive") != "erased":
            erasure = self._step(erasure, ("orders", "archive"), lambda: self._orders(ids))
        steps: list[tuple[str, Callable[[], None]]] = [
            ("identity", lambda: self._data.erase_identity(ids)),
            ("profiles", lambda: self._data.erase_profiles(ids, erasure)),
            ("evidence", lambda: self._data.erase_evidence(ids)),
            ("timeline", lambda: self._data.erase_timeline(ids)),
            ("audit", lambda: self._erase_audit(ids, erasure)),
            ("watermarks", lambda: self._rewind(erasure)),
        ]
        for store, step in steps:
            if store == "timeline" and erasure.stores.get("orders") != "erased":
                continue  # the timeline is how hot orders are found: it waits for them
            if erasure.stores.get(store) != "erased":
                erasure = self._step(erasure, (store,), step)
        return erasure

    @staticmethod
    def _step(erasure: Erasure, stores: Sequence[str], step: Callable[[], None]) -> Erasure:
        try:
            step()
        except Exception as exc:
            log.warning("erasure store failed", extra={"stores": list(stores), "error": type(exc).__name__})
            for store in stores:
                erasure = erasure.with_store(store, "failed", type(exc).__name__)
            return erasure
        for store in stores:
            erasure = erasure.with_store(store, "erased")
        return erasure

    def _rewind(self, erasure: Erasure) -> None:
        # a source row's primary key (a member number) is what a pull watermark keeps: while the
        # row is still in the source, a later pull may name it again (README: erasure)
        self._watermarks.rewind_naming(erasure.needles)

    def _orders(self, profile_ids: Sequence[str]) -> None:
        archived = self._data.anonymize_orders(self._data.order_keys(profile_ids))
        for data_key, keys in sorted(archived.items()):
            self._archive.anonymize(data_key, keys)

    def _erase_audit(self, profile_ids: Iterable[str], erasure: Erasure) -> None:
        change = erasure_change(erasure.erasure_id, erasure.requested_by, erasure.requested_at, STORES, [])
        for profile_id in profile_ids:
            self._audit.erase(profile_id, change)

    # -- the landing bucket: one pass for every erasure -------------------------------------------
    def _scrub_landing(
        self, erasures: dict[str, Erasure], remaining_seconds: Callable[[], float]
    ) -> tuple[set[str], ScrubReport | None]:
        scrub = self._store.scrub_pass()
        if scrub is None:
            waiting = [e.erasure_id for e in erasures.values() if e.stores.get("landing") != "erased"]
            if not waiting:
                return set(), None
            scrub = ScrubPass(sorted(waiting), started_at=self._clock())
        members = [erasures.get(i) or self._store.get(i) for i in scrub.erasure_ids]
        people = [e for e in members if e is not None]
        last_saved = time.monotonic()

        def progress(key: str) -> None:
            nonlocal last_saved
            scrub.after = key
            if time.monotonic() - last_saved > 10:  # resume close to here if the run ends
                self._store.save_scrub_pass(scrub)
                last_saved = time.monotonic()

        report = self._landing.scrub(people, scrub.after, lambda: remaining_seconds() > 60, progress)
        if not report.finished:
            self._store.save_scrub_pass(scrub)
            return set(), report
        self._store.save_scrub_pass(None)
        return set(scrub.erasure_ids), report
