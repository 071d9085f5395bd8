"""Binlog values as JSON-ready data, the way DMS writes them (dates and times as ISO text,
decimals as strings, JSON columns parsed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


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
        return utf8_text(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Mapping):
        return {str(plain_value(k)): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


# Values that are plain already, and the conversions of the commonest others (exact types: a
# subclass takes the general path of plain_value, which gives the same result).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
_CONVERSIONS: dict[type, Callable[[Any], Any]] = {
    datetime: datetime.isoformat,
    date: date.isoformat,
    Decimal: str,
}


def plain_row(values: Mapping[str, Any], json_columns: frozenset[str]) -> dict[str, Any]:
    """A binlog row image with every value made plain (`json_columns` parsed)."""
    row = {}
    for column, value in values.items():
        kind = value.__class__
        if column in json_columns:
            row[column] = plain_value(value, True)
        elif kind in _PLAIN_TYPES:
            row[column] = value
        else:
            convert = _CONVERSIONS.get(kind)
            row[column] = convert(value) if convert is not None else plain_value(value)
    return row


def utf8_text(value: str | bytes | bytearray) -> str:
    """Text the binlog may hand over as bytes (names, statements), undecodable bytes replaced."""
    return bytes(value).decode("utf-8", errors="replace") if isinstance(value, bytes | bytearray) else value


def _time_text(value: timedelta) -> str:
    """A TIME column (mysql-replication reads it as a timedelta): [-]HH:MM:SS[.ffffff]."""
    micros = abs(value) // timedelta(microseconds=1)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{'-' if value < timedelta(0) else ''}{hours:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micro:06d}" if micro else text
