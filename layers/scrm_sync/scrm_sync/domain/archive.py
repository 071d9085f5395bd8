"""The order archive's format, pure: rows, gzip JSON Lines objects, manifests, object keys and
the streaming assembly of batches.

Layout (Hive style, so Athena reads `dt` as a partition column):
    orders/dt=YYYY-MM-DD/part-<run>-<seq>.jsonl.gz          one batch of orders of that day
    manifests/orders/dt=YYYY-MM-DD/part-<run>-<seq>.json    its manifest, outside the table's
                                                            location so Athena never reads it
A batch holds orders of one day only. The object is a single gzip member of one JSON object per
line; amounts are JSON numbers with their exact decimal value.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .orders import OrderState, order_fields, order_key

DATA_PREFIX = "orders/"
MANIFEST_PREFIX = "manifests/orders/"
FORMAT = "jsonl.gz/v1"
_NUMERIC_LINE_FIELDS = ("quantity", "price", "amount")


# -- rows ---------------------------------------------------------------------------------------
def archive_row(order: OrderState, archived_at: str) -> dict[str, Any]:
    """The archived form of an order (the Athena table's columns; `dt` comes from the path)."""
    return {
        **order_fields(order),
        "order_date": order.order_date,
        "last_event_at": order.occurred_at,
        "last_event_id": order.event_id,
        "version": order.version,
        "archived_at": archived_at,
    }


def row_key(row: Mapping[str, Any]) -> str:
    return order_key(str(row["source"]), str(row["order_id"]))


def order_from_row(row: Mapping[str, Any]) -> OrderState:
    return OrderState(
        source=str(row["source"]),
        order_id=str(row["order_id"]),
        profile_id=str(row["profile_id"]),
        status=str(row["status"]),
        total=_decimal(row.get("total")),
        currency=str(row["currency"]),
        created_at=row.get("created_at"),
        order_date=str(row["order_date"]),
        lines=tuple(
            {k: (_decimal(v) if k in _NUMERIC_LINE_FIELDS else v) for k, v in line.items() if v is not None}
            for line in row.get("lines") or ()
        ),
        occurred_at=str(row["last_event_at"]),
        event_id=str(row["last_event_id"]),
        version=str(row["version"]),
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _json_number(value: object) -> object:
    """Decimals as JSON numbers when a float prints their exact value (every realistic amount),
    else as strings: never a silently rounded amount."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_row(row: Mapping[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_number).encode() + b"\n"


def decode_rows(body: bytes) -> list[dict[str, Any]]:
    """Rows of an archive object (raises ValueError on a damaged one: gzip checks its CRC)."""
    try:
        text = gzip.decompress(body).decode()
        # split on "\n" only, as Athena does: str.splitlines() would also cut at U+2028 or U+0085
        return [json.loads(line, parse_float=Decimal) for line in text.split("\n") if line]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a readable archive object: {type(exc).__name__}") from exc


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    writer = GzipJsonLines()
    for row in rows:
        writer.add(row)
    return writer.finish()


class GzipJsonLines:
    """Compresses rows as they come, so a batch holds compressed bytes only. The gzip header
    carries no timestamp: the same rows always give the same bytes (and sha256)."""

    def __init__(self, level: int = 6) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
        self._chunks: list[bytes] = []
        self.raw_bytes = 0

    def add(self, row: Mapping[str, Any]) -> None:
        line = encode_row(row)
        self.raw_bytes += len(line)
        chunk = self._compressor.compress(line)
        if chunk:
            self._chunks.append(chunk)

    def finish(self) -> bytes:
        self._chunks.append(self._compressor.flush())
        return b"".join(self._chunks)


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- keys ---------------------------------------------------------------------------------------
def partition_prefix(dt: str) -> str:
    return f"{DATA_PREFIX}dt={dt}/"


def manifest_prefix(dt: str) -> str:
    return f"{MANIFEST_PREFIX}dt={dt}/"


def object_key(dt: str, batch_name: str) -> str:
    return f"{partition_prefix(dt)}{batch_name}.jsonl.gz"


def manifest_key(data_key: str) -> str:
    if not (data_key.startswith(DATA_PREFIX) and data_key.endswith(".jsonl.gz")):
        raise ValueError(f"not an archive object key: {data_key}")
    return MANIFEST_PREFIX + data_key[len(DATA_PREFIX) : -len(".jsonl.gz")] + ".json"


def data_key_of_manifest(key: str) -> str:
    return DATA_PREFIX + key[len(MANIFEST_PREFIX) : -len(".json")] + ".jsonl.gz"


def partition_of(data_key: str) -> str:
    """The day of an archive object key ("orders/dt=2026-05-01/part-....jsonl.gz" -> "2026-05-01")."""
    folder = data_key[len(DATA_PREFIX) :].split("/", 1)[0]
    if not folder.startswith("dt="):
        raise ValueError(f"not an archive object key: {data_key}")
    return folder[3:]


def batch_name(run_id: str, sequence: int) -> str:
    """Unique per batch; recorded in the checkpoint before anything is uploaded."""
    return f"part-{run_id}-{sequence:05d}"


# -- manifests ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Manifest:
    object_key: str
    dt: str
    rows: int
    sha256: str  # hex digest of the object's bytes
    size: int
    order_keys: tuple[str, ...]
    written_at: str
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "object_key": self.object_key,
                "dt": self.dt,
                "rows": self.rows,
                "sha256": self.sha256,
                "size": self.size,
                "format": self.format,
                "written_at": self.written_at,
                "order_keys": list(self.order_keys),
            },
            ensure_ascii=False,
            indent=None,
        ).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Manifest:
        try:
            doc = json.loads(body)
            return cls(
                object_key=str(doc["object_key"]),
                dt=str(doc["dt"]),
                rows=int(doc["rows"]),
                sha256=str(doc["sha256"]),
                size=int(doc["size"]),
                order_keys=tuple(str(k) for k in doc["order_keys"]),
                written_at=str(doc["written_at"]),
                format=str(doc.get("format", FORMAT)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a readable manifest: {type(exc).__name__}") from exc

    def matches(self, body: bytes) -> bool:
        return len(body) == self.size and sha256_hex(body) == self.sha256


def manifest_for(data_key: str, dt: str, body: bytes, keys: Sequence[str], written_at: str) -> Manifest:
    return Manifest(data_key, dt, len(keys), sha256_hex(body), len(body), tuple(keys), written_at)


# -- the checkpoint's record of the batch being written ------------------------------------------
@dataclass(frozen=True, slots=True)
class InFlightBatch:
    """Written before a batch's first upload and cleared once the archive object holds exactly
    the orders whose hot copies point to it; a run that finds one finishes it first."""

    object_key: str
    dt: str


# -- streaming batch assembly -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchMember:
    key: str
    version: str
    profile_id: str
    order_id: str


@dataclass(slots=True)
class OpenBatch:
    dt: str
    writer: GzipJsonLines = field(default_factory=GzipJsonLines)
    members: list[BatchMember] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SealedBatch:
    dt: str
    body: bytes
    members: tuple[BatchMember, ...]


class BatchAssembler:
    """Orders in, batches out: a batch holds orders of one day, at most `max_orders` of them and
    about `max_raw_bytes` of uncompressed JSON; memory is one open batch, however many orders pass.
    Feed orders sorted by day (the age index gives them so) to get few, full objects per day."""

    def __init__(self, max_orders: int, max_raw_bytes: int, archived_at: str) -> None:
        if max_orders < 1 or max_raw_bytes < 1:
            raise ValueError("batch limits must be positive")
        self._max_orders = max_orders
        self._max_raw_bytes = max_raw_bytes
        self._archived_at = archived_at
        self._open: OpenBatch | None = None

    def add(self, order: OrderState) -> SealedBatch | None:
        """Add an order; returns the batch it closed (the open one was full, or of another day)."""
        sealed = None
        current = self._open
        if current is not None and (
            current.dt != order.order_date
            or len(current.members) >= self._max_orders
            or current.writer.raw_bytes >= self._max_raw_bytes
        ):
            sealed = self.seal()
        if self._open is None:
            self._open = OpenBatch(order.order_date)
        self._open.writer.add(archive_row(order, self._archived_at))
        self._open.members.append(BatchMember(order.key, order.version, order.profile_id, order.order_id))
        return sealed

    def seal(self) -> SealedBatch | None:
        if self._open is None:
            return None
        batch = SealedBatch(self._open.dt, self._open.writer.finish(), tuple(self._open.members))
        self._open = None
        return batch


def assemble(
    orders: Iterable[OrderState], max_orders: int, max_raw_bytes: int, archived_at: str
) -> Iterator[SealedBatch]:
    """All batches of a stream of orders (the assembler as a generator)."""
    assembler = BatchAssembler(max_orders, max_raw_bytes, archived_at)
    for order in orders:
        sealed = assembler.add(order)
        if sealed is not None:
            yield sealed
    last = assembler.seal()
    if last is not None:
        yield last
