"""The local stand-in for AWS DMS: one MySQL/MariaDB schema's binlog, streamed into the CDC
Kinesis stream as DMS records, so the deployed path (Kinesis -> CdcFunction) runs unchanged.

- Every row of every WriteRows/UpdateRows/DeleteRows event becomes a DMS data record (the codec
  in `scrm_sync.domain.cdc`); table DDL becomes a DMS control record.
- A transaction is buffered, put to Kinesis, and only then checkpointed (MariaDB: its GTID state;
  MySQL: the binlog file/position after its commit). A crash between the two re-sends the
  transaction with identical transaction-id / transaction-record-id, which the consumer
  deduplicates, as it must for DMS (which does not deduplicate either).
- Without a checkpoint the bridge starts at the server's current position: rows that exist
  before that are the job of a full load (DMS full load in AWS, the incremental pull locally).
- The server needs what DMS needs (binlog_format=ROW, binlog_row_image=FULL) plus
  binlog_row_metadata=FULL (column names and primary keys), and a user with REPLICATION SLAVE
  and REPLICATION CLIENT.

Row values are personal data: logs name tables, counts and positions, never values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pymysql
from botocore.exceptions import BotoCoreError, ClientError
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, RowsEvent, UpdateRowsEvent, WriteRowsEvent
from scrm_sync.adapters.messaging import kinesis_batches
from scrm_sync.domain.cdc import RowChange, RowOperation, StreamRecord, dms_document, encode_dms

from .aws import Clients
from .settings import Settings
from .template import Template

log = logging.getLogger(__name__)

CDC_STREAM_LOGICAL_ID = "CdcStream"
TASK_ID = "scrm-local-binlog-bridge"  # DMS names control-record partitions after its task id

HEARTBEAT_SECONDS = 2.0  # the server sends one when idle, so the loop sees an external stop
READ_TIMEOUT_SECONDS = 30  # no byte (not even a heartbeat) for this long: the server is gone
CONNECT_TIMEOUT_SECONDS = 5
CHECKPOINT_INTERVAL_SECONDS = 5.0  # bound on re-reading transactions of other schemas
MAX_RECONNECT_DELAY_SECONDS = 30.0
MAX_PUT_DELAY_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 10.0

# Kinesis PutRecords limits.
MAX_PARTITION_KEY_CHARS = 256

StartFrom = Literal["current", "beginning"]

_OPERATIONS: dict[type[RowsEvent], RowOperation] = {
    WriteRowsEvent: "insert",
    UpdateRowsEvent: "update",
    DeleteRowsEvent: "delete",
}
# Row events plus the events that delimit transactions (MySQL needs no GTID event: a transaction
# starts where the previous one ended); the heartbeat only wakes the loop up.
_STREAMED_EVENTS = [*_OPERATIONS, MariadbGtidEvent, XidEvent, QueryEvent, HeartbeatLogEvent]


class BridgeStopped(Exception):
    """Raised inside the bridge's thread once a stop is requested (ends retries, refuses reconnects)."""


_stopping_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def _not_from_a_stopping_bridge(_record: logging.LogRecord) -> bool:
    # stop() cuts the replication socket; mysql-replication then warns that it reconnects
    return threading.current_thread() not in _stopping_threads


logging.getLogger("pymysqlreplication").addFilter(_not_from_a_stopping_bridge)


# --- the source --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MySqlSource:
    """`mysql://user:pass@host:3306/schema`: the server, and the one schema that is streamed."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    schema: str

    @classmethod
    def from_url(cls, url: str) -> MySqlSource:
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ValueError(f"expected a mysql:// URL, got scheme {parts.scheme!r}")
        schema = unquote(parts.path.lstrip("/"))
        if not schema or "/" in schema:
            raise ValueError("the URL must name one database: mysql://user:pass@host:3306/database")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            schema=schema,
        )

    @property
    def label(self) -> str:
        """host:port/schema, without credentials (logs, checkpoint)."""
        return f"{self.host}:{self.port}/{self.schema}"

    def connection_settings(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "read_timeout": READ_TIMEOUT_SECONDS,
        }


# --- positions and the checkpoint file ---------------------------------------------------------
@dataclass(frozen=True)
class BinlogPosition:
    """A transaction boundary. MariaDB: the GTID state, one `domain-server-seq` per replication
    domain ("" = before the first transaction); mysql-replication ignores file/position there.
    MySQL: the binlog file and the position after the last commit."""

    gtid: str | None = None
    log_file: str | None = None
    log_pos: int | None = None

    def after_gtid(self, gtid: str) -> BinlogPosition:
        """The state once transaction `gtid` is done (its domain's entry replaced)."""
        by_domain = {entry.split("-", 1)[0]: entry for entry in (self.gtid or "").split(",") if entry}
        by_domain[gtid.split("-", 1)[0]] = gtid
        return BinlogPosition(gtid=",".join(by_domain[d] for d in sorted(by_domain, key=int)))

    @property
    def label(self) -> str:
        if self.gtid is not None:
            return f"gtid {self.gtid or '(start of binlog)'}"
        return f"{self.log_file}:{self.log_pos}"


class CheckpointFile:
    """The last transaction boundary whose records are all in Kinesis, as JSON, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, source_label: str) -> BinlogPosition | None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if document.get("source") != source_label:
            log.warning(
                "binlog bridge: checkpoint %s belongs to %s, not %s; ignoring it",
                self.path,
                document.get("source"),
                source_label,
            )
            return None
        return BinlogPosition(document.get("gtid"), document.get("log_file"), document.get("log_pos"))

    def save(self, source_label: str, position: BinlogPosition) -> None:
        document = {
            "source": source_label,
            "gtid": position.gtid,
            "log_file": position.log_file,
            "log_pos": position.log_pos,
            "saved_at": datetime.now(UTC).isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)  # readers see the old or the new file, never half of one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


# --- Kinesis -----------------------------------------------------------------------------------
def kinesis_partition_key(value: str) -> str:
    # Kinesis caps keys at 256 characters; a digest keeps one row's changes on one shard.
    return value if len(value) <= MAX_PARTITION_KEY_CHARS else sha256(value.encode()).hexdigest()


def put_all(kinesis: Any, stream_name: str, entries: Sequence[StreamRecord], stop: threading.Event) -> None:
    """PutRecords until every entry is accepted, retrying failed ones with backoff. Order across
    retries is not kept (as with DMS): the consumer does not depend on arrival order."""
    for batch in kinesis_batches(entries):
        pending, attempt = batch, 0
        while pending:
            try:
                response = kinesis.put_records(
                    StreamName=stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in pending],
                )
                failed = [e for e, r in zip(pending, response["Records"], strict=True) if r.get("ErrorCode")]
                if failed:
                    codes = sorted({r["ErrorCode"] for r in response["Records"] if r.get("ErrorCode")})
                    log.warning(
                        "binlog bridge: %d of %d records refused (%s)", len(failed), len(pending), codes
                    )
                pending = failed
            except (ClientError, BotoCoreError) as exc:
                log.warning("binlog bridge: put_records to %s failed: %s", stream_name, exc)
            if pending:
                attempt += 1
                if stop.wait(min(0.1 * 2**attempt, MAX_PUT_DELAY_SECONDS)):
                    raise BridgeStopped


# --- values and DDL ----------------------------------------------------------------------------
def plain_value(value: Any, is_json: bool = False) -> Any:
    """A binlog value as JSON-ready data: datetimes as ISO text (naive, as stored; TIMESTAMP
    columns come as UTC), decimals as strings, bytes as UTF-8 text, JSON columns parsed."""
    if is_json and isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return plain_value(value)  # not valid JSON after all: keep the text
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _time_text(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Mapping):
        return {str(plain_value(k)): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def _time_text(value: timedelta) -> str:
    """A TIME column (mysql-replication reads it as a timedelta): [-]HH:MM:SS[.ffffff]."""
    micros = abs(value) // timedelta(microseconds=1)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{'-' if value < timedelta(0) else ''}{hours:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micro:06d}" if micro else text


@dataclass(frozen=True)
class TableDdl:
    schema: str | None  # None: the statement's default schema
    table: str
    operation: str  # a DMS control operation (create-table, add-column, ...)


_IDENTIFIER = r"(?:`(?:[^`]|``)+`|[^\s`.,;()]+)"
_QUALIFIED_NAME = re.compile(rf"\s*({_IDENTIFIER})(?:\s*\.\s*({_IDENTIFIER}))?\s*")
_RENAME_TARGET = rf"\s*TO\s+{_IDENTIFIER}(?:\s*\.\s*{_IDENTIFIER})?\s*(?:,|$)"
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_TABLE_STATEMENT = re.compile(
    r"(?P<verb>CREATE|ALTER|DROP|RENAME|TRUNCATE)\s+"
    r"(?:(?:OR\s+REPLACE|TEMPORARY|ONLINE|IGNORE)\s+)*"
    r"(?P<keyword>TABLE\s+)?"
    r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"(?P<rest>.*)",
    re.I | re.S,
)
_NOT_A_COLUMN = (
    r"(?!(?:INDEX|KEY|UNIQUE|PRIMARY|FOREIGN|CONSTRAINT|FULLTEXT|SPATIAL|PARTITION|PERIOD|SYSTEM|CHECK)\b)"
)
_ALTER_CLAUSES = (
    (re.compile(rf"ADD\s+(?:COLUMN\s+)?{_NOT_A_COLUMN}", re.I), "add-column"),
    (re.compile(rf"DROP\s+(?:COLUMN\s+)?{_NOT_A_COLUMN}", re.I), "drop-column"),
    (re.compile(r"RENAME\s+COLUMN\b", re.I), "rename-column"),
    (re.compile(r"RENAME\s+(?!(?:INDEX|KEY)\b)", re.I), "rename-table"),
    (re.compile(r"MODIFY\b", re.I), "column-type-change"),
)


def table_ddl(statement: str) -> list[TableDdl]:
    """The tables a DDL statement changes, each with the DMS control operation it amounts to;
    [] for anything that is not table DDL (CREATE DATABASE, GRANT, CREATE INDEX ...)."""
    match = _TABLE_STATEMENT.match(_COMMENT.sub(" ", statement).strip())
    if match is None:
        return []
    verb, rest = match["verb"].upper(), match["rest"]
    if match["keyword"] is None and verb != "TRUNCATE":  # only TRUNCATE may omit TABLE
        return []
    if verb == "RENAME":
        # RENAME TABLE a TO b, c TO d: the old names are the tables that change
        return [
            TableDdl(schema, table, "rename-table")
            for schema, table, _ in _names(rest, separator=_RENAME_TARGET)
        ]
    if verb == "DROP":
        return [TableDdl(schema, table, "drop-table") for schema, table, _ in _names(rest, separator=r",")]
    names = _names(rest, separator=None)
    if not names:
        return []
    schema, table, remainder = names[0]
    if verb == "CREATE":
        return [TableDdl(schema, table, "create-table")]
    if verb == "TRUNCATE":
        return [TableDdl(schema, table, "truncate-table")]
    operations = {_alter_operation(clause) for clause in _top_level_clauses(remainder)}
    return [TableDdl(schema, table, operations.pop() if len(operations) == 1 else "change-columns")]


def _names(text: str, separator: str | None) -> list[tuple[str | None, str, str]]:
    """Leading (schema, table, text after it) names; `separator` (a regex) allows a list."""
    names: list[tuple[str | None, str, str]] = []
    position = 0
    while True:
        match = _QUALIFIED_NAME.match(text, position)
        if match is None:
            return names
        first, second = _unquote(match[1]), match[2] and _unquote(match[2])
        names.append((first, second, text[match.end() :]) if second else (None, first, text[match.end() :]))
        if separator is None:
            return names
        after = re.compile(separator, re.I).match(text, match.end())
        if after is None:
            return names
        position = after.end()


def _unquote(identifier: str) -> str:
    return identifier[1:-1].replace("``", "`") if identifier.startswith("`") else identifier


def _top_level_clauses(text: str) -> list[str]:
    """ALTER TABLE's comma-separated clauses (commas inside parentheses or quotes do not count)."""
    clauses: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            clauses.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    clauses.append("".join(current).strip())
    return [c for c in clauses if c]


def _alter_operation(clause: str) -> str:
    for pattern, operation in _ALTER_CLAUSES:
        if pattern.match(clause):
            return operation
    return "change-columns"  # CHANGE, ALTER COLUMN, CONVERT TO, options...: columns may have changed


def control_document(
    schema: str, table: str, operation: str, statement: str, transaction_id: str, record_id: int, at: datetime
) -> dict[str, Any]:
    """A DMS control record (the metadata keys of `dms_document`, record-type control)."""
    moment = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "control": {"table-def": {"statement": statement}},
        "metadata": {
            "timestamp": moment,
            "record-type": "control",
            "operation": operation,
            "partition-key-type": "task-id",
            "partition-key-value": f"{TASK_ID}.{schema}.{table}",
            "schema-name": schema,
            "table-name": table,
            "transaction-id": transaction_id,
            "transaction-record-id": record_id,
            "commit-timestamp": moment,
        },
    }


# --- one transaction ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _RowImage:
    table: str
    operation: RowOperation
    row: dict[str, Any]
    before: dict[str, Any] | None
    primary_key: str  # the key values joined by "|"


@dataclass(frozen=True)
class _TableChange:
    ddl: TableDdl
    statement: str


@dataclass
class _Transaction:
    transaction_id: str
    gtid: str | None  # MariaDB
    changes: list[_RowImage | _TableChange] = field(default_factory=list)

    def entries(self, schema: str, committed_at: datetime) -> list[StreamRecord]:
        """The DMS records, numbered 1.. so a re-read transaction yields the same positions."""
        entries = []
        for record_id, change in enumerate(self.changes, start=1):
            if isinstance(change, _TableChange):
                document = control_document(
                    schema,
                    change.ddl.table,
                    change.ddl.operation,
                    change.statement,
                    self.transaction_id,
                    record_id,
                    committed_at,
                )
            else:
                row_change = RowChange(
                    schema,
                    change.table,
                    change.operation,
                    change.row,
                    change.before,
                    committed_at,
                    f"{self.transaction_id}:{record_id}",
                )
                document = dms_document(row_change, self.transaction_id, record_id, change.primary_key)
            partition = kinesis_partition_key(document["metadata"]["partition-key-value"])
            entries.append(StreamRecord(partition, encode_dms(document)))
        return entries

    def tables(self) -> list[str]:
        return sorted({c.ddl.table if isinstance(c, _TableChange) else c.table for c in self.changes})


@dataclass(frozen=True)
class _TableMetadata:
    primary_key: tuple[str, ...]
    json_columns: frozenset[str]


# --- the bridge --------------------------------------------------------------------------------
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
    ) -> None:
        self.source = MySqlSource.from_url(mysql_url)
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.checkpoints = CheckpointFile(checkpoint_path)
        self.tables = frozenset(tables)
        self.start_from = start_from
        self.heartbeat = heartbeat
        # The id this replica registers with; two replicas with one id disconnect each other.
        checkpoint_hash = zlib.crc32(str(checkpoint_path).encode())
        self.replica_server_id = replica_server_id or 1_000_000 + checkpoint_hash % 1_000_000
        self.ready = threading.Event()  # set once the start position is fixed
        self.position: BinlogPosition | None = None  # the last boundary whose records are all sent
        self._stop = threading.Event()
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections: list[pymysql.connections.Connection] = []
        self._connections_lock = threading.Lock()
        self._is_mariadb = False
        self._streaming = False  # this session has received events (resets the reconnect backoff)
        self._transaction: _Transaction | None = None
        self._metadata: dict[str, _TableMetadata] = {}
        self._saved: BinlogPosition | None = None
        self._saved_at = 0.0

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
            _stopping_threads.add(self._thread)
        self._interrupt()
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
        if self.position is not None and self.position != self._saved:
            self._save(self.position)
        log.info("binlog bridge: stopped at %s", self.position.label if self.position else "no position")

    def _connect(self, **settings: Any) -> pymysql.connections.Connection:
        """Every connection the bridge and mysql-replication open, so stop() can interrupt them."""
        if self._stop.is_set():
            raise BridgeStopped  # also ends mysql-replication's own reconnect after stop()
        if "db" in settings:  # mysql-replication still uses pymysql's deprecated name
            settings["database"] = settings.pop("db")
        connection = pymysql.connect(**settings)
        with self._connections_lock:
            self._connections.append(connection)
        if self._stop.is_set():  # stop() ran while we connected: its interrupt missed this one
            connection.close()
            raise BridgeStopped
        return connection

    def _interrupt(self) -> None:
        # Closing a pymysql connection from another thread blocks while its reader is blocked;
        # shutting the socket down wakes the blocked read at once (mysql-replication then tries
        # to reconnect, which _connect refuses).
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # --- one connected session ---------------------------------------------------------------
    def _stream(self, stop: threading.Event) -> None:
        with self._connections_lock:
            self._connections.clear()
        control = self._connect(**self.source.connection_settings(), autocommit=True)
        reader: BinLogStreamReader | None = None
        try:
            self._is_mariadb = "mariadb" in control.get_server_info().lower()
            if self.position is None:
                self.position = self._start_position(control)
            self._transaction = None
            self._metadata.clear()
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
                self._handle(event, reader, control, stop)
        finally:
            if reader is not None:
                with contextlib.suppress(pymysql.err.Error, OSError):
                    reader.close()
            with contextlib.suppress(pymysql.err.Error, OSError):
                control.close()

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
        self,
        event: Any,
        reader: BinLogStreamReader,
        control: pymysql.connections.Connection,
        stop: threading.Event,
    ) -> None:
        if isinstance(event, MariadbGtidEvent):
            if self._transaction is not None and self._transaction.changes:
                # mysql-replication reconnected mid-transaction and restarts from the last
                # boundary (auto_position): the transaction is read again in full.
                log.info("binlog bridge: re-reading transaction %s", self._transaction.transaction_id)
            self._transaction = _Transaction(event.gtid, event.gtid)
        elif isinstance(event, RowsEvent):
            self._add_rows(event, control)
        elif isinstance(event, XidEvent):
            self._commit(event.timestamp, reader, stop)
        elif isinstance(event, QueryEvent):
            statement = event.query.strip()
            keyword = statement.split(None, 1)[0].upper() if statement else ""
            if keyword in ("BEGIN", "SAVEPOINT", "XA") or statement.upper().startswith("ROLLBACK TO"):
                return
            if keyword not in ("COMMIT", "ROLLBACK"):  # DDL (an implicit commit) or another statement
                self._add_ddl(statement, _text(event.schema))
            # ROLLBACK is logged only when non-transactional changes stay: they happened
            self._commit(event.timestamp, reader, stop)

    def _current(self) -> _Transaction:
        if self._transaction is None:
            # MySQL: a transaction is named after the boundary it starts at (file:pos)
            assert self.position is not None
            start = f"{self.position.log_file}:{self.position.log_pos}"
            self._transaction = _Transaction(start, None)
        return self._transaction

    def _add_rows(self, event: RowsEvent, control: pymysql.connections.Connection) -> None:
        operation = _OPERATIONS[type(event)]
        metadata = self._table_metadata(control, event)
        transaction = self._current()
        for row in event.rows:
            if operation == "update":
                after = self._plain_row(row["after_values"], metadata)
                before: dict[str, Any] | None = self._plain_row(row["before_values"], metadata)
            else:
                after, before = self._plain_row(row["values"], metadata), None
            key = "|".join(str(after.get(column)) for column in metadata.primary_key)
            transaction.changes.append(_RowImage(event.table, operation, after, before, key))

    def _add_ddl(self, statement: str, default_schema: str) -> None:
        for ddl in table_ddl(statement):
            schema = ddl.schema or default_schema
            if schema != self.source.schema or (self.tables and ddl.table not in self.tables):
                continue
            self._metadata.pop(ddl.table, None)
            self._current().changes.append(_TableChange(ddl, statement))
            log.info("binlog bridge: %s on %s.%s", ddl.operation, schema, ddl.table)

    def _commit(self, timestamp: int, reader: BinLogStreamReader, stop: threading.Event) -> None:
        transaction, self._transaction = self._transaction, None
        assert self.position is not None
        if self._is_mariadb:
            end = (
                self.position.after_gtid(transaction.gtid)
                if transaction and transaction.gtid
                else self.position
            )
        else:
            end = BinlogPosition(log_file=reader.log_file, log_pos=reader.log_pos)
        if transaction is not None and transaction.changes:
            entries = transaction.entries(self.source.schema, datetime.fromtimestamp(timestamp, UTC))
            put_all(self.kinesis, self.stream_name, entries, stop)
            log.debug(
                "binlog bridge: transaction %s: %d records (%s) sent",
                transaction.transaction_id,
                len(entries),
                ", ".join(transaction.tables()),
            )
            self._save(end)
        elif time.monotonic() - self._saved_at > CHECKPOINT_INTERVAL_SECONDS:
            self._save(end)
        self.position = end
        if self._is_mariadb:
            reader.auto_position = end.gtid  # where mysql-replication's own reconnect resumes

    def _save(self, position: BinlogPosition) -> None:
        self.checkpoints.save(self.source.label, position)
        self._saved, self._saved_at = position, time.monotonic()

    # --- table metadata ----------------------------------------------------------------------
    def _table_metadata(self, control: pymysql.connections.Connection, event: RowsEvent) -> _TableMetadata:
        cached = self._metadata.get(event.table)
        if cached is None:
            cached = self._metadata[event.table] = self._read_table_metadata(control, event.table)
        # The binlog's own primary key (binlog_row_metadata=FULL) describes the row as written.
        binlog_key = event.primary_key
        if binlog_key:
            key = (binlog_key,) if isinstance(binlog_key, str) else tuple(binlog_key)
            if key != cached.primary_key:
                return _TableMetadata(key, cached.json_columns)
        return cached

    def _read_table_metadata(self, control: pymysql.connections.Connection, table: str) -> _TableMetadata:
        """The primary key and the JSON columns (MariaDB's JSON is LONGTEXT with a json_valid
        check), read once per table and again after DDL on it."""
        schema = self.source.schema
        with control.cursor() as cursor:
            cursor.execute(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                (schema, table),
            )
            primary_key = tuple(str(row[0]) for row in cursor.fetchall())
            cursor.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND TABLE_NAME = %s AND DATA_TYPE = 'json'",
                (schema, table),
            )
            json_columns = {str(row[0]) for row in cursor.fetchall()}
            if self._is_mariadb:
                cursor.execute(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                    "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND LEVEL = 'Column'",
                    (schema, table),
                )
                for (clause,) in cursor.fetchall():
                    checked = re.fullmatch(r"json_valid\(`((?:[^`]|``)+)`\)", str(clause))
                    if checked:
                        json_columns.add(checked[1].replace("``", "`"))
        return _TableMetadata(primary_key, frozenset(json_columns))

    @staticmethod
    def _plain_row(values: Mapping[str, Any], metadata: _TableMetadata) -> dict[str, Any]:
        return {
            column: plain_value(value, column in metadata.json_columns) for column, value in values.items()
        }


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


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
        clients("kinesis"),
        template.resolver.resource(CDC_STREAM_LOGICAL_ID).name,
        settings.project_root / settings.cdc_checkpoint,
        tables=settings.cdc_tables,
    )
