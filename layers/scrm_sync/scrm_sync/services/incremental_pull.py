"""The scheduled incremental pull: for each configured table, read the rows changed since its
watermark page by page (domain/incremental_pull.py plans the pages), write each page to the CDC
stream as DMS records, and only then advance the watermark, with a condition on its version.

Pulled rows thus take the same path as binlog changes (CdcFunction -> table mappings -> sync
core). If the stream fails, the watermark stays at the last page fully sent and the next run
re-reads from there; if two runs overlap, the one whose conditional update loses stops (what it
sent are duplicates with the same transaction ids, deduplicated downstream).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ..domain.incremental_pull import PullConfigError, PullTable, TableRun, Watermark, pulled_record
from .ports import ChangeStream, RowSource, StreamWriteFailed, WatermarkConflict, WatermarkStore

StopReason = Literal["caught_up", "max_rows", "deadline", "conflict", "stream_failed", "error", "not_run"]


@dataclass(slots=True)
class TableReport:
    table: str
    rows_read: int = 0
    rows_sent: int = 0
    rows_reread: int = 0  # of rows_read: re-read from the overlap window
    pages: int = 0
    bytes_read: int = 0
    caught_up: bool = False
    overlap_truncated: bool = False
    stopped: StopReason = "not_run"
    error: str | None = None  # the exception type and message, never row values
    watermark: Watermark | None = None  # as stored at the end of the run

    def as_log(self) -> dict[str, object]:
        """For logs and the handler's response: counts and positions, no row values."""
        return {
            "table": self.table,
            "rows_read": self.rows_read,
            "rows_sent": self.rows_sent,
            "rows_reread": self.rows_reread,
            "pages": self.pages,
            "bytes_read": self.bytes_read,
            "caught_up": self.caught_up,
            "overlap_truncated": self.overlap_truncated,
            "stopped": self.stopped,
            "error": self.error,
            "watermark_last_modified": self.watermark.last_modified.isoformat() if self.watermark else None,
        }


@dataclass(slots=True)
class PullReport:
    tables: list[TableReport] = field(default_factory=list)

    @property
    def failed(self) -> list[TableReport]:
        return [t for t in self.tables if t.stopped in ("error", "stream_failed")]


class IncrementalPull:
    def __init__(
        self,
        source: RowSource,
        stream: ChangeStream,
        watermarks: WatermarkStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timer: Callable[[], float] = time.monotonic,
        reserve_seconds: float = 10.0,
    ) -> None:
        self._source = source
        self._stream = stream
        self._watermarks = watermarks
        self._clock = clock
        self._timer = timer
        # Stop when less than this (or twice the slowest page so far) is left before the deadline.
        self._reserve = reserve_seconds

    def run(self, tables: Sequence[PullTable], remaining_seconds: Callable[[], float]) -> PullReport:
        """Pull every table in turn until each has caught up, reached its row bound, or the
        deadline (`remaining_seconds()` left) is near. A lost watermark race or a failing stream
        ends the run; an error in one table (a wrong column name) moves on to the next."""
        report = PullReport([TableReport(t.table) for t in tables])
        slowest = [0.0]
        try:
            for table, table_report in zip(tables, report.tables, strict=True):
                try:
                    self._pull_table(table, table_report, remaining_seconds, slowest)
                except WatermarkConflict as exc:
                    table_report.stopped, table_report.error = "conflict", _describe(exc)
                    break
                except StreamWriteFailed as exc:
                    table_report.stopped, table_report.error = "stream_failed", _describe(exc)
                    break
                except Exception as exc:  # the source or its configuration: the next table may be fine
                    table_report.stopped, table_report.error = "error", _describe(exc)
                    self._source.close()  # a failed query may leave the connection unusable
                if table_report.stopped == "deadline":
                    break
        finally:
            self._source.close()
        return report

    def _pull_table(
        self,
        table: PullTable,
        report: TableReport,
        remaining_seconds: Callable[[], float],
        slowest: list[float],
    ) -> None:
        stored = self._watermarks.load(table.table)
        version = stored.version if stored else 0
        plan = TableRun(table, stored.watermark if stored else None)
        report.watermark = plan.watermark
        while (query := plan.next_query()) is not None:
            if remaining_seconds() < max(self._reserve, 2 * slowest[0]):
                report.stopped = "deadline"
                return
            started = self._timer()
            page = self._source.fetch(query)
            step = plan.page_read(query, page.rows)
            report.pages += 1
            report.rows_read += len(page.rows)
            report.rows_reread += step.reread
            report.bytes_read += page.bytes_read
            if page.rows:
                built_at = self._clock()
                self._stream.put([pulled_record(table, row, built_at) for row in page.rows])
                report.rows_sent += len(page.rows)
            if step.advance_to is not None:
                version = self._watermarks.advance(table.table, step.advance_to, version)
                report.watermark = step.advance_to
            report.overlap_truncated = plan.overlap_truncated
            slowest[0] = max(slowest[0], self._timer() - started)
        report.caught_up = plan.caught_up
        report.stopped = "caught_up" if plan.caught_up else "max_rows"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PullConfigError | StreamWriteFailed | WatermarkConflict):
        return f"{type(exc).__name__}: {exc}"
    # Driver errors can quote the statement; keep the type and the server's error code only.
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return f"{type(exc).__name__}" + (f" ({code})" if code is not None else "")
