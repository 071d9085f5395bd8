"""The durable local buffer between scoring and sending: one SQLite file in WAL mode.

Scores wait here, oldest first, until an uplink has delivered them, so a network outage or a
restart loses nothing. A score is identified by (device_id, window_start), as in the cloud: a
second put of the same key is ignored. Delivered scores leave a tombstone (the key without the
document) so that a score produced again after a restart (a file source re-read, a simulated
source replayed) is not sent twice; the newest `keep_sent` tombstones are kept.

The pending queue is bounded by `max_pending`. When it is full the OLDEST pending scores are
dropped (and counted in `dropped`), not the new one: after a long outage the recent windows say
more about the machine's health than the old ones, and an edge that refused new scores would go
blind to a fault developing now while it still held hours of stale readings. At one score per
10 s window the default of 100,000 holds about 11.5 days.

Scores that the cloud refuses for good (a field it rejects) move to the `rejected` table, kept
for inspection and never sent again.

Thread-safe for one producer thread and one sender thread (one connection behind a lock).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from scrm_edge.score import HealthScore

ScoreKey = tuple[str, str]  # (device_id, window_start as in the wire format)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    device_id TEXT NOT NULL,
    window_start TEXT NOT NULL,       -- fixed-width RFC 3339 UTC: sorts as time does
    document BLOB,                    -- NULL once sent (a tombstone)
    sent INTEGER NOT NULL DEFAULT 0,
    stored_at REAL NOT NULL,
    PRIMARY KEY (device_id, window_start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scores_by_state_and_time ON scores (sent, window_start, device_id);
CREATE TABLE IF NOT EXISTS rejected (
    device_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    document BLOB NOT NULL,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL,
    PRIMARY KEY (device_id, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    device_id: str
    window_start: str
    document: bytes  # the score's wire JSON

    @property
    def key(self) -> ScoreKey:
        return (self.device_id, self.window_start)


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    device_id: str
    window_start: str
    document: bytes
    reason: str
    rejected_at: float


class Outbox:
    def __init__(self, path: str | Path, *, max_pending: int = 100_000, keep_sent: int = 10_000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if keep_sent < 0:
            raise ValueError("keep_sent must not be negative")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_pending = max_pending
        self.keep_sent = keep_sent
        self._lock = threading.Lock()
        # Autocommit mode; multi-statement changes open their own transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed score survives a power cut, not only a crash (one fsync per window).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- producer side ------------------------------------------------------------------------

    def put(self, score: HealthScore) -> bool:
        """Store a score to send; False if its key was already stored, sent or rejected."""
        device_id, window_start = score.key
        document = score.to_json()
        with self._lock, self._transaction():
            if self._known(device_id, window_start):
                return False
            self._db.execute(
                "INSERT INTO scores (device_id, window_start, document, sent, stored_at)"
                " VALUES (?, ?, ?, 0, ?)",
                (device_id, window_start, document, time.time()),
            )
            overflow = self._count_pending() - self.max_pending
            if overflow > 0:
                self._drop_oldest_pending(overflow)
            return True

    # -- sender side --------------------------------------------------------------------------

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Up to `limit` unsent scores, oldest window first (ties by device)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, window_start, document FROM scores WHERE sent = 0"
                " ORDER BY window_start, device_id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            OutboxEntry(device_id, window_start, bytes(document))
            for device_id, window_start, document in rows
        ]

    def acknowledge(self, keys: Iterable[ScoreKey]) -> int:
        """Mark delivered scores sent (their document is dropped, their key kept); returns how many."""
        keys = list(keys)
        if not keys:
            return 0
        with self._lock, self._transaction():
            changed = 0
            for device_id, window_start in keys:
                cursor = self._db.execute(
                    "UPDATE scores SET sent = 1, document = NULL"
                    " WHERE device_id = ? AND window_start = ? AND sent = 0",
                    (device_id, window_start),
                )
                changed += cursor.rowcount
            self._prune_tombstones()
            return changed

    def reject(self, reasons: Mapping[ScoreKey, str]) -> int:
        """Move scores the cloud refused for good to the `rejected` table; returns how many moved."""
        if not reasons:
            return 0
        now = time.time()
        with self._lock, self._transaction():
            moved = 0
            for (device_id, window_start), reason in reasons.items():
                row = self._db.execute(
                    "SELECT document FROM scores WHERE device_id = ? AND window_start = ? AND sent = 0",
                    (device_id, window_start),
                ).fetchone()
                if row is None:
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO rejected (device_id, window_start, document, reason, rejected_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (device_id, window_start, row[0], reason, now),
                )
                self._db.execute(
                    "DELETE FROM scores WHERE device_id = ? AND window_start = ?", (device_id, window_start)
                )
                moved += 1
            return moved

    # -- inspection ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """How many scores wait to be sent."""
        with self._lock:
            return self._count_pending()

    @property
    def dropped(self) -> int:
        """Unsent scores dropped because the outbox was full, since the file was created."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def rejected(self) -> list[RejectedEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, window_start, document, reason, rejected_at FROM rejected"
                " ORDER BY window_start, device_id"
            ).fetchall()
        return [RejectedEntry(d, w, bytes(doc), reason, at) for d, w, doc, reason, at in rows]

    def latest_window_start(self, device_id: str) -> str | None:
        """The newest window this outbox has seen for a device (pending, sent or rejected)."""
        with self._lock:
            row = self._db.execute(
                "SELECT max(window_start) FROM ("
                " SELECT window_start FROM scores WHERE device_id = ?"
                " UNION ALL SELECT window_start FROM rejected WHERE device_id = ?)",
                (device_id, device_id),
            ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- internals (called with the lock held) ------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _known(self, device_id: str, window_start: str) -> bool:
        for table in ("scores", "rejected"):
            row = self._db.execute(
                f"SELECT 1 FROM {table} WHERE device_id = ? AND window_start = ?",  # noqa: S608 - fixed names
                (device_id, window_start),
            ).fetchone()
            if row is not None:
                return True
        return False

    def _count_pending(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM scores WHERE sent = 0").fetchone()[0])

    def _drop_oldest_pending(self, count: int) -> None:
        self._db.execute(
            "DELETE FROM scores WHERE sent = 0 AND (window_start, device_id) IN ("
            " SELECT window_start, device_id FROM scores WHERE sent = 0"
            " ORDER BY window_start, device_id LIMIT ?)",
            (count,),
        )
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('dropped', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (count,),
        )

    def _prune_tombstones(self) -> None:
        cutoff = self._db.execute(
            "SELECT window_start, device_id FROM scores WHERE sent = 1"
            " ORDER BY window_start DESC, device_id DESC LIMIT 1 OFFSET ?",
            (self.keep_sent,),
        ).fetchone()
        if cutoff is not None:
            self._db.execute(
                "DELETE FROM scores WHERE sent = 1 AND (window_start, device_id) <= (?, ?)", cutoff
            )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")
