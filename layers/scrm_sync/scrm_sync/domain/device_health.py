"""Device health in the cloud: the edge's score documents (`scrm.device_health/1`, written by
scrm_edge.score), each device's state, and what a score means for the customer who owns it.

- A score is validated at the edge of the cloud like any input (every error names its field).
- Its ISO zone is derived again here from its velocity with the cloud's zone table (the same
  `scrm_edge.zones` code and data the gateways run), so a gateway with an old or edited table
  cannot hide a zone D; a disagreement is counted.
- The device's state moves only forward in window time (an older or repeated window changes
  nothing). A new zone is confirmed after `confirm_windows` consecutive windows in it, except an
  escalation to D, which is confirmed at once: a flapping boundary does not flood the timeline.
- A confirmed zone change is a timeline entry (an `interaction` of kind `device_health`) on the
  profile the device id is linked to; entering C or D, or escalating C -> D, also asks the service
  team (kind `device_service_needed`), at most once per `service_cooldown` for the same zone.
The events name the device by its `device_id` identifier: a registration event (any canonical
event naming the device id and the owner's identifiers) links it to the owner's profile, and
entries written before the registration join that profile when it links.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from scrm_edge.score import DEVICE_ID, FAULTS, SCHEMA, ZONES, format_time
from scrm_edge.zones import UnknownMachineClass, ZoneTable

from .events import AttributeName, CanonicalEvent, Rfc3339Time, StorableFloat

SOURCE = "iot"  # the canonical events' source
DEVICE_IDENTIFIER = "device_id"
MAX_SCORES_PER_REQUEST = 500  # one Kinesis PutRecords request
SERVICE_ZONES = frozenset({"C", "D"})
ZONE_MEANING = {  # ISO 10816-3's zone descriptions, for people reading the timeline
    "A": "as new",
    "B": "acceptable for unrestricted long-term operation",
    "C": "not acceptable for long-term operation: plan maintenance",
    "D": "vibration severe enough to damage the machine",
}
Zone = Literal["A", "B", "C", "D"]
assert tuple(ZONE_MEANING) == ZONES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FaultHintIn(_Model):
    fault: Literal["imbalance", "misalignment", "looseness", "bearing_outer_race", "bearing_inner_race"]
    confidence: float = Field(ge=0, le=1)
    evidence: Annotated[str, StringConstraints(max_length=512)]


assert set(FaultHintIn.model_fields["fault"].annotation.__args__) == set(FAULTS)  # type: ignore[union-attr]


class DeviceHealthReport(_Model):
    """One window's score as the edge sends it (the wire format of scrm_edge.score)."""

    schema_: Literal["scrm.device_health/1"] = Field(alias="schema")
    device_id: Annotated[str, StringConstraints(pattern=DEVICE_ID.pattern)]
    window_start: Rfc3339Time
    window_seconds: float = Field(gt=0, le=3600)
    sample_rate_hz: float = Field(ge=100, le=200_000)
    readings: int = Field(ge=1, le=100_000_000)
    machine_class: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    zone: Zone
    score: int = Field(ge=0, le=100)
    features: dict[AttributeName, StorableFloat] = Field(max_length=64)
    hints: list[FaultHintIn] = Field(default_factory=list, max_length=len(FAULTS))

    @field_validator("features")
    @classmethod
    def _has_velocity(cls, features: dict[str, float]) -> dict[str, float]:
        velocity = features.get("velocity_rms_mm_s")
        if velocity is None or velocity < 0:
            raise ValueError(
                "velocity_rms_mm_s (the r.m.s. velocity the zone is judged by) is required, >= 0"
            )
        return features

    @property
    def velocity_rms_mm_s(self) -> float:
        return self.features["velocity_rms_mm_s"]

    @property
    def window_key(self) -> str:
        """The window's start as stored and compared: RFC 3339, UTC, milliseconds."""
        return format_time(self.window_start)


assert DeviceHealthReport.model_fields["schema_"].annotation.__args__ == (SCHEMA,)  # type: ignore[union-attr]


def cloud_zone(report: DeviceHealthReport, zones: ZoneTable) -> Zone:
    """The zone of the report's velocity by the cloud's table (raises UnknownMachineClass)."""
    return cast(Zone, zones.zone(report.machine_class, report.velocity_rms_mm_s))


def machine_class_error(report: DeviceHealthReport, zones: ZoneTable) -> str | None:
    try:
        zones.boundaries(report.machine_class)
    except UnknownMachineClass as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class ZonePolicy:
    confirm_windows: int = 3  # consecutive windows before a zone change is believed
    service_cooldown: timedelta = timedelta(hours=24)  # one service request per zone per this


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the cloud knows of one device: its confirmed zone and the latest window applied."""

    device_id: str
    window_start: str  # RFC 3339 UTC ms of the latest window applied (text order = time order)
    zone: Zone  # confirmed
    score: int  # of the latest window
    pending_zone: Zone | None = None  # another zone the latest consecutive windows were in
    pending_windows: int = 0
    service_zone: Zone | None = None  # the zone of the last service request, and when
    service_requested_at: str | None = None


@dataclass(frozen=True, slots=True)
class Advance:
    state: DeviceState
    zone_change: tuple[Zone | None, Zone] | None = None  # (from, to) when a zone is confirmed
    service_needed: bool = False


def advance(
    state: DeviceState | None, report: DeviceHealthReport, zone: Zone, policy: ZonePolicy
) -> Advance | None:
    """The device's next state after `report` (judged `zone`), or None when the report is not
    newer than what was applied (a repeat or a late window changes nothing)."""
    window = report.window_key
    if state is None:
        first = DeviceState(report.device_id, window, zone, report.score)
        return _with_service(Advance(first, zone_change=(None, zone)), None, report, policy)
    if window <= state.window_start:
        return None
    moved = replace(state, window_start=window, score=report.score)
    if zone == state.zone:
        return Advance(replace(moved, pending_zone=None, pending_windows=0))
    seen = state.pending_windows + 1 if state.pending_zone == zone else 1
    if seen < policy.confirm_windows and zone != "D":
        return Advance(replace(moved, pending_zone=zone, pending_windows=seen))
    confirmed = replace(moved, zone=zone, pending_zone=None, pending_windows=0)
    return _with_service(Advance(confirmed, zone_change=(state.zone, zone)), state, report, policy)


def _with_service(
    result: Advance, before: DeviceState | None, report: DeviceHealthReport, policy: ZonePolicy
) -> Advance:
    zone = result.state.zone
    if zone not in SERVICE_ZONES:
        return result
    previous = before.zone if before is not None else None
    escalated = previous is None or previous not in SERVICE_ZONES or ZONES.index(zone) > ZONES.index(previous)
    if not escalated:
        return result
    last = before.service_requested_at if before is not None else None
    same_zone_recently = (
        before is not None
        and before.service_zone == zone
        and last is not None
        and datetime.fromisoformat(report.window_key) - datetime.fromisoformat(last) < policy.service_cooldown
    )
    if same_zone_recently:
        return result
    state = replace(result.state, service_zone=zone, service_requested_at=report.window_key)
    return replace(result, state=state, service_needed=True)


def _summary(report: DeviceHealthReport, zone: Zone) -> str:
    hints = "; ".join(f"{h.fault}: {h.evidence}" for h in report.hints) or "no fault hints"
    return (
        f"{report.device_id}: zone {zone} ({ZONE_MEANING[zone]}), health score {report.score}, "
        f"velocity {report.velocity_rms_mm_s:.2f} mm/s r.m.s. ({report.machine_class}); {hints}"
    )[:8192]


def health_events(report: DeviceHealthReport, result: Advance) -> list[CanonicalEvent]:
    """The canonical events a state change means for the device's owner (none when the zone
    stays). Their ids derive from (device, window): a redelivered score repeats them exactly."""
    if result.zone_change is None:
        return []
    before, zone = result.zone_change
    common: dict[str, Any] = {
        "source": SOURCE,
        "type": "interaction",
        "occurred_at": report.window_start,
        "identifiers": [{"type": DEVICE_IDENTIFIER, "value": report.device_id}],
    }
    metrics = {"score": float(report.score), "velocity_rms_mm_s": report.velocity_rms_mm_s}
    change = "first health score" if before is None else f"zone {before} -> {zone}"
    events = [
        CanonicalEvent.model_validate(
            {
                **common,
                "event_id": f"device-health:{report.device_id}:{report.window_key}",
                "interaction": {
                    "kind": "device_health",
                    "content": f"{change}. {_summary(report, zone)}"[:8192],
                    "channel_ref": report.device_id,
                    "metrics": metrics,
                },
            }
        )
    ]
    if result.service_needed:
        events.append(
            CanonicalEvent.model_validate(
                {
                    **common,
                    "event_id": f"device-service:{report.device_id}:{report.window_key}",
                    "interaction": {
                        "kind": "device_service_needed",
                        "content": f"Service visit needed. {_summary(report, zone)}",
                        "channel_ref": report.device_id,
                        "metrics": metrics,
                    },
                }
            )
        )
    return events


def score_item_fields(report: DeviceHealthReport, zone: Zone) -> dict[str, Any]:
    """What is kept of one score (the device's history): the report, with the cloud's zone."""
    return {
        "device_id": report.device_id,
        "window_start": report.window_key,
        "window_seconds": report.window_seconds,
        "sample_rate_hz": report.sample_rate_hz,
        "readings": report.readings,
        "machine_class": report.machine_class,
        "zone": zone,
        "edge_zone": report.zone,
        "score": report.score,
        "features": dict(report.features),
        "hints": [hint.model_dump() for hint in report.hints],
    }
