"""Group commit: the records of consecutive transactions sent in as few PutRecords calls as
Kinesis' limits allow, and the checkpoint written after the last transaction all of whose
records are in Kinesis.

The reader hands over whole transactions (`add`); a sender thread of its own sends as soon as a
full PutRecords call is collected (500 records or 5 MB), once the oldest unsent record has waited
`linger` seconds, or when the session closes. A transaction may straddle two calls: the
checkpoint never moves into it, only past it once its last record is accepted, so a crash between
a PutRecords and its checkpoint re-sends exactly the transactions after the checkpoint (the
consumer deduplicates them by transaction id and record id, as it must for DMS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scrm_sync.adapters.messaging import (
    KINESIS_MAX_RECORDS,
    KINESIS_MAX_REQUEST_BYTES,
    kinesis_batches,
)
from scrm_sync.domain.cdc import StreamRecord

from .checkpoint import BinlogPosition
from .stopping import BridgeStopped

log = logging.getLogger(__name__)

LINGER_SECONDS = 0.1  # how long a record may wait for others to share its PutRecords call
# Without records to send, a new position (transactions of other schemas) is saved this often:
# it only bounds how much of the binlog a restart reads again.
IDLE_CHECKPOINT_SECONDS = 5.0
# The reader waits while this much is unsent, so a slow stream bounds memory (a larger single
# transaction is still taken whole: the reader buffers it anyway).
MAX_UNSENT_CALLS = 4


@dataclass(frozen=True)
class _Boundary:
    """The end of a transaction: `records_through` counts every record added up to it."""

    records_through: int
    position: BinlogPosition
    added_at: float


class GroupCommit:
    """One session's sender. `send` puts one batch (within PutRecords' limits) until every record
    is accepted; `save` writes the checkpoint. Both run on the sender thread."""

    def __init__(
        self,
        send: Callable[[list[StreamRecord]], None],
        save: Callable[[BinlogPosition], None],
        start: BinlogPosition,
        saved: BinlogPosition | None,
        linger: float = LINGER_SECONDS,
        idle_checkpoint: float = IDLE_CHECKPOINT_SECONDS,
    ) -> None:
        self._send = send
        self._save = save
        self._linger = linger
        self._idle_checkpoint = idle_checkpoint
        self.position = start  # the last transaction boundary all of whose records are sent
        self.failure: BaseException | None = None  # what ended the sender thread early
        self._saved = saved
        self._saved_at = time.monotonic()
        self._changed = threading.Condition()
        self._unsent: list[StreamRecord] = []
        self._unsent_bytes = 0
        self._boundaries: deque[_Boundary] = deque()  # of added transactions not yet all sent
        self._added = self._sent = 0  # records, counted since the session began
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="scrm-binlog-group-commit", daemon=True)
        self._thread.start()

    # --- the reader's side ---------------------------------------------------------------------
    def add(self, records: Sequence[StreamRecord], end: BinlogPosition) -> None:
        """A whole transaction's records (none for one that touched nothing streamed) and the
        boundary after it. Waits while too much is unsent; raises what ended the sender."""
        size = sum(len(r.data) + len(r.partition_key.encode()) for r in records)
        with self._changed:
            while self.failure is None and (
                len(self._unsent) >= MAX_UNSENT_CALLS * KINESIS_MAX_RECORDS
                or self._unsent_bytes >= MAX_UNSENT_CALLS * KINESIS_MAX_REQUEST_BYTES
            ):
                self._changed.wait()
            self.raise_failure()
            idle = not self._unsent
            self._unsent.extend(records)
            self._unsent_bytes += size
            self._added += len(records)
            self._boundaries.append(_Boundary(self._added, end, time.monotonic()))
            self._advance()
            # The sender only needs waking when it waits for something this changes: nothing was
            # unsent (it waits for records or to checkpoint), or a PutRecords call is now full.
            # Otherwise it waits for the oldest unsent record's linger, which this does not move.
            if idle or self._full():
                self._changed.notify_all()

    def raise_failure(self) -> None:
        """Raise what ended the sender thread, if anything did (the reader calls it per event)."""
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        """Send everything added (unless the sender failed), checkpoint it, end the thread. A crash
        of the sender (anything but an Exception) is raised; an error only leaves the unsent
        transactions to the next session, which reads them again from `position`."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        failure = self.failure
        if failure is not None and not isinstance(failure, Exception):
            raise failure
        if failure is not None and not isinstance(failure, BridgeStopped):
            log.warning("binlog bridge: records after %s not sent (%s)", self.position.label, failure)

    # --- the sender thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch, to_save = self._next_work()
                if not batch and to_save is None:
                    return
                if batch:
                    self._send(batch)
                    to_save = self._sent_batch(batch)
                if to_save is not None:
                    self._save(to_save)
                    with self._changed:
                        self._saved, self._saved_at = to_save, time.monotonic()
        except BaseException as exc:  # handed to the reader, which raises it
            with self._changed:
                self.failure = exc
                self._changed.notify_all()

    def _next_work(self) -> tuple[list[StreamRecord], BinlogPosition | None]:
        """Waits for a batch to send or a position to save; ([], None) once closed and done."""
        with self._changed:
            while True:
                now = time.monotonic()
                if self._unsent:
                    oldest = self._boundaries[0].added_at  # the first boundary not all sent
                    if self._full() or self._closing or now >= oldest + self._linger:
                        return next(kinesis_batches(self._unsent)), None
                    timeout: float | None = oldest + self._linger - now
                elif self.position != self._saved:
                    if self._closing or now >= self._saved_at + self._idle_checkpoint:
                        return [], self.position
                    timeout = self._saved_at + self._idle_checkpoint - now
                elif self._closing:
                    return [], None
                else:
                    timeout = None
                self._changed.wait(timeout)

    def _full(self) -> bool:
        """Enough is unsent for a full PutRecords call."""
        return len(self._unsent) >= KINESIS_MAX_RECORDS or self._unsent_bytes >= KINESIS_MAX_REQUEST_BYTES

    def _sent_batch(self, batch: list[StreamRecord]) -> BinlogPosition | None:
        """Drops a sent batch; the position to checkpoint if a transaction is now all sent."""
        with self._changed:
            del self._unsent[: len(batch)]
            self._unsent_bytes -= sum(len(r.data) + len(r.partition_key.encode()) for r in batch)
            self._sent += len(batch)
            before = self.position
            self._advance()
            self._changed.notify_all()
            return self.position if self.position != before else None

    def _advance(self) -> None:
        """Moves `position` past every transaction whose records are all sent."""
        while self._boundaries and self._boundaries[0].records_through <= self._sent:
            self.position = self._boundaries.popleft().position
