"""Builders for canonical events used across the test suite."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_sync.domain.events import CanonicalEvent

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
_ids = itertools.count(1)


def phone(value: str) -> dict[str, Any]:
    return {"type": "phone", "value": value}


def openid(value: str, app: str = "wx-app") -> dict[str, Any]:
    return {"type": "wechat_openid", "value": value, "scope": app}


def member(value: str, program: str = "loyalty") -> dict[str, Any]:
    return {"type": "member_no", "value": value, "scope": program}


def event(
    source: str = "pos",
    *,
    at: float = 0,
    identifiers: list[dict[str, Any]] | None = None,
    attributes: dict[str, Any] | None = None,
    event_id: str | None = None,
    type: str = "profile.updated",
    **extra: Any,
) -> CanonicalEvent:
    payload: dict[str, Any] = {
        "event_id": event_id or f"{source}-{next(_ids)}",
        "source": source,
        "type": type,
        "occurred_at": (T0 + timedelta(seconds=at)).isoformat(),
        "identifiers": identifiers or [phone("13800138000")],
        "attributes": attributes or {},
        **extra,
    }
    return CanonicalEvent.model_validate(payload)


def order_event(order_id: str, *, at: float = 0, status: str = "paid", **kwargs: Any) -> CanonicalEvent:
    return event(
        type="order.created",
        at=at,
        order={"order_id": order_id, "status": status, "total": "99.50", "currency": "CNY"},
        **kwargs,
    )
