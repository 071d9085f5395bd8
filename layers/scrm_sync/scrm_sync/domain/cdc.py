"""Change data capture: one row change from a MySQL source, whichever way it was read (AWS DMS
records on Kinesis, the local binlog bridge, or the scheduled incremental pull)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

RowOperation = Literal["load", "insert", "update", "delete"]


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
