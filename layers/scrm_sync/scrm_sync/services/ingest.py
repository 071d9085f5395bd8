"""Canonical event ingest (POST /events): land raw, validate each event, enqueue the valid ones.

An invalid event never blocks the valid ones in the same request; every rejection names the
field at fault; the raw request is in the landing bucket before anything is acknowledged.
Inventory events go to the inventory queue (the priority lane), everything else to the ingest
queue; an inventory event naming a location the rules do not know is rejected here. Orders from
a channel with a fulfilment location go to both (the profile records them; the lane holds stock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..domain.events import INVENTORY, MAX_EVENTS_PER_REQUEST, CanonicalEvent, needs_stock
from ..domain.profile import normalize_identifiers
from ..domain.rules import Rules
from ..domain.untrusted_json import UnreadableJson, parse_json
from .ports import EventQueue, RawLanding


class BadRequest(ValueError):
    """The request as a whole cannot be read (not JSON, nested too deep, NaN/Infinity, wrong
    shape, too many events)."""


class QueueUnavailable(RuntimeError):
    """Valid events could not be enqueued; the caller should retry (the raw request is kept)."""


@dataclass(slots=True)
class EventResult:
    index: int
    status: str  # "accepted" | "rejected"
    event_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    rejected_identifiers: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        if self.errors:
            out["errors"] = self.errors
        if self.rejected_identifiers:
            out["rejected_identifiers"] = self.rejected_identifiers
        return out


@dataclass(slots=True)
class IngestReport:
    results: list[EventResult]
    raw_key: str

    @property
    def accepted(self) -> int:
        return sum(r.status == "accepted" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": len(self.results) - self.accepted,
            "results": [r.to_dict() for r in self.results],
        }


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in error["loc"]) or "(event)", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def split_events(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "events" in payload and set(payload) == {"events"}:
        events = payload["events"]
        if not isinstance(events, list) or not events:
            raise BadRequest("'events' must be a non-empty list")
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise BadRequest(f"at most {MAX_EVENTS_PER_REQUEST} events per request")
        return events
    if isinstance(payload, dict):
        return [payload]
    raise BadRequest('body must be one event object or {"events": [...]}')


def landing_key(kind: str, received_at: datetime, request_id: str) -> str:
    """Where a request is landed raw before anything is acknowledged (`raw/<kind>/dt=<day>/...`)."""
    return f"raw/{kind}/dt={received_at:%Y-%m-%d}/{received_at:%H%M%S}-{request_id}.json"


def quarantine(landing: RawLanding, raw_key: str, body: bytes, reason: str) -> None:
    """Keep what was refused for inspection, beside the raw request (`quarantine/<kind>/...`)."""
    landing.put(raw_key.replace("raw/", "quarantine/", 1), body, {"reason": reason[:200]})


class EventIngest:
    def __init__(
        self,
        queue: EventQueue,
        landing: RawLanding,
        rules: Callable[[], Rules],
        inventory_queue: EventQueue | None = None,
    ) -> None:
        self._queue = queue
        self._landing = landing
        self._rules = rules
        self._inventory_queue = inventory_queue

    def accept(self, body: bytes, request_id: str, received_at: datetime, caller: str) -> IngestReport:
        raw_key = landing_key("events", received_at, request_id)
        self._landing.put(raw_key, body, {"caller": caller, "request-id": request_id})
        try:
            payload = parse_json(body, exact_numbers=True)
        except UnreadableJson as exc:
            self._quarantine(raw_key, body, str(exc))
            raise BadRequest(str(exc)) from exc
        try:
            items = split_events(payload)
        except BadRequest as exc:
            self._quarantine(raw_key, body, str(exc))
            raise

        rules = self._rules()
        results: list[EventResult] = []
        messages: list[tuple[str, str]] = []
        inventory_messages: list[tuple[str, str]] = []
        for index, item in enumerate(items):
            event_id = item.get("event_id") if isinstance(item, dict) else None
            result = EventResult(index, "rejected", event_id if isinstance(event_id, str) else None)
            results.append(result)
            try:
                event = CanonicalEvent.model_validate(item)
            except ValidationError as exc:
                result.errors = validation_errors(exc)
                continue
            if event.inventory is not None:
                result.errors = self._inventory_errors(event, rules)
                if not result.errors:
                    result.status = "accepted"
                    inventory_messages.append((str(index), event.to_message()))
                continue
            resolved = normalize_identifiers(event, rules)
            result.rejected_identifiers = [
                {"type": r.type, "value": r.value_hint, "reason": r.reason} for r in resolved.rejected
            ]
            unlinkable = resolved.unlinkable_reason()
            if unlinkable is not None:
                result.errors = [{"field": "identifiers", "message": unlinkable}]
                continue
            result.status = "accepted"
            messages.append((str(index), event.to_message()))
            if self._inventory_queue is not None and needs_stock(event, rules.inventory):
                inventory_messages.append((str(index), event.to_message()))

        rejected = [r.to_dict() for r in results if r.status == "rejected"]
        if rejected:
            # backslashreplace: an unpaired surrogate echoed from the request stays a JSON \u escape
            rejections = json.dumps(rejected, ensure_ascii=False).encode("utf-8", "backslashreplace")
            self._quarantine(raw_key, rejections, "rejected events")
        failed = 0
        if messages:
            failed += len(set(self._queue.send(messages)))
        if inventory_messages and self._inventory_queue is not None:
            failed += len(set(self._inventory_queue.send(inventory_messages)))
        if failed:
            raise QueueUnavailable(f"{failed} events could not be enqueued")
        return IngestReport(results, raw_key)

    def _inventory_errors(self, event: CanonicalEvent, rules: Rules) -> list[dict[str, str]]:
        if self._inventory_queue is None:
            return [{"field": "type", "message": f"{INVENTORY} events are not accepted here"}]
        assert event.inventory is not None
        unknown = set(rules.inventory.unknown_locations(event.inventory))
        return [
            {
                "field": f"inventory.{name}",
                "message": f"unknown location {value!r}: add it to the rules document's inventory.locations",
            }
            for name, value in (
                ("location", event.inventory.location),
                ("counterpart", event.inventory.counterpart),
            )
            if value is not None and value in unknown
        ]

    def _quarantine(self, raw_key: str, body: bytes, reason: str) -> None:
        quarantine(self._landing, raw_key, body, reason)
