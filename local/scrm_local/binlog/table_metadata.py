"""What turning a table's row images into DMS records needs beyond the binlog: its primary key
and its JSON columns, read from information_schema once per table and again after DDL on it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pymysql
from pymysqlreplication.row_event import RowsEvent


@dataclass(frozen=True)
class TableMetadata:
    primary_key: tuple[str, ...]
    json_columns: frozenset[str]


class TableMetadataCache:
    """The metadata of the tables of `schema` seen so far in one session."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._tables: dict[str, TableMetadata] = {}

    def clear(self) -> None:
        self._tables.clear()

    def forget(self, table: str) -> None:
        """DDL changed `table`: read its metadata again when it is next needed."""
        self._tables.pop(table, None)

    def for_event(
        self, control: pymysql.connections.Connection, event: RowsEvent, is_mariadb: bool
    ) -> TableMetadata:
        cached = self._tables.get(event.table)
        if cached is None:
            cached = self._tables[event.table] = read_table_metadata(
                control, self.schema, event.table, is_mariadb
            )
        # The binlog's own primary key (binlog_row_metadata=FULL) describes the row as written.
        binlog_key = event.primary_key
        if binlog_key:
            key = (binlog_key,) if isinstance(binlog_key, str) else tuple(binlog_key)
            if key != cached.primary_key:
                return TableMetadata(key, cached.json_columns)
        return cached


def read_table_metadata(
    control: pymysql.connections.Connection, schema: str, table: str, is_mariadb: bool
) -> TableMetadata:
    """The primary key and the JSON columns (MariaDB's JSON is LONGTEXT with a json_valid check)."""
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
        if is_mariadb:
            cursor.execute(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND LEVEL = 'Column'",
                (schema, table),
            )
            for (clause,) in cursor.fetchall():
                checked = re.fullmatch(r"json_valid\(`((?:[^`]|``)+)`\)", str(clause))
                if checked:
                    json_columns.add(checked[1].replace("``", "`"))
    return TableMetadata(primary_key, frozenset(json_columns))
