"""One window of readings -> a HealthScore: ISO zone, 0-100 score, fault hints.

Score: piecewise linear in the broadband velocity against the machine class's zone boundaries
(zone A maps 100..75, B 75..50, C 50..25, D 25..0, reaching 0 at twice the C/D boundary), so a
higher velocity never scores higher; then capped by the fault hints (SCORE_CAPS): a hint can lower
a score, never raise it. The score is floored to an integer, so each zone owns its own scores
(A 75-100, B 50-74, C 25-49, D 0-24).

Hints are rules on the features (vibration.features), after the rules of thumb in
LGDiMaggio/claude-stwinbox-diagnostics (mcp-servers/vibration-analysis-mcp/.../fault_detection.py,
envelope.py), with thresholds set so the synthetic faults in scrm_edge.signals are found across
seeds, 10 kHz and 25.6 kHz, 1 s and 10 s windows, and a healthy machine gets none (see each rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import ArrayLike

from scrm_edge.score import DEVICE_ID, FaultHint, HealthScore
from scrm_edge.vibration import bearing_frequencies, check_window, features, harmonic_feature
from scrm_edge.zones import ZoneTable

# A hint caps the score: the machine may vibrate little overall, but a diagnosed fault is never
# "as new". Bearing defects cap lowest: they progress to failure; imbalance highest: it is benign
# until it drives the velocity up (and then the zone lowers the score anyway).
SCORE_CAPS: Mapping[str, int] = {
    "bearing_outer_race": 60,
    "bearing_inner_race": 60,
    "looseness": 70,
    "misalignment": 75,
    "imbalance": 80,
}

# The wire format (HealthScore.as_dict) rounds features to 6 decimals. The zone is derived from the
# velocity as sent, so the cloud, re-deriving it from the JSON with the same table, always agrees
# (1.4049996 mm/s would otherwise be zone A here, but 1.405 -> 1.41 -> B in the cloud).
WIRE_DECIMALS = 6

# --- Shaft-harmonic rules (imbalance, misalignment, looseness) ---------------------------------
# Only when the velocity is zone B or worse: in zone A no shaft-harmonic pattern is actionable.
# Every tone must also be a real share of the overall velocity, not a noise bin: with white
# acceleration noise, the ±2 % window holds ~0.12 (1x at 30 Hz), ~0.16 (0.5x), <0.07 (3x and up)
# of the overall r.m.s., so the significance floors below sit above those.
IMBALANCE_1X_SHARE = 0.7  # 1x ≥ 0.7 × overall: the 1x carries at least half the energy
MISALIGNMENT_2X_TO_1X = 0.5  # 2x ≥ 0.5 × 1x (fault_detection.py: amp_2x > 0.5·amp_1x)
MISALIGNMENT_2X_SHARE = 0.2  # ... and 2x ≥ 0.2 × overall
LOOSENESS_HARMONICS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
LOOSENESS_HARMONIC_TO_1X = 0.2  # a harmonic counts at ≥ 0.2 × 1x ...
LOOSENESS_HARMONIC_SHARE = 0.1  # ... and ≥ 0.1 × overall
LOOSENESS_MIN_HARMONICS = 3  # "many harmonics": at least 3 of 3x-10x
LOOSENESS_SUBHARMONIC_TO_1X = 0.2  # 0.5x ≥ 0.2 × 1x ...
LOOSENESS_SUBHARMONIC_SHARE = 0.2  # ... and ≥ 0.2 × overall

# --- Bearing rules (any zone: an early defect is the classic low-velocity case) ------------------
# The envelope ratio is the peak within ±2 % of BPFO/BPFI (or twice it) over the envelope spectrum's
# median. LGDiMaggio's check_bearing_peaks takes 3 × median as "a peak is present", but the ±2 % search
# spans up to ~45 bins: on healthy synthetic windows the highest ratio is typically 3.5-4.7 and
# reached 6.05 over 920 windows (10/25.6 kHz, 1/10 s). 8 keeps clear of noise; the synthetic
# defects (scrm_edge.signals defaults) reach 50-480.
ENVELOPE_RATIO_THRESHOLD = 8.0
ENVELOPE_RATIO_CERTAIN = 4 * ENVELOPE_RATIO_THRESHOLD  # confidence reaches 1 here
# Impulsiveness must support the envelope (a smooth modulation at BPFO is no impact train): excess
# kurtosis > 1 or crest factor > 4 of the acceleration (the reference's "impulsive" and "healthy
# below ~4"), or kurtosis > 1 in the envelope band, where a strong 1x (imbalance) cannot mask the
# impacts as it does in the broadband acceleration. The crest factor is not used in the band: band-
# limited Gaussian noise peaks at ~4.4 σ over 10^5 readings.
IMPULSIVE_KURTOSIS = 1.0
IMPULSIVE_CREST_FACTOR = 4.0

RACES = (("bpfo", "bearing_outer_race"), ("bpfi", "bearing_inner_race"))


@dataclass(frozen=True, slots=True)
class MachineProfile:
    """What the analysis needs to know about the monitored machine."""

    device_id: str
    machine_class: str  # a class of the zone table, e.g. group2_rigid
    rpm: float  # shaft speed
    balls: int | None = None  # bearing geometry: all of balls, ball and pitch diameter, or none
    ball_diameter_mm: float | None = None
    pitch_diameter_mm: float | None = None
    contact_angle_deg: float = 0.0
    envelope_band_hz: tuple[float, float] | None = None  # None: fs/20 .. fs/2.5

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not DEVICE_ID.match(self.device_id):
            raise ValueError(
                f"MachineProfile.device_id must match {DEVICE_ID.pattern}, got {self.device_id!r}"
            )
        if not isinstance(self.machine_class, str) or not self.machine_class:
            raise ValueError(
                f"MachineProfile.machine_class must be a non-empty string, got {self.machine_class!r}"
            )
        if not (_is_number(self.rpm) and self.rpm > 0):
            raise ValueError(f"MachineProfile.rpm must be a positive number (shaft speed), got {self.rpm!r}")
        geometry = {
            "balls": self.balls,
            "ball_diameter_mm": self.ball_diameter_mm,
            "pitch_diameter_mm": self.pitch_diameter_mm,
        }
        given = [name for name, value in geometry.items() if value is not None]
        if given and len(given) != len(geometry):
            missing = [name for name in geometry if name not in given]
            raise ValueError(f"MachineProfile bearing geometry is incomplete: {', '.join(missing)} missing")
        if given:
            if isinstance(self.balls, bool) or not isinstance(self.balls, int) or self.balls < 1:
                raise ValueError(f"MachineProfile.balls must be a positive integer, got {self.balls!r}")
            ball, pitch = self.ball_diameter_mm, self.pitch_diameter_mm
            for name, value in (("ball_diameter_mm", ball), ("pitch_diameter_mm", pitch)):
                if not (_is_number(value) and value > 0):
                    raise ValueError(f"MachineProfile.{name} must be a positive number, got {value!r}")
            if _is_number(ball) and _is_number(pitch) and ball >= pitch:
                raise ValueError(
                    f"MachineProfile.ball_diameter_mm ({self.ball_diameter_mm}) must be below "
                    f"pitch_diameter_mm ({self.pitch_diameter_mm})"
                )
        if not (_is_number(self.contact_angle_deg) and 0 <= self.contact_angle_deg < 90):
            raise ValueError(
                "MachineProfile.contact_angle_deg must be 0 to under 90 degrees, "
                f"got {self.contact_angle_deg!r}"
            )
        band = self.envelope_band_hz
        if band is not None and not (
            isinstance(band, tuple)
            and len(band) == 2
            and all(_is_number(edge) for edge in band)
            and 0 < band[0] < band[1]
        ):
            raise ValueError(
                f"MachineProfile.envelope_band_hz must be (low, high) with 0 < low < high, got {band!r}"
            )

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MachineProfile:
        """A profile from configuration (JSON); unknown keys are refused, so a typo does not pass silently."""
        if not isinstance(doc, Mapping):
            raise ValueError("MachineProfile: must be an object")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"MachineProfile: unknown fields {unknown}; known: {sorted(known)}")
        missing = [name for name in ("device_id", "machine_class", "rpm") if name not in doc]
        if missing:
            raise ValueError(f"MachineProfile: required fields missing: {', '.join(missing)}")
        values = dict(doc)
        band = values.get("envelope_band_hz")
        if isinstance(band, list):
            values["envelope_band_hz"] = tuple(band)
        return cls(**values)

    @property
    def shaft_hz(self) -> float:
        return self.rpm / 60.0

    def bearing_frequencies(self) -> dict[str, float] | None:
        """FTF/BPFO/BPFI/BSF in Hz at the profile's speed, or None without bearing geometry."""
        if self.balls is None or self.ball_diameter_mm is None or self.pitch_diameter_mm is None:
            return None
        return bearing_frequencies(
            self.shaft_hz, self.balls, self.ball_diameter_mm, self.pitch_diameter_mm, self.contact_angle_deg
        )


def assess(
    readings: ArrayLike,
    sample_rate_hz: float,
    window_start: datetime,
    machine: MachineProfile,
    zones: ZoneTable,
) -> HealthScore:
    """The health score of one window of acceleration readings (m/s²) taken from `window_start`.

    ValueError for an unusable window (non-finite readings, shorter than 1 s, a sample rate outside
    1,000-25,600 Hz) or a naive `window_start`; UnknownMachineClass when the table lacks the class.
    """
    accel = check_window(readings, sample_rate_hz)
    if window_start.tzinfo is None or window_start.utcoffset() is None:
        raise ValueError(f"window_start must be timezone-aware, got {window_start!r}")
    boundaries = zones.boundaries(machine.machine_class)
    values = features(
        accel,
        sample_rate_hz,
        machine.shaft_hz,
        band=zones.band_hz,
        defect_frequencies=machine.bearing_frequencies(),
        envelope_band=machine.envelope_band_hz,
    )
    velocity = round(values["velocity_rms_mm_s"], WIRE_DECIMALS)
    zone = zones.zone(machine.machine_class, velocity)
    hints = fault_hints(values, zone)
    score = min(
        [velocity_score(zones.rounded(velocity), boundaries)] + [SCORE_CAPS[hint.fault] for hint in hints]
    )
    return HealthScore(
        device_id=machine.device_id,
        window_start=window_start.astimezone(UTC),
        window_seconds=accel.size / float(sample_rate_hz),
        sample_rate_hz=float(sample_rate_hz),
        readings=int(accel.size),
        machine_class=machine.machine_class,
        zone=zone,
        score=score,
        features=values,
        hints=hints,
    )


def velocity_score(velocity_rms_mm_s: float, boundaries: tuple[float, float, float]) -> int:
    """0-100 from the velocity: linear 100 -> 75 over zone A, 75 -> 50 over B, 50 -> 25 over C,
    25 -> 0 from C/D to twice C/D, then 0. A velocity on a boundary scores as the zone below it."""
    if not (math.isfinite(velocity_rms_mm_s) and velocity_rms_mm_s >= 0):
        raise ValueError(f"velocity_rms_mm_s must be a finite number >= 0, got {velocity_rms_mm_s!r}")
    a_b, b_c, c_d = boundaries
    segments = ((0.0, a_b, 100), (a_b, b_c, 75), (b_c, c_d, 50), (c_d, 2 * c_d, 25))
    for lower, upper, top in segments:
        if velocity_rms_mm_s <= upper:
            return math.floor(top - 25 * (velocity_rms_mm_s - lower) / (upper - lower))
    return 0


def fault_hints(values: Mapping[str, float], zone: str) -> tuple[FaultHint, ...]:
    """The fault hints the features support (vibration.features names), given the window's zone."""
    hints: list[FaultHint] = []
    if zone != "A":
        hints.extend(_shaft_hints(values))
    if "bpfo_envelope_ratio" in values:  # bearing geometry configured
        hints.extend(_bearing_hints(values))
    return tuple(hints)


def _shaft_hints(values: Mapping[str, float]) -> list[FaultHint]:
    overall = values["velocity_rms_mm_s"]
    one_x = values[harmonic_feature(1.0)]
    two_x = values[harmonic_feature(2.0)]
    half_x = values[harmonic_feature(0.5)]
    hints: list[FaultHint] = []

    # Misalignment: a strong 2x (the coupling forces twice per revolution).
    misaligned = two_x >= MISALIGNMENT_2X_TO_1X * one_x and two_x >= MISALIGNMENT_2X_SHARE * overall
    if misaligned:
        ratio = two_x / one_x if one_x > 0 else math.inf
        hints.append(
            FaultHint(
                fault="misalignment",
                confidence=_ramp(ratio, MISALIGNMENT_2X_TO_1X, 1.0),  # certain once 2x ≥ 1x
                evidence=f"velocity_2x_mm_s {two_x:.3g} is {ratio:.2f} × velocity_1x_mm_s {one_x:.3g} "
                f"(threshold {MISALIGNMENT_2X_TO_1X}) and {two_x / overall:.2f} of velocity_rms_mm_s "
                f"(threshold {MISALIGNMENT_2X_SHARE})",
            )
        )

    # Looseness: a long series of harmonics (rattling, truncated response) and/or a 0.5x subharmonic.
    counted = [
        order
        for order in LOOSENESS_HARMONICS
        if values[harmonic_feature(order)] >= LOOSENESS_HARMONIC_TO_1X * one_x
        and values[harmonic_feature(order)] >= LOOSENESS_HARMONIC_SHARE * overall
    ]
    series = len(counted) >= LOOSENESS_MIN_HARMONICS
    subharmonic = (
        half_x >= LOOSENESS_SUBHARMONIC_TO_1X * one_x and half_x >= LOOSENESS_SUBHARMONIC_SHARE * overall
    )
    if series or subharmonic:
        evidence = []
        if series:
            evidence.append(
                f"{len(counted)} of velocity_3x..10x_mm_s ({', '.join(f'{order:g}x' for order in counted)}) "
                f"≥ {LOOSENESS_HARMONIC_TO_1X} × velocity_1x_mm_s and ≥ {LOOSENESS_HARMONIC_SHARE} × "
                f"velocity_rms_mm_s (threshold {LOOSENESS_MIN_HARMONICS})"
            )
        if subharmonic:
            evidence.append(
                f"velocity_0_5x_mm_s {half_x:.3g} ≥ {LOOSENESS_SUBHARMONIC_TO_1X} × velocity_1x_mm_s "
                f"and ≥ {LOOSENESS_SUBHARMONIC_SHARE} × velocity_rms_mm_s"
            )
        hints.append(
            FaultHint(
                fault="looseness",
                confidence=0.9 if series and subharmonic else 0.6,
                evidence="; ".join(evidence),
            )
        )

    # Imbalance: a dominant 1x (the centrifugal force turns once per revolution), when neither the
    # misalignment nor the looseness pattern explains the high 1x better.
    share = one_x / overall if overall > 0 else 0.0
    if share >= IMBALANCE_1X_SHARE and not misaligned and not (series or subharmonic):
        hints.append(
            FaultHint(
                fault="imbalance",
                confidence=_ramp(share, IMBALANCE_1X_SHARE, 0.95),  # certain when nearly all energy is 1x
                evidence=f"velocity_1x_mm_s {one_x:.3g} is {share:.2f} of velocity_rms_mm_s {overall:.3g} "
                f"(threshold {IMBALANCE_1X_SHARE}); velocity_2x_mm_s {two_x:.3g} below "
                f"{MISALIGNMENT_2X_TO_1X} × 1x",
            )
        )
    return hints


def _bearing_hints(values: Mapping[str, float]) -> list[FaultHint]:
    kurtosis, crest, band_kurtosis = (
        values["kurtosis"],
        values["crest_factor"],
        values["envelope_band_kurtosis"],
    )
    if not (
        kurtosis > IMPULSIVE_KURTOSIS or crest > IMPULSIVE_CREST_FACTOR or band_kurtosis > IMPULSIVE_KURTOSIS
    ):
        return []
    found = [
        (name, fault) for name, fault in RACES if values[f"{name}_envelope_ratio"] >= ENVELOPE_RATIO_THRESHOLD
    ]
    if len(found) == 2:
        # A harmonic of one race can sit within ±2 % of the other's 2x (for the 6205, 3 × BPFO is
        # within 0.7 % of 2 × BPFI), so the weaker race stays only if its fundamental qualifies by itself.
        stronger, weaker = sorted(found, key=lambda race: values[f"{race[0]}_envelope_ratio"], reverse=True)
        found = [stronger] + (
            [weaker] if values[f"{weaker[0]}_1x_envelope_ratio"] >= ENVELOPE_RATIO_THRESHOLD else []
        )
    hints = []
    for name, fault in found:
        ratio = values[f"{name}_envelope_ratio"]
        hints.append(
            FaultHint(
                fault=fault,
                confidence=_ramp(ratio, ENVELOPE_RATIO_THRESHOLD, ENVELOPE_RATIO_CERTAIN),
                evidence=f"{name}_envelope_ratio {ratio:.1f} at {values[f'{name}_hz']:.2f} Hz or twice it "
                f"(threshold {ENVELOPE_RATIO_THRESHOLD:g} × the envelope spectrum median); impulsive: "
                f"kurtosis {kurtosis:.2f}, envelope_band_kurtosis {band_kurtosis:.2f} "
                f"(threshold {IMPULSIVE_KURTOSIS:g}), crest_factor {crest:.2f} "
                f"(threshold {IMPULSIVE_CREST_FACTOR:g})",
            )
        )
    return hints


def _ramp(value: float, threshold: float, certain: float) -> float:
    """Confidence 0.5 at the threshold, rising linearly to 1.0 at `certain`."""
    return float(np.clip(0.5 + 0.5 * (value - threshold) / (certain - threshold), 0.5, 1.0))


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
