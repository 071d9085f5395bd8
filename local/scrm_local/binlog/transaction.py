"""One source transaction, buffered from its first change to its commit, and the DMS records
(data and control) it becomes, numbered so that reading it again yields the same records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scrm_sync.domain.cdc import (
    RowChange,
    RowOperation,
    StreamRecord,
    control_document,
    dms_document,
    stream_record,
)

from .ddl import TableDdl

TASK_ID = "scrm-local-binlog-bridge"  # DMS names control-record partitions after its task id


@dataclass(frozen=True)
class RowImage:
    table: str
    operation: RowOperation
    row: dict[str, Any]
    before: dict[str, Any] | None
    primary_key: str  # the key values joined by "|"


@dataclass(frozen=True)
class TableChange:
    ddl: TableDdl
    statement: str


@dataclass
class Transaction:
    transaction_id: str
    gtid: str | None  # MariaDB
    changes: list[RowImage | TableChange] = field(default_factory=list)

    def entries(self, schema: str, committed_at: datetime) -> list[StreamRecord]:
        """The DMS records, numbered 1.. so a re-read transaction yields the same positions."""
        entries = []
        for record_id, change in enumerate(self.changes, start=1):
            if isinstance(change, TableChange):
                document = control_document(
                    schema,
                    change.ddl.table,
                    change.ddl.operation,
                    change.statement,
                    self.transaction_id,
                    record_id,
                    committed_at,
                    TASK_ID,
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
            entries.append(stream_record(document))
        return entries
