"""Vibration severity zones (ISO 10816-3 style) as configuration, not as constants in code.

The packaged table `vibration_zones.json` holds the ISO 10816-3 boundaries (broadband r.m.s.
velocity, 10-1000 Hz, mm/s, on bearing housings) for the four machine classes `group1_rigid`,
`group1_flexible`, `group2_rigid`, `group2_flexible`, as quoted by LGDiMaggio/claude-stwinbox-diagnostics
(skills/vibration-fault-diagnosis/references/iso-10816-guide.md). ISO 20816-3:2022 supersedes
ISO 10816-3 and is paywalled: the values are to be confirmed against a licensed copy. A user may
load their own table (another standard, a licensed copy's values) with `ZoneTable.load(path)`.

Boundary rule (also stated in the table): the velocity is first rounded to the table's resolution
(0.01 mm/s), half up on its decimal value (1.4049 -> 1.40, 1.405 -> 1.41); a rounded velocity equal
to a boundary belongs to the LOWER zone, the boundary being that zone's upper limit (`v <= A/B -> A`),
as most public implementations do. A table may say `"equal_to_boundary": "upper_zone"` instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

ZONE_NAMES = ("A", "B", "C", "D")
BOUNDARY_NAMES = ("A/B", "B/C", "C/D")
PACKAGED_TABLE = "vibration_zones.json"
_EQUALITY_RULES = ("lower_zone", "upper_zone")


class UnknownMachineClass(ValueError):
    """A machine class the zone table does not define (the message lists the ones it does)."""


@dataclass(frozen=True, slots=True)
class MachineClass:
    name: str
    description: str
    boundaries_mm_s: tuple[float, float, float]  # A/B, B/C, C/D


@dataclass(frozen=True, slots=True)
class ZoneTable:
    standard: str
    source: str
    band_hz: tuple[float, float]  # the velocity measurement band the boundaries assume
    resolution_mm_s: float
    equal_to_boundary: str  # "lower_zone" (the packaged rule) or "upper_zone"
    classes: dict[str, MachineClass]

    @classmethod
    def load(cls, path: str | Path | None = None) -> ZoneTable:
        """The table in `path` (JSON), or the packaged ISO 10816-3 table when `path` is None."""
        if path is None:
            text = resources.files(__package__ or "scrm_edge").joinpath(PACKAGED_TABLE).read_text("utf-8")
            origin = f"packaged {PACKAGED_TABLE}"
        else:
            text = Path(path).read_text(encoding="utf-8")
            origin = str(path)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"vibration zone table {origin}: not JSON ({error})") from error
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> ZoneTable:
        """Validate a parsed table; every ValueError names the class and field at fault."""
        if not isinstance(doc, dict):
            raise ValueError("vibration zone table: must be a JSON object")
        standard = _text(doc, "standard", "vibration zone table")
        source = _text(doc, "source", "vibration zone table")

        measurement = _section(doc, "measurement", "vibration zone table")
        if measurement.get("unit") != "mm/s":
            raise ValueError(
                f"vibration zone table: measurement.unit must be 'mm/s', got {measurement.get('unit')!r}"
            )
        band = measurement.get("band_hz")
        if not (isinstance(band, list) and len(band) == 2 and all(_is_number(edge) for edge in band)):
            raise ValueError(
                f"vibration zone table: measurement.band_hz must be [low, high] in Hz, got {band!r}"
            )
        low_hz, high_hz = float(band[0]), float(band[1])
        if not 0 < low_hz < high_hz:
            raise ValueError(
                f"vibration zone table: measurement.band_hz must satisfy 0 < low < high, got {band!r}"
            )

        rule = _section(doc, "boundary_rule", "vibration zone table")
        resolution = rule.get("resolution_mm_s")
        if not (_is_number(resolution) and resolution > 0):
            raise ValueError(
                "vibration zone table: boundary_rule.resolution_mm_s must be a positive number, "
                f"got {resolution!r}"
            )
        if rule.get("rounding") != "half_up":
            raise ValueError(
                "vibration zone table: boundary_rule.rounding must be 'half_up', "
                f"got {rule.get('rounding')!r}"
            )
        equality = rule.get("equal_to_boundary")
        if equality not in _EQUALITY_RULES:
            raise ValueError(
                f"vibration zone table: boundary_rule.equal_to_boundary must be one of {_EQUALITY_RULES}, "
                f"got {equality!r}"
            )

        raw_classes = _section(doc, "classes", "vibration zone table")
        if not raw_classes:
            raise ValueError("vibration zone table: classes must define at least one machine class")
        classes = {name: _machine_class(name, spec) for name, spec in raw_classes.items()}
        return cls(
            standard=standard,
            source=source,
            band_hz=(low_hz, high_hz),
            resolution_mm_s=float(resolution),
            equal_to_boundary=str(equality),
            classes=classes,
        )

    def boundaries(self, machine_class: str) -> tuple[float, float, float]:
        """(A/B, B/C, C/D) in mm/s for the class; UnknownMachineClass if the table lacks it."""
        return self._class(machine_class).boundaries_mm_s

    def rounded(self, velocity_rms_mm_s: float) -> float:
        """The velocity rounded to the table's resolution, half up on its decimal value."""
        return float(self._round(velocity_rms_mm_s))

    def zone(self, machine_class: str, velocity_rms_mm_s: float) -> str:
        """ "A".."D" for a broadband r.m.s. velocity under the table's boundary rule."""
        boundaries = self._class(machine_class).boundaries_mm_s
        velocity = self._round(velocity_rms_mm_s)
        for zone, boundary in zip(ZONE_NAMES, boundaries, strict=False):
            upper_limit = _decimal(boundary)
            if velocity < upper_limit or (velocity == upper_limit and self.equal_to_boundary == "lower_zone"):
                return zone
        return ZONE_NAMES[-1]

    def _round(self, velocity_rms_mm_s: float) -> Decimal:
        velocity = float(velocity_rms_mm_s)
        if not math.isfinite(velocity) or velocity < 0:
            raise ValueError(f"velocity_rms_mm_s must be a finite number >= 0, got {velocity_rms_mm_s!r}")
        # repr() is the shortest decimal that round-trips: 1.405 rounds as the decimal 1.405, not as
        # the binary double just below it.
        return _decimal(velocity).quantize(_decimal(self.resolution_mm_s), rounding=ROUND_HALF_UP)

    def _class(self, machine_class: str) -> MachineClass:
        try:
            return self.classes[machine_class]
        except KeyError:
            known = ", ".join(sorted(self.classes))
            raise UnknownMachineClass(
                f"unknown machine class {machine_class!r}; the zone table ({self.standard}) defines: {known}"
            ) from None


def _machine_class(name: Any, spec: Any) -> MachineClass:
    where = f"vibration zone table: class {name!r}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: the class name must be a non-empty string")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: must be an object with description and boundaries_mm_s")
    description = _text(spec, "description", where)
    raw = spec.get("boundaries_mm_s")
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: boundaries_mm_s must be an object with keys {', '.join(BOUNDARY_NAMES)}")
    unexpected = sorted(set(raw) - set(BOUNDARY_NAMES))
    if unexpected:
        raise ValueError(f"{where}: boundaries_mm_s has unknown keys {unexpected}; expected {BOUNDARY_NAMES}")
    values: list[float] = []
    for boundary in BOUNDARY_NAMES:
        value = raw.get(boundary)
        if not (_is_number(value) and value > 0):
            raise ValueError(
                f"{where}: boundaries_mm_s {boundary!r} must be a positive number, got {value!r}"
            )
        values.append(float(value))
    for lower, upper, lower_name, upper_name in zip(
        values, values[1:], BOUNDARY_NAMES, BOUNDARY_NAMES[1:], strict=False
    ):
        if not lower < upper:
            raise ValueError(
                f"{where}: boundaries_mm_s must be strictly increasing, "
                f"but {lower_name!r} = {lower} is not below {upper_name!r} = {upper}"
            )
    return MachineClass(name=name, description=description, boundaries_mm_s=(values[0], values[1], values[2]))


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _is_number(value: Any) -> TypeGuard[int | float]:
    # bool is an int subclass: `true` is not a boundary.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(doc: dict[str, Any], field: str, where: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {field} must be a non-empty string, got {value!r}")
    return value


def _section(doc: dict[str, Any], field: str, where: str) -> dict[str, Any]:
    value = doc.get(field)
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {field} must be an object, got {type(value).__name__}")
    return value
