"""Reading untrusted platform payloads: JSON without NaN/Infinity or deep nesting, tolerant text
and time fields, bounded delivery ids. Every reading error becomes MalformedPush (a 400), never
a 5xx."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from ..domain.untrusted_json import parse_json
from .base import MalformedPush

READ_ERRORS = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError)
MAX_ID_LENGTH = 200


def loads(text: str | bytes) -> Any:
    """JSON as every untrusted body is read (domain/untrusted_json.py): NaN, Infinity and
    nesting deeper than the cap raise UnreadableJson, a ValueError."""
    return parse_json(text)


def load_json(body: bytes) -> Any:
    try:
        return loads(body.decode("utf-8-sig"))
    except READ_ERRORS as exc:
        raise MalformedPush(f"body is not JSON: {type(exc).__name__}") from exc


def load_object(body: bytes) -> dict[str, Any]:
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise MalformedPush("body is not a JSON object")
    return payload


def text(value: Any) -> str | None:
    """A non-empty string from a string or integer field; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    stripped = str(value).strip()
    return stripped or None


def unix_time(value: Any) -> datetime | None:
    """Unix seconds (or milliseconds, as some events send) as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int | float) or value <= 0:
        return None
    seconds = value / 1000 if value > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def bounded_id(value: str, hashed_prefix: str = "sha256-") -> str:
    """Delivery ids become event ids: keep them short enough for the canonical model (a longer one
    becomes `hashed_prefix` + its sha256). These ids are idempotency keys of events already
    stored, so a channel's prefix never changes: "sha256:" for WeChat/WeCom, "sha256-" otherwise."""
    if len(value) <= MAX_ID_LENGTH:
        return value
    return hashed_prefix + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def body_id(body: bytes, suffix: str = "") -> str:
    """When a push carries no id at all, its bytes identify it (platform retries are identical)."""
    return f"body-{hashlib.sha256(body).hexdigest()}{suffix}"
