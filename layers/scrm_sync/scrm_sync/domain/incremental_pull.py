"""Incremental pull: read only the rows of a MySQL table changed since a watermark, for sources
without binlog access (issue 5). Pure: the table configuration, the watermark, the keyset SQL and
the plan of one run. The service does the I/O (services/incremental_pull.py).

How a run reads one table:
- The watermark is the position (last_modified, primary key...) of the last row sent. Rows are
  read in that order with keyset pagination: `WHERE (m, k...) > (last position) ORDER BY m, k...
  LIMIT n`, so many rows sharing one last_modified value are never skipped at a page boundary.
- Late commits: a transaction that set `m = T` but committed after a run read past T would be
  missed, so a run first re-reads the rows from `watermark.last_modified - overlap_seconds` up to
  the watermark itself, then continues strictly after it. Re-read rows map to the same
  transaction id downstream (the content hash, see `pulled_change`), so they are deduplicated.
  A change that commits more than `overlap_seconds` after its last_modified value is still missed:
  size the overlap to the longest write transaction of the source.
- The watermark only ever moves forward, and only to rows sent strictly after it: the re-read
  part of a run never moves it, and a run that sends nothing keeps it.
- The plan bounds a run (`max_rows_per_run`, also the bound of the re-read), so a bulk update
  larger than one run's budget, all in the overlap window, cannot stop the watermark.

Time: the last_modified column is compared in the source's own frame (naive DATETIME values,
exactly as stored; the adapter reads TIMESTAMP columns in UTC). `time_zone` only says how to turn
a row's last_modified into the timezone-aware commit time of the change.
Rows whose last_modified is NULL or a zero date are never pulled (an index range from
`1000-01-01`); the primary key must be unique and not null (the table's primary key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .cdc import RowChange, StreamRecord, dms_document, encode_dms, stream_record

# Rows older than this are not data (MySQL zero dates sort before it; NULLs never compare).
FLOOR = datetime(1000, 1, 1)
PULL_POSITION_PREFIX = "pull:"
PULLED_OPERATION: Literal["load"] = "load"

# Tables whose layout is fixed by a well-known producer (reference/tmall-jushita.md): the 聚石塔
# push service writes trades into `jdp_tb_trade`, keyed by tid, with `jdp_modified` as the time it
# last changed the row, in Beijing time. Matched on the table name, whatever the schema.
KNOWN_TABLES: dict[str, dict[str, Any]] = {
    "jdp_tb_trade": {"primary_key": ("tid",), "last_modified_column": "jdp_modified", "time_zone": "+08:00"},
}

_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]{1,64}")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


class PullConfigError(ValueError):
    """A configured table does not match the rows the source returns (a missing column...)."""


def validate_identifier(name: str) -> str:
    """A MySQL identifier this module will quote: ASCII letters, digits, `_` and `$`, not all
    digits. Anything else is refused rather than escaped."""
    if not _IDENTIFIER.fullmatch(name) or name.isdigit():
        raise ValueError(f"not a plain MySQL identifier: {name!r}")
    return name


def quote_identifier(name: str) -> str:
    return f"`{validate_identifier(name)}`"


def parse_time_zone(name: str) -> tzinfo:
    """`UTC`, a fixed offset such as `+08:00`, or an IANA name such as `Asia/Shanghai`."""
    if name.upper() in {"UTC", "Z"}:
        return UTC
    offset = _OFFSET.fullmatch(name)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta > timedelta(hours=14):
            raise ValueError(f"offset out of range: {name!r}")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


class PullTable(BaseModel):
    """One table the scheduled pull reads (the rules file's `incremental_pull` list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str  # "schema.table"
    primary_key: tuple[str, ...]  # unique, not null; default ["id"] (jdp_tb_trade: ["tid"])
    last_modified_column: str  # required, except for the known tables
    overlap_seconds: float = Field(5, ge=0, le=3600)
    batch_size: int = Field(500, ge=1, le=5000)
    max_rows_per_run: int = Field(50_000, ge=1, le=10_000_000)
    time_zone: str = "UTC"  # of naive last_modified values (jdp_tb_trade: +08:00)
    # First run only: rows last modified before this source-local time are never pulled (skip
    # history that a full load already brought). None = from the beginning.
    start_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_table_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("table"), str):
            return data
        known = KNOWN_TABLES.get(data["table"].rpartition(".")[2], {"primary_key": ("id",)})
        return {**known, **data}

    @field_validator("table")
    @classmethod
    def _schema_and_table(cls, value: str) -> str:
        schema, dot, table = value.partition(".")
        if not dot:
            raise ValueError("table must be 'schema.table'")
        validate_identifier(schema)
        validate_identifier(table)
        return value

    @field_validator("primary_key")
    @classmethod
    def _key_columns(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        if not columns:
            raise ValueError("primary_key needs at least one column")
        if len({c.lower() for c in columns}) != len(columns):
            raise ValueError("primary_key repeats a column")
        return tuple(validate_identifier(c) for c in columns)

    @field_validator("last_modified_column")
    @classmethod
    def _last_modified(cls, column: str) -> str:
        return validate_identifier(column)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, name: str) -> str:
        parse_time_zone(name)
        return name

    @field_validator("start_at")
    @classmethod
    def _source_local(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        if moment is None or moment.tzinfo is None or "time_zone" not in info.data:
            return moment
        return moment.astimezone(parse_time_zone(info.data["time_zone"])).replace(tzinfo=None)

    @model_validator(mode="after")
    def _distinct_columns(self) -> PullTable:
        if self.last_modified_column.lower() in {c.lower() for c in self.primary_key}:
            raise ValueError("last_modified_column cannot be part of the primary key")
        return self

    @property
    def schema_name(self) -> str:
        return self.table.partition(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.partition(".")[2]

    @property
    def overlap(self) -> timedelta:
        return timedelta(seconds=self.overlap_seconds)

    @property
    def zone(self) -> tzinfo:
        return parse_time_zone(self.time_zone)

    def position_of(self, row: Mapping[str, Any]) -> Watermark:
        """The row's place in pull order: (last_modified, primary key...)."""
        moment = _column(row, self.last_modified_column, self.table)
        if isinstance(moment, datetime):
            last_modified = moment.replace(tzinfo=None) if moment.tzinfo else moment
        elif isinstance(moment, date):
            last_modified = datetime(moment.year, moment.month, moment.day)
        else:
            raise PullConfigError(
                f"{self.table}.{self.last_modified_column} must be a DATETIME, TIMESTAMP or DATE column "
                f"(got {type(moment).__name__})"
            )
        key = tuple(_column(row, column, self.table) for column in self.primary_key)
        if any(part is None for part in key):
            raise PullConfigError(f"{self.table}: primary key {list(self.primary_key)} has a NULL value")
        return Watermark(last_modified, key)


def _unique_tables(tables: tuple[PullTable, ...]) -> tuple[PullTable, ...]:
    seen: set[str] = set()
    for table in tables:
        if table.table.lower() in seen:
            raise ValueError(f"incremental_pull lists {table.table!r} twice")
        seen.add(table.table.lower())
    return tables


# The type of the rules file's `incremental_pull` list.
PullTables = Annotated[tuple[PullTable, ...], AfterValidator(_unique_tables)]


def _column(row: Mapping[str, Any], column: str, table: str) -> Any:
    if column in row:
        return row[column]
    for name, value in row.items():  # MySQL column names are case-insensitive
        if name.lower() == column.lower():
            return value
    raise PullConfigError(f"{table} has no column {column!r}")


# -- watermark --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watermark:
    """The position of a row in pull order; as a watermark, the last row sent. A position with no
    key is just before every row of its time (`rewound`): the next run reads from there."""

    last_modified: datetime  # naive, in the source's frame, exactly as the column holds it
    key: tuple[Any, ...]  # primary key values, in the configured column order

    def to_document(self) -> dict[str, str]:
        return {"last_modified": self.last_modified.isoformat(), "key": encode_key(self.key)}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Watermark:
        return cls(datetime.fromisoformat(str(document["last_modified"])), decode_key(str(document["key"])))

    def rewound(self) -> Watermark:
        """Just before every row at this time, naming no row: what an erasure leaves when the
        watermark names an erased person's row (re-reading rows is harmless, and theirs are
        suppressed)."""
        return Watermark(self.last_modified - timedelta(microseconds=1), ())


def encode_key(key: Sequence[Any]) -> str:
    """Primary key values as JSON text that decodes to the same Python types (pymysql passes them
    back to MySQL as parameters, so an int stays a number and a string stays a string)."""
    return json.dumps([_tagged(value) for value in key], ensure_ascii=False, separators=(",", ":"))


def decode_key(text: str) -> tuple[Any, ...]:
    return tuple(_untagged(value) for value in json.loads(text))


def _tagged(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    raise TypeError(f"unsupported primary key value type {type(value).__name__}")


def _untagged(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    ((tag, text),) = value.items()
    if tag == "decimal":
        return Decimal(text)
    if tag == "datetime":
        return datetime.fromisoformat(text)
    if tag == "date":
        return date.fromisoformat(text)
    if tag == "bytes":
        return base64.b64decode(text)
    raise ValueError(f"unknown key tag {tag!r}")


def advance_watermark(current: Watermark | None, candidate: Watermark) -> Watermark:
    """The later of the two: a watermark never moves back. Ties on last_modified compare the keys
    when Python orders them as MySQL does (numbers); string keys follow the source's collation, so
    a candidate read strictly after `current` (the only kind the plan offers) is trusted."""
    if current is None or candidate.last_modified > current.last_modified:
        return candidate
    if candidate.last_modified < current.last_modified:
        return current
    if _numeric(candidate.key) and _numeric(current.key) and len(candidate.key) == len(current.key):
        return candidate if candidate.key > current.key else current
    return current if candidate.key == current.key else candidate


def _numeric(key: tuple[Any, ...]) -> bool:
    return all(isinstance(part, int | Decimal) and not isinstance(part, bool) for part in key)


# -- keyset query -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeysetQuery:
    """One page: rows in pull order strictly `after` a position, from `since` (inclusive), up to
    `through` (inclusive), at most `limit`."""

    table: PullTable
    after: Watermark | None
    since: datetime | None
    through: Watermark | None
    limit: int

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        """SQL with %s placeholders and its parameters: values are never put into the text.

        The leading `m >= lower` (and `m <= upper`) gives MySQL an index range on the
        last-modified column; on InnoDB a plain index on that column is enough, as secondary
        indexes carry the primary key for the ORDER BY. The lexicographic condition is spelled
        out (`m > a OR (m = a AND k > b)`) instead of a row constructor `(m, k) > (a, b)`,
        which MySQL does not turn into a range scan."""
        columns = (self.table.last_modified_column, *self.table.primary_key)
        quoted = [quote_identifier(column) for column in columns]
        lower = self.after.last_modified if self.after is not None else self.since
        conditions = [f"{quoted[0]} >= %s"]
        params: list[Any] = [max(lower, FLOOR) if lower is not None else FLOOR]
        if self.after is not None:
            text, values = _lexicographic(quoted, (self.after.last_modified, *self.after.key), ">", ">")
            conditions.append(text)
            params.extend(values)
        if self.through is not None:
            conditions.append(f"{quoted[0]} <= %s")
            params.append(self.through.last_modified)
            text, values = _lexicographic(quoted, (self.through.last_modified, *self.through.key), "<", "<=")
            conditions.append(text)
            params.extend(values)
        table = f"{quote_identifier(self.table.schema_name)}.{quote_identifier(self.table.table_name)}"
        sql = (
            f"SELECT * FROM {table} WHERE {' AND '.join(conditions)} "  # noqa: S608 - validated identifiers, %s values
            f"ORDER BY {', '.join(quoted)} LIMIT %s"
        )
        return sql, (*params, self.limit)

    def admits(self, position: Watermark) -> bool:
        """Whether a row at `position` matches this query's bounds, evaluated in Python (for
        in-memory sources whose key values order like MySQL's: numbers)."""
        place = (position.last_modified, *position.key)
        lower = self.after.last_modified if self.after is not None else self.since
        if position.last_modified < (FLOOR if lower is None else max(lower, FLOOR)):
            return False
        if self.after is not None and not place > (self.after.last_modified, *self.after.key):
            return False
        return self.through is None or place <= (self.through.last_modified, *self.through.key)


def _lexicographic(
    columns: Sequence[str], values: Sequence[Any], strict: str, last: str
) -> tuple[str, list[Any]]:
    """`(c1, c2, ..., cn) <op> (v1, ..., vn)` as nested ORs: c1 strict v1 OR (c1 = v1 AND (...
    cn last vn))."""
    columns = columns[: len(values)]  # a keyless position (a rewind) compares the time only
    text = f"{columns[-1]} {last} %s"
    params: list[Any] = [values[-1]]
    for column, value in zip(reversed(columns[:-1]), reversed(values[:-1]), strict=True):
        text = f"{column} {strict} %s OR ({column} = %s AND ({text}))"
        params = [value, value, *params]
    return f"({text})", params


# -- the plan of one table's run --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageStep:
    """What one page read means: how many rows were re-read (overlap) or new, and the watermark
    to store once the page is sent (None: keep the stored one)."""

    reread: int
    new: int
    advance_to: Watermark | None


class TableRun:
    """The reading plan of one table for one run: overlap re-read, then new rows, page by page.

    next_query() -> run it -> page_read(rows) -> send the rows -> store `advance_to` -> again,
    until next_query() returns None."""

    def __init__(self, table: PullTable, stored: Watermark | None) -> None:
        self.table = table
        self.stored = stored
        self.watermark = stored
        self.rows_reread = 0
        self.rows_new = 0
        self.caught_up = False
        self.overlap_truncated = False  # the overlap window held more rows than one run re-reads
        self._cursor: Watermark | None = None
        self._phase: Literal["reread", "new", "done"]
        if stored is not None and table.overlap_seconds > 0:
            self._phase = "reread"
            self._since: datetime | None = stored.last_modified - table.overlap
        else:
            self._phase = "new"
            self._cursor = stored
            self._since = table.start_at if stored is None else None

    @property
    def finished(self) -> bool:
        return self._phase == "done"

    def next_query(self) -> KeysetQuery | None:
        if self._phase == "reread":
            limit = min(self.table.batch_size, self.table.max_rows_per_run - self.rows_reread)
            return KeysetQuery(self.table, self._cursor, self._since, self.stored, limit)
        if self._phase == "new":
            limit = min(self.table.batch_size, self.table.max_rows_per_run - self.rows_new)
            if limit <= 0:
                self._phase = "done"
                return None
            return KeysetQuery(self.table, self._cursor, self._since, None, limit)
        return None

    def page_read(self, query: KeysetQuery, rows: Sequence[Mapping[str, Any]]) -> PageStep:
        """Account for the rows `query` returned (in pull order)."""
        last = self.table.position_of(rows[-1]) if rows else None
        if self._phase == "reread":
            self.rows_reread += len(rows)
            if len(rows) < query.limit:
                self._start_new_rows()
            elif self.rows_reread >= self.table.max_rows_per_run:
                self.overlap_truncated = True
                self._start_new_rows()
            else:
                self._cursor = last
            return PageStep(len(rows), 0, None)
        if self._phase != "new":
            raise RuntimeError("page_read after the run finished")
        self.rows_new += len(rows)
        if len(rows) < query.limit:
            self.caught_up = True
            self._phase = "done"
        if last is None:
            return PageStep(0, 0, None)
        previous = self.watermark
        self.watermark = advance_watermark(previous, last)
        self._cursor = last
        return PageStep(0, len(rows), self.watermark if self.watermark != previous else None)

    def _start_new_rows(self) -> None:
        self._phase = "new"
        self._cursor = self.stored
        self._since = None


# -- rows as DMS records ----------------------------------------------------------------------


def canonical_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with values the DMS codec can encode (TIME columns arrive as timedelta), keys
    sorted, so the same content always gives the same bytes."""
    return {name: _plain(value) for name, value in sorted(row.items())}


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        sign = "-" if value < timedelta(0) else ""
        total = abs(value)
        hours, rest = divmod(total.days * 86400 + total.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        fraction = f".{total.microseconds:06d}" if total.microseconds else ""
        return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"
    return value


def pulled_change(table: PullTable, row: Mapping[str, Any]) -> tuple[RowChange, str]:
    """A pulled row as a row change, and its DMS transaction id.

    Operation "load": like a DMS full-load row, a pulled row is the current state of the row and
    the pull cannot tell an insert from an update; the CDC mapper treats `load` like an insert
    or update of the row (an upsert). The transaction id is a hash of the table and the row's
    content, so re-reading an unchanged row (the overlap) gives the same position and is
    deduplicated downstream, while every new version of the row (a new last_modified) is new."""
    content = canonical_row(row)
    digest = hashlib.sha256(encode_dms({"table": table.table, "row": content})).hexdigest()[:24]
    transaction_id = f"{PULL_POSITION_PREFIX}{digest}"
    position = table.position_of(row)
    committed_at = position.last_modified.replace(tzinfo=table.zone).astimezone(UTC)
    change = RowChange(
        schema=table.schema_name,
        table=table.table_name,
        operation=PULLED_OPERATION,
        row=content,
        before=None,
        committed_at=committed_at,
        position=f"{transaction_id}:1",
    )
    return change, transaction_id


def pulled_record(table: PullTable, row: Mapping[str, Any], built_at: datetime) -> StreamRecord:
    change, transaction_id = pulled_change(table, row)
    key_text = ".".join(str(part) for part in table.position_of(row).key)
    return stream_record(dms_document(change, transaction_id, 1, key_text, built_at=built_at))
