"""Change data capture: one row change from a MySQL source, whichever way it was read (AWS DMS
records on Kinesis, the local binlog bridge, or the scheduled incremental pull)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

RowOperation = Literal["load", "insert", "update", "delete"]

KINESIS_MAX_PARTITION_KEY_CHARS = 256


@dataclass(frozen=True, slots=True)
class RowChange:
    schema: str
    table: str
    operation: RowOperation
    row: Mapping[str, Any]  # the row after the change; for a delete, the deleted row
    before: Mapping[str, Any] | None  # the before-image of an update, when the source sends one
    committed_at: datetime  # timezone-aware
    # What makes this change unique at its source (DMS transaction id and record id, or the
    # pulled row's content hash): the same change read twice has the same position.
    position: str

    @property
    def table_key(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True, slots=True)
class ControlChange:
    """A DDL or task control record (create/alter/drop table...): surfaced as schema drift."""

    schema: str
    table: str
    operation: str
    detail: Mapping[str, Any]
    committed_at: datetime
    position: str

    @property
    def table_key(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record for the CDC stream: DMS JSON and the partition key that keeps a row's
    changes on one shard (written by the incremental pull and the local binlog bridge)."""

    partition_key: str
    data: bytes  # the DMS JSON document, as DMS writes it to Kinesis


class MalformedChange(ValueError):
    """A record that is not a DMS message (kept for inspection, never retried)."""


_ROW_OPERATIONS = frozenset({"load", "insert", "update", "delete"})


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dms_document(
    change: RowChange,
    transaction_id: str,
    record_id: int,
    primary_key: str,
    built_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON document AWS DMS writes to Kinesis for one row change, with the task settings the
    template uses (IncludeTransactionDetails, before-image on updates). Local producers (the
    binlog bridge, the incremental pull) write the same shape, so CdcFunction reads one format."""
    committed = _utc_text(change.committed_at)
    metadata: dict[str, Any] = {
        "timestamp": committed if built_at is None else _utc_text(built_at),
        "record-type": "data",
        "operation": change.operation,
        "partition-key-type": "primary-key",
        "partition-key-value": f"{change.schema}.{change.table}.{primary_key}",
        "schema-name": change.schema,
        "table-name": change.table,
        "transaction-id": transaction_id,
        "transaction-record-id": record_id,
        "commit-timestamp": committed,
    }
    document: dict[str, Any] = {"data": dict(change.row), "metadata": metadata}
    if change.before is not None:
        document["before-image"] = dict(change.before)
    return document


def control_document(
    schema: str,
    table: str,
    operation: str,
    statement: str,
    transaction_id: str,
    record_id: int,
    committed_at: datetime,
    task_id: str,
) -> dict[str, Any]:
    """The JSON document AWS DMS writes to Kinesis for a table's DDL: a control record with the
    metadata keys of `dms_document`, record-type control, partitioned by the task id."""
    moment = _utc_text(committed_at)
    return {
        "control": {"table-def": {"statement": statement}},
        "metadata": {
            "timestamp": moment,
            "record-type": "control",
            "operation": operation,
            "partition-key-type": "task-id",
            "partition-key-value": f"{task_id}.{schema}.{table}",
            "schema-name": schema,
            "table-name": table,
            "transaction-id": transaction_id,
            "transaction-record-id": record_id,
            "commit-timestamp": moment,
        },
    }


def stream_record(document: Mapping[str, Any]) -> StreamRecord:
    """A DMS document as a CDC stream record, keyed by its partition-key-value. Kinesis caps keys
    at 256 characters; a longer one becomes its digest, which still keeps one row on one shard."""
    partition_key = str(document["metadata"]["partition-key-value"])
    if len(partition_key) > KINESIS_MAX_PARTITION_KEY_CHARS:
        partition_key = hashlib.sha256(partition_key.encode()).hexdigest()
    return StreamRecord(partition_key, encode_dms(document))


# One encoder for every record (json.dumps would build one per call with these options).
_DMS_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":"))


def encode_dms(document: Mapping[str, Any]) -> bytes:
    return _DMS_ENCODER.encode(document).encode()


def decode_dms(raw: bytes, fallback_position: str) -> RowChange | ControlChange:
    """One DMS message (the base64-decoded Kinesis data). The position that identifies the
    change is the DMS transaction id and record id, else the stream position, else the Kinesis
    sequence number (`fallback_position`): DMS does not deduplicate, the consumer must."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedChange(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        raise MalformedChange("no 'metadata' object")
    metadata: dict[str, Any] = document["metadata"]
    schema, table = metadata.get("schema-name"), metadata.get("table-name")
    operation = metadata.get("operation")
    if not isinstance(operation, str) or not isinstance(schema, str) or not isinstance(table, str):
        raise MalformedChange("metadata needs operation, schema-name and table-name")
    committed_at = _parse_time(metadata.get("commit-timestamp") or metadata.get("timestamp"))
    if "transaction-id" in metadata and "transaction-record-id" in metadata:
        position = f"{metadata['transaction-id']}:{metadata['transaction-record-id']}"
    else:
        position = str(metadata.get("stream-position") or fallback_position)
    if metadata.get("record-type") == "control":
        detail = document.get("control")
        return ControlChange(
            schema, table, operation, detail if isinstance(detail, dict) else {}, committed_at, position
        )
    if metadata.get("record-type") != "data" or operation not in _ROW_OPERATIONS:
        raise MalformedChange(f"unknown record-type/operation {metadata.get('record-type')}/{operation}")
    row = document.get("data")
    if not isinstance(row, dict):
        raise MalformedChange("data record without a 'data' object")
    before = document.get("before-image")
    return RowChange(
        schema,
        table,
        operation,  # type: ignore[arg-type]  # checked against _ROW_OPERATIONS above
        row,
        before if isinstance(before, dict) else None,
        committed_at,
        position,
    )


@functools.lru_cache(maxsize=1024)  # the records of one transaction share their commit time
def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedChange("metadata timestamp missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedChange(f"bad timestamp {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
