"""The binlog bridge itself: the local stand-in for AWS DMS that streams one MySQL/MariaDB
schema's binlog into the CDC Kinesis stream (its lifecycle, the reconnect loop, and the
handling of each binlog event up to the checkpointed commit), and its wiring into the local stack.

- Every row of every WriteRows/UpdateRows/DeleteRows event becomes a DMS data record (the codec
  in `scrm_sync.domain.cdc`); table DDL becomes a DMS control record.
- A transaction is buffered until its commit, then handed to the group commit (`group_commit`),
  which sends the records of many transactions in one PutRecords call (up to its limits, or once
  a record has waited `linger`) and only then checkpoints the boundary after the last transaction
  all of whose records are sent (MariaDB: its GTID state; MySQL: the binlog file/position after
  its commit). A crash between the two re-sends those transactions with identical
  transaction-id / transaction-record-id, which the consumer deduplicates, as it must for DMS
  (which does not deduplicate either). Stopping sends what is collected and checkpoints it.
- Without a checkpoint the bridge starts at the server's current position: rows that exist
  before that are the job of a full load (DMS full load in AWS, the incremental pull locally).
- The server needs what DMS needs (binlog_format=ROW, binlog_row_image=FULL) plus
  binlog_row_metadata=FULL (column names and primary keys), and a user with REPLICATION SLAVE
  and REPLICATION CLIENT.

Row values are personal data: logs name tables, counts and positions, never values.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, RowsEvent, UpdateRowsEvent, WriteRowsEvent
from scrm_sync.domain.cdc import RowOperation

from ..aws import Clients
from ..settings import Settings
from ..template import Template
from .checkpoint import BinlogPosition, CheckpointFile
from .ddl import table_ddl
from .group_commit import LINGER_SECONDS, GroupCommit
from .kinesis_sender import put_all_records
from .source import MySqlSource
from .stopping import BridgeStopped, InterruptibleConnections, silence_reconnect_warnings
from .table_metadata import TableMetadataCache
from .transaction import RowImage, TableChange, Transaction
from .values import plain_row, utf8_text

log = logging.getLogger(__name__)

CDC_STREAM_LOGICAL_ID = "CdcStream"

HEARTBEAT_SECONDS = 2.0  # the server sends one when idle, so the loop sees an external stop
MAX_RECONNECT_DELAY_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

StartFrom = Literal["current", "beginning"]

_OPERATIONS: dict[type[RowsEvent], RowOperation] = {
    WriteRowsEvent: "insert",
    UpdateRowsEvent: "update",
    DeleteRowsEvent: "delete",
}
# Row events plus the events that delimit transactions (MySQL needs no GTID event: a transaction
# starts where the previous one ended); the heartbeat only wakes the loop up.
_STREAMED_EVENTS = [*_OPERATIONS, MariadbGtidEvent, XidEvent, QueryEvent, HeartbeatLogEvent]


class BinlogBridge:
    """Streams `mysql_url`'s schema (optionally only `tables`) into `stream_name`."""

    def __init__(
        self,
        mysql_url: str,
        kinesis: Any,
        stream_name: str,
        checkpoint_path: Path,
        tables: Sequence[str] = (),
        start_from: StartFrom = "current",
        replica_server_id: int | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.source = MySqlSource.from_url(mysql_url)
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.checkpoints = CheckpointFile(checkpoint_path)
        self.tables = frozenset(tables)
        self.start_from = start_from
        self.heartbeat = heartbeat
        self.linger = linger
        # The id this replica registers with; two replicas with one id disconnect each other.
        checkpoint_hash = zlib.crc32(str(checkpoint_path).encode())
        self.replica_server_id = replica_server_id or 1_000_000 + checkpoint_hash % 1_000_000
        self.ready = threading.Event()  # set once the start position is fixed
        # The last transaction boundary read (its records sent or handed to the group commit);
        # between sessions, the last one whose records are all sent, where the next one resumes.
        self.position: BinlogPosition | None = None
        self._stop = threading.Event()
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections = InterruptibleConnections()
        self._is_mariadb = False
        self._streaming = False  # this session has received events (resets the reconnect backoff)
        self._transaction: Transaction | None = None
        self._table_metadata = TableMetadataCache(self.source.schema)
        self._commits: GroupCommit | None = None  # the session's sender
        self._saved: BinlogPosition | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Run in a daemon thread until stop()."""
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop_requested,), name="scrm-binlog-bridge", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the thread start() began; returns once it has ended (or after `timeout`)."""
        self._stop_requested.set()
        if self._thread is not None:
            silence_reconnect_warnings(self._thread)
        self._connections.interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("binlog bridge: did not stop within %.0f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self, stop: threading.Event) -> None:
        """Stream until `stop` is set (seen within `heartbeat` seconds; at once through stop()),
        reconnecting with backoff whenever the server goes away."""
        self._stop = stop
        failures = 0
        while not stop.is_set():
            self._streaming = False
            try:
                self._stream(stop)
            except BridgeStopped:
                break
            except Exception as exc:
                if stop.is_set():
                    break
                failures = 1 if self._streaming else failures + 1
                delay = min(0.5 * 2**failures, MAX_RECONNECT_DELAY_SECONDS)
                if isinstance(exc, pymysql.err.OperationalError | ConnectionError):
                    log.warning(
                        "binlog bridge: lost %s (%s); reconnecting in %.1f s", self.source.label, exc, delay
                    )
                else:
                    log.exception(
                        "binlog bridge: streaming %s failed; retrying in %.1f s", self.source.label, delay
                    )
                stop.wait(delay)
        log.info("binlog bridge: stopped at %s", self.position.label if self.position else "no position")

    def _connect(self, **settings: Any) -> pymysql.connections.Connection:
        """Every connection the bridge and mysql-replication open, so stop() can interrupt them."""
        return self._connections.connect(self._stop, **settings)

    # --- one connected session ---------------------------------------------------------------
    def _stream(self, stop: threading.Event) -> None:
        self._connections.forget()
        control = self._connect(**self.source.connection_settings(), autocommit=True)
        reader: BinLogStreamReader | None = None
        commits: GroupCommit | None = None
        try:
            self._is_mariadb = "mariadb" in control.get_server_info().lower()
            if self.position is None:
                self.position = self._start_position(control)
            self._transaction = None
            commits = self._commits = GroupCommit(
                lambda batch: put_all_records(self.kinesis, self.stream_name, batch, stop),
                self._save,
                start=self.position,
                saved=self._saved,
                linger=self.linger,
            )
            self._table_metadata.clear()
            reader = self._reader(self.position)
            log.info(
                "binlog bridge: streaming %s (%s) from %s into Kinesis stream %s",
                self.source.label,
                "MariaDB" if self._is_mariadb else "MySQL",
                self.position.label,
                self.stream_name,
            )
            self.ready.set()
            while not stop.is_set():
                event = reader.fetchone()
                if event is None:  # only when the server ends the dump
                    raise ConnectionError("the server ended the binlog stream")
                self._streaming = True
                commits.raise_failure()
                self._handle(event, reader, control)
        finally:
            if reader is not None:
                with contextlib.suppress(pymysql.err.Error, OSError):
                    reader.close()
            with contextlib.suppress(pymysql.err.Error, OSError):
                control.close()
            if commits is not None:
                try:
                    commits.close()  # sends what the session collected
                finally:
                    self.position = commits.position  # the next session resumes after what is sent

    def _start_position(self, control: pymysql.connections.Connection) -> BinlogPosition:
        saved = self.checkpoints.load(self.source.label)
        if saved is not None and (saved.gtid is not None) == self._is_mariadb:
            self._saved = saved
            return saved
        with control.cursor() as cursor:
            if self._is_mariadb:
                if self.start_from == "beginning":
                    return BinlogPosition(gtid="")
                cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
                position = BinlogPosition(gtid=str(cursor.fetchone()[0]))
            elif self.start_from == "beginning":
                cursor.execute("SHOW BINARY LOGS")
                position = BinlogPosition(log_file=str(cursor.fetchone()[0]), log_pos=4)
            else:
                try:
                    cursor.execute("SHOW BINARY LOG STATUS")  # MySQL 8.4 and later
                except pymysql.err.ProgrammingError:
                    cursor.execute("SHOW MASTER STATUS")
                row = cursor.fetchone()
                if row is None:
                    raise RuntimeError(f"{self.source.label} has no binlog (start it with --log-bin)")
                position = BinlogPosition(log_file=str(row[0]), log_pos=int(row[1]))
        # Saved now, so changes committed while the bridge is down are streamed after a restart.
        self._save(position)
        return position

    def _reader(self, position: BinlogPosition) -> BinLogStreamReader:
        where: dict[str, Any] = (
            {"auto_position": position.gtid}
            if self._is_mariadb
            else {"log_file": position.log_file, "log_pos": position.log_pos}
        )
        return BinLogStreamReader(
            connection_settings=self.source.connection_settings(),
            server_id=self.replica_server_id,
            blocking=True,
            resume_stream=True,
            only_events=_STREAMED_EVENTS,
            only_schemas=[self.source.schema],
            only_tables=sorted(self.tables) or None,
            is_mariadb=self._is_mariadb,
            slave_heartbeat=self.heartbeat,
            pymysql_wrapper=self._connect,
            enable_logging=False,
            **where,
        )

    # --- events ------------------------------------------------------------------------------
    def _handle(
        self, event: Any, reader: BinLogStreamReader, control: pymysql.connections.Connection
    ) -> None:
        if isinstance(event, MariadbGtidEvent):
            if self._transaction is not None and self._transaction.changes:
                # mysql-replication reconnected mid-transaction and restarts from the last
                # boundary (auto_position): the transaction is read again in full.
                log.info("binlog bridge: re-reading transaction %s", self._transaction.transaction_id)
            self._transaction = Transaction(event.gtid, event.gtid)
        elif isinstance(event, RowsEvent):
            self._add_rows(event, control)
        elif isinstance(event, XidEvent):
            self._commit(event.timestamp, reader)
        elif isinstance(event, QueryEvent):
            statement = event.query.strip()
            keyword = statement.split(None, 1)[0].upper() if statement else ""
            if keyword in ("BEGIN", "SAVEPOINT", "XA") or statement.upper().startswith("ROLLBACK TO"):
                return
            if keyword not in ("COMMIT", "ROLLBACK"):  # DDL (an implicit commit) or another statement
                self._add_ddl(statement, utf8_text(event.schema))
            # ROLLBACK is logged only when non-transactional changes stay: they happened
            self._commit(event.timestamp, reader)

    def _current(self) -> Transaction:
        if self._transaction is None:
            # MySQL: a transaction is named after the boundary it starts at (file:pos)
            assert self.position is not None
            start = f"{self.position.log_file}:{self.position.log_pos}"
            self._transaction = Transaction(start, None)
        return self._transaction

    def _add_rows(self, event: RowsEvent, control: pymysql.connections.Connection) -> None:
        operation = _OPERATIONS[type(event)]
        metadata = self._table_metadata.for_event(control, event, self._is_mariadb)
        changes = self._current().changes
        table, json_columns, primary_key = event.table, metadata.json_columns, metadata.primary_key
        (single_key,) = primary_key if len(primary_key) == 1 else (None,)
        for row in event.rows:
            if operation == "update":
                after = plain_row(row["after_values"], json_columns)
                before: dict[str, Any] | None = plain_row(row["before_values"], json_columns)
            else:
                after, before = plain_row(row["values"], json_columns), None
            if single_key is not None:
                key = str(after.get(single_key))
            else:
                key = "|".join(str(after.get(column)) for column in primary_key)
            changes.append(RowImage(table, operation, after, before, key))

    def _add_ddl(self, statement: str, default_schema: str) -> None:
        for ddl in table_ddl(statement):
            schema = ddl.schema or default_schema
            if schema != self.source.schema or (self.tables and ddl.table not in self.tables):
                continue
            self._table_metadata.forget(ddl.table)
            self._current().changes.append(TableChange(ddl, statement))
            log.info("binlog bridge: %s on %s.%s", ddl.operation, schema, ddl.table)

    def _commit(self, timestamp: int, reader: BinLogStreamReader) -> None:
        transaction, self._transaction = self._transaction, None
        assert self.position is not None and self._commits is not None
        if self._is_mariadb:
            end = (
                self.position.after_gtid(transaction.gtid)
                if transaction and transaction.gtid
                else self.position
            )
        else:
            end = BinlogPosition(log_file=reader.log_file, log_pos=reader.log_pos)
        committed_at = datetime.fromtimestamp(timestamp, UTC)
        # A transaction with nothing to send still hands over its boundary, checkpointed once
        # what precedes it is sent.
        entries = transaction.entries(self.source.schema, committed_at) if transaction is not None else []
        self._commits.add(entries, end)
        self.position = end
        if self._is_mariadb:
            reader.auto_position = end.gtid  # where mysql-replication's own reconnect resumes

    def _save(self, position: BinlogPosition) -> None:
        self.checkpoints.save(self.source.label, position)
        self._saved = position


# --- the local stack ---------------------------------------------------------------------------
def bridge_for_stack(settings: Settings, template: Template, clients: Clients) -> BinlogBridge | None:
    """The bridge `scrm local run` starts when SCRM_CDC_MYSQL_URL is set: into the template's
    CdcStream, checkpointed in SCRM_CDC_CHECKPOINT. Raises ValueError for a malformed URL."""
    if not settings.cdc_mysql_url:
        return None
    if template.resource_type(CDC_STREAM_LOGICAL_ID) != "AWS::Kinesis::Stream" or not (
        template.resolver.resource_enabled(CDC_STREAM_LOGICAL_ID)
    ):
        log.error(
            "SCRM_CDC_MYSQL_URL is set, but %s has no AWS::Kinesis::Stream %s: binlog bridge not started",
            settings.template_path.name,
            CDC_STREAM_LOGICAL_ID,
        )
        return None
    return BinlogBridge(
        settings.cdc_mysql_url,
        # kinesis_batches already keeps every PutRecords within Kinesis' limits: botocore's own
        # check of each record is the largest avoidable cost per record
        clients("kinesis", validate_parameters=False),
        template.resolver.resource(CDC_STREAM_LOGICAL_ID).name,
        settings.project_root / settings.cdc_checkpoint,
        tables=settings.cdc_tables,
    )
