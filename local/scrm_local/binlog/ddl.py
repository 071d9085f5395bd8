"""Which tables a DDL statement changes, and the DMS control operation each change amounts to
(create-table, add-column, rename-table ...): enough of MySQL's DDL grammar for that, no more."""

from __future__ import annotations

import re
from dataclasses import dataclass


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
