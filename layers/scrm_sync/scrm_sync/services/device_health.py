"""Device health scores from edge gateways into the device's history, its state and its owner's
timeline (domain/device_health.py says what a score means).

Two ways in, one stream: gateways with Greengrass publish to IoT Core, whose topic rule writes
each score to DeviceHealthStream (partition key: the device id); gateways without it POST scores
to `/devices/health` (`DeviceHealthIntake`), which lands the request raw, validates each score,
quarantines what it refuses (every error names its field) and writes the rest to the same stream.
`DeviceHealthSync` reads the stream in order per device: it keeps each (device, window) once,
moves the device's state forward and sends the resulting timeline events to the ingest queue,
where the profile sync applies them like any canonical event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from scrm_edge.zones import UnknownMachineClass, ZoneTable

from ..domain.cdc import StreamRecord
from ..domain.device_health import (
    MAX_SCORES_PER_REQUEST,
    DeviceHealthReport,
    ZonePolicy,
    advance,
    cloud_zone,
    health_events,
    machine_class_error,
    score_item_fields,
)
from ..domain.untrusted_json import UnreadableJson, parse_json
from .ingest import BadRequest, QueueUnavailable, landing_key, quarantine, validation_errors
from .ports import ChangeStream, DeviceHealthStore, EventQueue, RawLanding


@dataclass(slots=True)
class IntakeReport:
    accepted: int
    rejected: list[dict[str, Any]]  # {"index", "field", "message"}, one per error
    raw_key: str

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected}


def report_errors(item: Any, zones: ZoneTable) -> tuple[DeviceHealthReport | None, list[dict[str, str]]]:
    """The validated report, or the errors that refuse it (each naming its field)."""
    try:
        report = DeviceHealthReport.model_validate(item)
    except ValidationError as exc:
        return None, validation_errors(exc)
    problem = machine_class_error(report, zones)
    if problem is not None:
        return None, [{"field": "machine_class", "message": problem}]
    return report, []


class DeviceHealthIntake:
    def __init__(self, stream: ChangeStream, landing: RawLanding, zones: Callable[[], ZoneTable]) -> None:
        self._stream = stream
        self._landing = landing
        self._zones = zones

    def accept(self, body: bytes, request_id: str, received_at: datetime, caller: str) -> IntakeReport:
        raw_key = landing_key("devices", received_at, request_id)
        self._landing.put(raw_key, body, {"caller": caller, "request-id": request_id})
        try:
            items = _scores_of(parse_json(body))
        except (UnreadableJson, BadRequest) as exc:
            self._quarantine(raw_key, body, str(exc))
            raise BadRequest(str(exc)) from exc
        zones = self._zones()
        records: list[StreamRecord] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            report, errors = report_errors(item, zones)
            if report is None:
                rejected += [{"index": index, **error} for error in errors]
                continue
            records.append(StreamRecord(report.device_id, json.dumps(item, separators=(",", ":")).encode()))
        if rejected:
            self._quarantine(raw_key, json.dumps(rejected, ensure_ascii=False).encode(), "rejected scores")
        if records:
            try:
                self._stream.put(records)
            except RuntimeError as exc:  # StreamWriteFailed: the gateway keeps them and retries
                raise QueueUnavailable(str(exc)) from exc
        return IntakeReport(len(records), rejected, raw_key)

    def _quarantine(self, raw_key: str, body: bytes, reason: str) -> None:
        quarantine(self._landing, raw_key, body, reason)


def _scores_of(payload: Any) -> list[Any]:
    if not (isinstance(payload, dict) and set(payload) == {"scores"}):
        raise BadRequest('body must be {"scores": [...]}')
    scores = payload["scores"]
    if not isinstance(scores, list) or not scores:
        raise BadRequest("'scores' must be a non-empty list")
    if len(scores) > MAX_SCORES_PER_REQUEST:
        raise BadRequest(f"at most {MAX_SCORES_PER_REQUEST} scores per request")
    return scores


class MalformedScore(ValueError):
    """A stream record that is not a valid score (kept in the quarantine, never retried)."""


@dataclass(slots=True)
class ScoreOutcome:
    device_id: str
    window_start: str
    zone: str = ""
    duplicate: bool = False  # this (device, window) was already kept
    late: bool = False  # older than the device's state: kept in the history, no state change
    disagreed: bool = False  # the edge judged another zone than the cloud's table
    zone_change: tuple[str | None, str] | None = None
    service_needed: bool = False
    events: list[str] = field(default_factory=list)  # event ids sent to the ingest queue


class DeviceHealthSync:
    def __init__(
        self,
        store: DeviceHealthStore,
        queue: EventQueue,
        zones: Callable[[], ZoneTable],
        retention: timedelta,
        policy: ZonePolicy | None = None,
        attempts: int = 5,
    ) -> None:
        self._store = store
        self._queue = queue
        self._zones = zones
        self._retention = retention
        self._policy = policy or ZonePolicy()
        self._attempts = attempts

    def parse(self, data: bytes) -> DeviceHealthReport:
        try:
            payload = parse_json(data)
        except UnreadableJson as exc:
            raise MalformedScore(f"not JSON: {exc}") from exc
        report, errors = report_errors(payload, self._zones())
        if report is None:
            raise MalformedScore("; ".join(f"{e['field']}: {e['message']}" for e in errors)[:500])
        return report

    def apply(self, report: DeviceHealthReport) -> ScoreOutcome:
        """Keep the score, move the device's state, send what it means. Safe to repeat: a
        redelivered record finds its score kept and its events already sent (same ids)."""
        try:
            zone = cloud_zone(report, self._zones())
        except UnknownMachineClass as exc:  # the table changed since the record was accepted
            raise MalformedScore(str(exc)) from exc
        outcome = ScoreOutcome(report.device_id, report.window_key, zone, disagreed=zone != report.zone)
        expire_at = int((report.window_start + self._retention).timestamp())
        outcome.duplicate = not self._store.record_score(score_item_fields(report, zone), expire_at)
        for _ in range(self._attempts):
            state = self._store.state(report.device_id)
            result = advance(state, report, zone, self._policy)
            if result is None:
                outcome.late = not outcome.duplicate
                return outcome
            events = health_events(report, result)
            # the events go first: if the state write is lost, a retry sends them again under the
            # same ids (dropped as duplicates); the other order could lose them
            self._send(events)
            if self._store.save_state(result.state, state.window_start if state is not None else None):
                outcome.zone_change = result.zone_change
                outcome.service_needed = result.service_needed
                outcome.events = [event.event_id for event in events]
                return outcome
        raise RuntimeError(f"device state of {report.device_id} kept moving; retrying the record")

    def _send(self, events: list[Any]) -> None:
        if not events:
            return
        failed = self._queue.send([(str(i), event.to_message()) for i, event in enumerate(events)])
        if failed:
            raise QueueUnavailable(f"{len(failed)} device health events could not be enqueued")


def outcome_counts(outcomes: list[ScoreOutcome]) -> Mapping[str, int]:
    """The metrics of a batch."""
    return {
        "DeviceScores": len(outcomes),
        "DeviceScoresDuplicate": sum(o.duplicate for o in outcomes),
        "DeviceScoresLate": sum(o.late for o in outcomes),
        "DeviceZoneDisagreements": sum(o.disagreed for o in outcomes),
        "DeviceZoneChanges": sum(o.zone_change is not None for o in outcomes),
        "DevicesNeedingService": sum(o.service_needed for o in outcomes),
    }
