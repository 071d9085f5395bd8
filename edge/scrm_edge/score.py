"""The health score document: what the edge sends and the cloud stores, one per window.

Wire format `scrm.device_health/1` (JSON, UTF-8, compact separators):

    {"schema": "scrm.device_health/1", "device_id": "pump-0042",
     "window_start": "2026-12-03T08:00:00.000Z", "window_seconds": 10.0,
     "sample_rate_hz": 10000.0, "readings": 100000, "machine_class": "group2_rigid",
     "zone": "A", "score": 96,
     "features": {"velocity_rms_mm_s": 0.71, ...},
     "hints": [{"fault": "imbalance", "confidence": 0.8, "evidence": "..."}]}

(device_id, window_start) identifies a score: the edge may send one twice (a retry after a lost
acknowledgement), the cloud keeps it once. `window_start` is the time of the window's first
reading, UTC, millisecond precision; `readings` is how many readings the window held.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = "scrm.device_health/1"
ZONES = ("A", "B", "C", "D")
FAULTS = ("imbalance", "misalignment", "looseness", "bearing_outer_race", "bearing_inner_race")
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")  # an IoT thing name's alphabet


class InvalidScore(ValueError):
    """A score document that does not follow the wire format (the message names the field)."""


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, milliseconds: `2026-12-03T08:00:00.000Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class FaultHint:
    fault: str  # one of FAULTS
    confidence: float  # 0-1: how strongly the evidence points at the fault
    evidence: str  # human-readable: which feature, how far past its threshold

    def as_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "confidence": round(self.confidence, 3), "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class HealthScore:
    device_id: str
    window_start: datetime  # aware, UTC
    window_seconds: float
    sample_rate_hz: float
    readings: int
    machine_class: str
    zone: str  # one of ZONES
    score: int  # 0-100, 100 = as new
    features: dict[str, float] = field(default_factory=dict)
    hints: tuple[FaultHint, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """What makes a score unique: (device, window start)."""
        return (self.device_id, format_time(self.window_start))

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "device_id": self.device_id,
            "window_start": format_time(self.window_start),
            "window_seconds": self.window_seconds,
            "sample_rate_hz": self.sample_rate_hz,
            "readings": self.readings,
            "machine_class": self.machine_class,
            "zone": self.zone,
            "score": self.score,
            "features": {name: round(value, 6) for name, value in self.features.items()},
            "hints": [hint.as_dict() for hint in self.hints],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()
