"""Canonical events by kind, as the sync core sees them at a promotion peak."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_sync.domain.events import CanonicalEvent

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)  # 双十一
_ids = itertools.count()


def _event(
    identifiers: list[dict[str, Any]], attributes: dict[str, Any], source: str = "youzan"
) -> CanonicalEvent:
    n = next(_ids)
    return CanonicalEvent.model_validate(
        {
            "event_id": f"bench-{n}",
            "source": source,
            "type": "profile.updated",
            "occurred_at": (T0 + timedelta(milliseconds=n)).isoformat(),
            "identifiers": identifiers,
            "attributes": attributes,
        }
    )


def phone(i: int) -> dict[str, Any]:
    return {"type": "phone", "value": f"+86 139 {i // 10000:04d} {i % 10000:04d}"}


def openid(i: int) -> dict[str, Any]:
    return {"type": "wechat_openid", "value": f"oBench{i:08d}", "scope": "wx-bench"}


ATTRIBUTES = {"name": "王小明", "member_level": "gold", "city": "上海", "last_order_total": 359.0}


def new_customer(i: int) -> CanonicalEvent:
    return _event([phone(i), openid(i)], ATTRIBUTES)


def known_update(i: int) -> CanonicalEvent:
    return _event([phone(i)], {"member_level": "platinum", "city": "杭州"}, source="pos")


def merge(i: int) -> tuple[CanonicalEvent, CanonicalEvent, CanonicalEvent]:
    """Two fragments of one customer, then the event that names both."""
    a = _event([phone(i)], {"name": "王小明"}, source="pos")
    b = _event([openid(i)], {"nickname": "xm"}, source="wechat_mp")
    both = _event([phone(i), openid(i)], {"city": "上海"}, source="wecom")
    return a, b, both
