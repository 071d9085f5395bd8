"""Hot and cold orders: archive orders older than the cutoff to the archive bucket, restore them,
and tell the timeline that older orders are archived.

The invariant every step keeps, whatever stops a run: **an order's hot item points to the one
archive object that holds its copy, and an archive object holds exactly the orders whose hot
items point to it.** So an order is never lost (its hot state is only replaced by a stub after
its object and manifest were written and verified) and never counted twice by Athena.

One batch, in order:
1. record the batch's object key in the checkpoint (`begin`), before anything is uploaded;
2. upload the gzip JSON Lines object and its manifest, each with its SHA-256, and verify both
   with a HEAD (S3 checked the checksum on arrival; the HEAD proves the object at the key is it);
   on a mismatch both are deleted, nothing in DynamoDB was touched, the run fails;
3. replace each hot order by its stub, conditional on the version that was archived (one
   DynamoDB transaction per 100 orders); an order that changed meanwhile stays hot...
4. ...and is taken out of the object again (rewrite + new manifest + verify), so its old state
   is not archived beside the new one it will be archived with later;
5. clear the checkpoint (`finish`).
A run that finds a batch recorded in the checkpoint finishes it first from what S3 and DynamoDB
hold (`_settle`): rows whose orders point to the object stay, rows whose orders are still hot
at the archived version are stubbed now, the rest leave the object. An archived order that comes
back to life (a later event, or a restore then an update) leaves its old object before its new
state is archived. Runs are serialized by a lease in the checkpoint item.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any, Literal

from ..domain.archive import (
    BatchAssembler,
    InFlightBatch,
    Manifest,
    SealedBatch,
    batch_name,
    data_key_of_manifest,
    decode_rows,
    encode_rows,
    manifest_for,
    manifest_key,
    manifest_prefix,
    object_key,
    order_from_row,
    partition_of,
    row_key,
    sha256_hex,
)
from ..domain.orders import OrderState, StoredOrder, all_age_shards, order_key, split_order_key
from ..domain.privacy import ERASED_PROFILE
from .ports import (
    ArchiveCheckpoints,
    ArchivedEntry,
    ArchiveLeaseHeld,
    ArchiveLeaseLost,
    ArchiveStore,
    OrderStore,
)

LOAD_CHUNK = 100  # orders read per BatchGetItem
DATA_CONTENT_TYPE = "application/gzip"
MANIFEST_CONTENT_TYPE = "application/json"

StopReason = Literal["done", "deadline", "busy", "failed"]


class ArchiveObjectCorrupt(RuntimeError):
    """An archive object or manifest is not what was written (or cannot be read)."""


class ArchiveObjectMissing(RuntimeError):
    """Orders point to an archive object that is gone: an operator must look."""


@dataclass(slots=True)
class ArchiveReport:
    cutoff: str
    orders_archived: int = 0  # written to the archive and replaced by stubs in the hot table
    orders_changed: int = 0  # changed while being archived: stay hot, archived by a later run
    orders_held: int = 0  # restored recently: stay hot until their hold ends
    orders_restubbed: int = 0  # restored and unchanged: the archive copy was current, no upload
    orders_superseded: int = 0  # archived orders that came back to life: taken out of the old object
    batches: int = 0
    batches_recovered: int = 0  # unfinished batches of an earlier run, finished by this one
    stopped: StopReason = "done"
    error: str | None = None  # exception type and message: object keys and counts, no order data

    @property
    def failures(self) -> int:
        return int(self.stopped == "failed")

    def as_log(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "orders_archived": self.orders_archived,
            "orders_changed": self.orders_changed,
            "orders_held": self.orders_held,
            "orders_restubbed": self.orders_restubbed,
            "orders_superseded": self.orders_superseded,
            "batches": self.batches,
            "batches_recovered": self.batches_recovered,
            "stopped": self.stopped,
            "error": self.error,
        }


class ArchiveOrders:
    def __init__(
        self,
        orders: OrderStore,
        store: ArchiveStore,
        checkpoints: ArchiveCheckpoints,
        batch_orders: int = 5000,
        batch_raw_bytes: int = 64 * 1024 * 1024,
        lease_seconds: float = 960.0,  # longer than a Lambda can run: a lease outlives its holder
        reserve_seconds: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timer: Callable[[], float] = time.monotonic,
        new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    ) -> None:
        self._orders = orders
        self._store = store
        self._objects = ArchiveObjects(store, clock)
        self._checkpoints = checkpoints
        self._batch_orders = batch_orders
        self._batch_raw_bytes = batch_raw_bytes
        self._lease = lease_seconds
        self._reserve = reserve_seconds
        self._clock = clock
        self._timer = timer
        self._new_run_id = new_run_id

    def run(self, cutoff: date, remaining_seconds: Callable[[], float]) -> ArchiveReport:
        """Archive live orders dated before `cutoff` until none is left or the deadline
        (`remaining_seconds()` left) is near; stops at the first failure."""
        report = ArchiveReport(cutoff.isoformat())
        run = _Run(self._new_run_id(), self._clock())
        try:
            unfinished = self._checkpoints.acquire(run.id, self._lease)
        except ArchiveLeaseHeld:
            report.stopped = "busy"
            return report
        except Exception as exc:
            report.stopped, report.error = "failed", _describe(exc)
            return report
        try:
            if unfinished is not None:
                report.orders_archived += self._settle(unfinished, run)
                self._checkpoints.finish(run.id, self._lease)
                report.batches_recovered += 1
            self._archive_aged(cutoff.isoformat(), run, report, remaining_seconds)
        except Exception as exc:  # S3, DynamoDB, a corrupt object, a lost lease: fail the run
            report.stopped, report.error = "failed", _describe(exc)
        finally:
            try:
                self._checkpoints.release(run.id)
            except Exception as exc:  # the lease expires by itself
                report.error = report.error or _describe(exc)
        return report

    # -- the run ----------------------------------------------------------------------------
    def _archive_aged(
        self, cutoff: str, run: _Run, report: ArchiveReport, remaining_seconds: Callable[[], float]
    ) -> None:
        assembler = BatchAssembler(self._batch_orders, self._batch_raw_bytes, run.archived_at)
        # one stream, oldest day first across the shards, so a day's orders fill few objects
        aged = heapq.merge(
            *(self._orders.aged(s, cutoff) for s in all_age_shards()), key=lambda a: a.order_date
        )
        for chunk in _chunks((a.key for a in aged), LOAD_CHUNK):
            if remaining_seconds() < max(self._reserve, 2 * run.slowest_batch):
                report.stopped = "deadline"
                break
            for order in self._archivable(self._orders.load(chunk), chunk, cutoff, run, report):
                sealed = assembler.add(order)
                if sealed is not None:
                    self._write_batch(sealed, run, report)
        last = assembler.seal()
        if last is not None:
            self._write_batch(last, run, report)

    def _archivable(
        self,
        loaded: Mapping[str, StoredOrder],
        keys: Sequence[str],
        cutoff: str,
        run: _Run,
        report: ArchiveReport,
    ) -> list[OrderState]:
        """The orders of a chunk to put into batches. The index is eventually consistent and
        orders change: what was loaded decides. Restored orders whose archive copy is still
        current get their stub back without an upload; archived orders that changed leave their
        old object first."""
        fresh: list[OrderState] = []
        current: list[ArchivedEntry] = []
        superseded: dict[str, list[str]] = {}
        for key in keys:
            stored = loaded.get(key)
            if stored is None or stored.state is None or stored.order_date >= cutoff:
                continue  # archived meanwhile, or redated
            if stored.hold_until is not None and run.today < stored.hold_until:
                report.orders_held += 1
            elif stored.archive_is_current and stored.archived_object is not None:
                current.append(_entry(stored.state, stored.archived_object, run.archived_at))
            else:
                if stored.archived_object is not None:
                    superseded.setdefault(stored.archived_object, []).append(key)
                fresh.append(stored.state)
        if current:
            report.orders_restubbed += len(current) - len(self._orders.mark_archived(current))
        for data_key, stale in superseded.items():
            self._drop_from_object(data_key, set(stale))
            report.orders_superseded += len(stale)
        return fresh

    def _write_batch(self, batch: SealedBatch, run: _Run, report: ArchiveReport) -> None:
        started = self._timer()
        run.sequence += 1
        data_key = object_key(batch.dt, batch_name(run.id, run.sequence))
        self._checkpoints.begin(run.id, InFlightBatch(data_key, batch.dt), self._lease)
        try:
            self._objects.upload(data_key, batch.dt, batch.body, [m.key for m in batch.members])
        except ArchiveObjectCorrupt:
            self._objects.discard(data_key)  # nothing points to it yet: the orders are all still hot
            self._checkpoints.finish(run.id, self._lease)
            raise
        entries = [
            ArchivedEntry(m.key, m.version, data_key, m.profile_id, m.order_id, run.archived_at)
            for m in batch.members
        ]
        changed = self._orders.mark_archived(entries)
        if changed:
            self._objects.replace(
                data_key, batch.dt, [r for r in decode_rows(batch.body) if row_key(r) not in changed]
            )
        self._checkpoints.finish(run.id, self._lease)
        report.batches += 1
        report.orders_archived += len(entries) - len(changed)
        report.orders_changed += len(changed)
        run.slowest_batch = max(run.slowest_batch, self._timer() - started)

    # -- making an object agree with the hot table ----------------------------------------------
    def _settle(self, batch: InFlightBatch, run: _Run) -> int:
        """Finish a batch an earlier run left in the checkpoint, from what S3 and DynamoDB hold;
        returns how many of its orders this run replaced by stubs."""
        data_key, dt = batch.object_key, batch.dt
        body = self._store.get(data_key)
        manifest = _read_manifest(self._store.get(manifest_key(data_key)))
        if body is None:
            self._refuse_if_referenced(data_key, manifest.order_keys if manifest else ())
            self._store.delete(manifest_key(data_key))  # never uploaded, or left empty
            return 0
        try:
            rows = decode_rows(body)
        except ValueError:
            self._refuse_if_referenced(data_key, manifest.order_keys if manifest else ())
            self._objects.discard(data_key)  # a damaged upload no order points to: the orders are still hot
            return 0
        stored = self._orders.load([row_key(r) for r in rows])
        keep: list[dict[str, Any]] = []
        to_stub: list[ArchivedEntry] = []
        for row in rows:
            item = stored.get(row_key(row))
            if item is None:
                keep.append(row)  # deleted from the hot table by hand: the archive copy is the last one
                continue
            if item.archived_object == data_key and item.archived_version == row["version"]:
                keep.append(row)
            elif item.state is not None and item.version == row["version"]:
                keep.append(row)
                to_stub.append(_entry(item.state, data_key, run.archived_at))
        unchanged = len(keep) == len(rows) and manifest is not None and manifest.matches(body)
        if not unchanged:
            self._objects.replace(data_key, dt, keep)  # verified before any stub points to it
        if not to_stub:
            return 0
        changed = self._orders.mark_archived(to_stub)
        if changed:
            self._objects.replace(data_key, dt, [r for r in keep if row_key(r) not in changed])
        return len(to_stub) - len(changed)

    def _drop_from_object(self, data_key: str, keys: set[str]) -> None:
        """Take orders that came back to life out of the object holding their old state.
        Idempotent: the still-hot order is the reminder until its new state is archived."""
        body = self._store.get(data_key)
        if body is None:
            return  # left empty and deleted: nothing of these orders is archived any more
        try:
            rows = decode_rows(body)
        except ValueError as exc:
            raise ArchiveObjectCorrupt(f"{data_key} cannot be read: {exc}") from None
        manifest = _read_manifest(self._store.get(manifest_key(data_key)))
        kept = [r for r in rows if row_key(r) not in keys]
        if len(kept) == len(rows) and manifest is not None and manifest.matches(body):
            return
        self._objects.replace(data_key, partition_of(data_key), kept)

    def _refuse_if_referenced(self, data_key: str, keys: Iterable[str]) -> None:
        pointing = [k for k, s in self._orders.load(list(keys)).items() if s.archived_object == data_key]
        if pointing:
            raise ArchiveObjectMissing(
                f"{len(pointing)} archived orders point to {data_key}, which is missing or unreadable"
            )

    # -- S3 -------------------------------------------------------------------------------------


class ArchiveObjects:
    """Archive objects written the one way: rows as gzip JSON Lines with their manifest, both
    read back and verified (size and sha256) before anyone relies on them; an object left with
    no rows is deleted with its manifest."""

    def __init__(
        self, store: ArchiveStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    def anonymize(self, data_key: str, order_keys: set[str]) -> None:
        """An erasure (services/erasure.py): these archived orders keep the order, not the
        person (`profile_id` "erased"); the object and its manifest are rewritten and verified
        like any archive write. Idempotent."""
        body = self._store.get(data_key)
        if body is None:
            return
        try:
            rows = decode_rows(body)
        except ValueError as exc:
            raise ArchiveObjectCorrupt(f"{data_key} cannot be read: {exc}") from None
        anonymized = [
            {**row, "profile_id": ERASED_PROFILE} if row_key(row) in order_keys else row for row in rows
        ]
        if anonymized != rows:
            self.replace(data_key, partition_of(data_key), anonymized)
        for key in (data_key, manifest_key(data_key)):  # the versions before held the person
            self._store.purge_old_versions(key)

    def replace(self, data_key: str, dt: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.upload(data_key, dt, encode_rows(rows), [row_key(r) for r in rows])
        else:
            self.discard(data_key)

    def upload(self, data_key: str, dt: str, body: bytes, keys: Sequence[str]) -> None:
        manifest = manifest_for(data_key, dt, body, keys, self._clock().isoformat(timespec="milliseconds"))
        manifest_bytes = manifest.to_bytes()
        manifest_sha256 = sha256_hex(manifest_bytes)
        self._store.put(data_key, body, manifest.sha256, DATA_CONTENT_TYPE)
        self._store.put(manifest_key(data_key), manifest_bytes, manifest_sha256, MANIFEST_CONTENT_TYPE)
        self._verify(data_key, manifest.size, manifest.sha256)
        self._verify(manifest_key(data_key), len(manifest_bytes), manifest_sha256)

    def _verify(self, key: str, size: int, sha256: str) -> None:
        stored = self._store.head(key)
        if stored is None:
            raise ArchiveObjectCorrupt(f"{key} is missing right after its upload")
        if stored.size != size or stored.sha256 != sha256:
            raise ArchiveObjectCorrupt(f"{key} does not match its manifest (size or sha256)")

    def discard(self, data_key: str) -> None:
        self._store.delete(data_key)
        self._store.delete(manifest_key(data_key))


@dataclass(slots=True)
class _Run:
    id: str
    started: datetime
    sequence: int = 0
    slowest_batch: float = 0.0

    @property
    def archived_at(self) -> str:
        return self.started.isoformat(timespec="seconds")

    @property
    def today(self) -> str:
        return self.started.date().isoformat()


def _entry(order: OrderState, data_key: str, archived_at: str) -> ArchivedEntry:
    return ArchivedEntry(order.key, order.version, data_key, order.profile_id, order.order_id, archived_at)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _read_manifest(body: bytes | None) -> Manifest | None:
    if body is None:
        return None
    try:
        return Manifest.from_bytes(body)
    except ValueError:
        return None  # rewritten from the object


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ArchiveObjectCorrupt | ArchiveObjectMissing | ArchiveLeaseLost):
        return f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)  # botocore's ClientError: keep the error code only
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return type(exc).__name__ + (f" ({code})" if code else "")


# -- restore ------------------------------------------------------------------------------------
@dataclass(slots=True)
class RestoreReport:
    restored: list[str] = field(default_factory=list)  # order keys put back into the hot table
    already_hot: list[str] = field(default_factory=list)  # a live (or newer) order is in the hot table
    not_found: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # archive objects failing their manifest

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "restored": self.restored,
            "already_hot": self.already_hot,
            "not_found": self.not_found,
            "unreadable": self.unreadable,
        }


class RestoreOrders:
    """Bring archived orders back into the hot table; the archive keeps its copy, and the hot
    order keeps pointing to it, so archiving it again uploads nothing unless it changed. A
    restored order stays hot for `hold` before the archiver takes it again."""

    def __init__(
        self,
        orders: OrderStore,
        store: ArchiveStore,
        hold: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._store = store
        self._hold = hold
        self._clock = clock

    def by_order(self, order_id: str, source: str | None = None, dt: str | None = None) -> RestoreReport:
        """By id: the stub says where the copy is (any source unless one is given). With `dt`,
        the manifests of that day are searched instead (for an order whose stub is gone)."""
        report = RestoreReport()
        if dt is not None:
            found = self._restore_partition(
                dt,
                lambda key: split_order_key(key)[1] == order_id and source in (None, split_order_key(key)[0]),
                report,
            )
            if not found:
                report.not_found.append(order_key(source, order_id) if source else order_id)
            return report
        keys = [order_key(source, order_id)] if source else self._orders.archived_keys(order_id)
        stored = self._orders.load(keys)
        for key in keys:
            item = stored.get(key)
            if item is not None and item.live:
                report.already_hot.append(key)
            elif item is None or item.archived_object is None:
                report.not_found.append(key)
            else:
                rows = self._rows(item.archived_object, report)
                row = next((r for r in rows if row_key(r) == key), None)
                if row is None:
                    report.not_found.append(key)
                else:
                    self._put_back(row, item.archived_object, report)
        if not keys:
            report.not_found.append(order_id)
        return report

    def by_date(self, dt: str, source: str | None = None) -> RestoreReport:
        """Every archived order of a day (of one source, if given)."""
        report = RestoreReport()
        self._restore_partition(dt, lambda key: source in (None, split_order_key(key)[0]), report)
        return report

    def _restore_partition(self, dt: str, wanted: Callable[[str], bool], report: RestoreReport) -> int:
        found = 0
        for key in self._store.keys(manifest_prefix(dt)):
            data_key = data_key_of_manifest(key)
            for row in self._rows(data_key, report):
                if wanted(row_key(row)):
                    found += 1
                    self._put_back(row, data_key, report)
        return found

    def _rows(self, data_key: str, report: RestoreReport) -> list[dict[str, Any]]:
        body = self._store.get(data_key)
        manifest = _read_manifest(self._store.get(manifest_key(data_key)))
        if body is None or manifest is None or not manifest.matches(body):
            report.unreadable.append(data_key)
            return []
        try:
            return decode_rows(body)
        except ValueError:
            report.unreadable.append(data_key)
            return []

    def _put_back(self, row: Mapping[str, Any], data_key: str, report: RestoreReport) -> None:
        order = order_from_row(row)
        hold_until = (self._clock().date() + self._hold).isoformat()
        if self._orders.put_back(order, data_key, hold_until):
            report.restored.append(order.key)
        else:
            report.already_hot.append(order.key)


class ArchivedOrders:
    """What the timeline says about a profile's archived orders."""

    def __init__(self, orders: OrderStore) -> None:
        self._orders = orders

    def notice(self, profile_ids: Sequence[str]) -> dict[str, Any] | None:
        """None when no order of these profiles (a profile and those merged into it) is archived."""
        dates = [d for pid in profile_ids if (d := self._orders.newest_archived_order_date(pid))]
        if not dates:
            return None
        return {"older_orders_archived": True, "newest_archived_order_date": max(dates)}
