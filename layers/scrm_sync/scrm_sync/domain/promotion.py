"""Promotion mode: at a sales peak the inventory lane takes smaller batches on more concurrent
executions (each stock event waits for fewer others), and the profile lane stops waiting to fill
a batch. Switched by a schedule (the promotion's start and end) or by the inventory-rate surge
alarm (ALARM -> promotion, OK -> normal); the settings of both modes are the template's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["promotion", "normal"]


@dataclass(frozen=True, slots=True)
class LaneSettings:
    """An SQS event source's knobs (None: leave as it is)."""

    batch_size: int | None = None
    batching_window_seconds: int | None = None
    maximum_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class PromotionPlan:
    inventory: dict[Mode, LaneSettings]
    profiles: dict[Mode, LaneSettings]


def mode_of(event: Any) -> Mode | None:
    """The mode an invocation asks for: a schedule's `{"mode": ...}`, or a CloudWatch alarm's
    state change delivered through SNS (ALARM: promotion; OK: normal; INSUFFICIENT_DATA: none)."""
    if isinstance(event, dict) and event.get("mode") in ("promotion", "normal"):
        return event["mode"]
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records or []:
        message = (record.get("Sns") or {}).get("Message") if isinstance(record, dict) else None
        try:
            state = json.loads(message or "").get("NewStateValue")
        except (ValueError, AttributeError):
            continue
        if state == "ALARM":
            return "promotion"
        if state == "OK":
            return "normal"
    return None
