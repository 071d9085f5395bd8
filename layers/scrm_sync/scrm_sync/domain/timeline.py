"""Pages of a customer's timeline across the profiles merged into it.

Entries are ordered newest first by their sort key (`<occurred_at>#<kind>#<source>#<event id>`,
comparable across profiles); a page's cursor is the sort key of its last entry, and the next page
holds the entries strictly before it, so a page never repeats or skips an entry however the
profiles' entries interleave. An entry stored under two merged profiles shows once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

_HIDDEN = frozenset({"profile_id", "sk"})
MAX_CURSOR_LENGTH = 1024


class InvalidCursor(ValueError):
    """The cursor was not made by a timeline page."""


def timeline_page_of(
    entries_by_key: Mapping[str, Mapping[str, Any]], limit: int, more_stored: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """The newest `limit` entries and the sort key the next page starts before (None: no more).
    `more_stored`: a profile's read stopped at the page size, so older entries may exist."""
    ordered = sorted(entries_by_key, reverse=True)
    page = ordered[:limit]
    before = page[-1] if page and (more_stored or len(ordered) > limit) else None
    return [{k: v for k, v in entries_by_key[key].items() if k not in _HIDDEN} for key in page], before


def encode_cursor(before: str | None) -> str | None:
    return base64.urlsafe_b64encode(before.encode()).decode().rstrip("=") if before is not None else None


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is too long")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API made") from None
    if "#" not in text:
        raise InvalidCursor("cursor is not one this API made")
    return text
