"""Declarative field mapping (channel payload -> canonical attributes and metrics) and schema
drift detection. Rules are configuration (the rules file's `mappings`), so an operator changes
how a platform field lands in the profile without a deploy.

Example rule set, as written in the rules file:

    "mappings": {
      "douyin": {
        "new_video_digg": [
          {"source": "content.digg_count", "target": "metrics.likes", "transform": "int"},
          {"source": "content.digg_count", "target": "interaction_index", "transform": "int"}
        ]
      }
    }
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .storable import NotStorable, check_scalar

Transform = Literal["copy", "str", "int", "float", "bool", "lower", "upper", "cents_to_yuan", "enum", "join"]
_MISSING = object()


class FieldRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = ""  # dot path into the payload; `sources` for join
    sources: tuple[str, ...] = ()
    target: str = Field(pattern=r"^(metrics\.)?[a-z][a-z0-9_]{0,63}$")
    transform: Transform = "copy"
    enum: dict[str, str] = Field(default_factory=dict)
    join_with: str = " "
    required: bool = False

    @model_validator(mode="after")
    def _has_a_source(self) -> FieldRule:
        if self.transform == "join" and not self.sources:
            raise ValueError("join needs 'sources'")
        if self.transform != "join" and not self.source:
            raise ValueError("a rule needs a 'source' path")
        return self

    @property
    def paths(self) -> tuple[str, ...]:
        return self.sources if self.transform == "join" else (self.source,)


class MappingError(ValueError):
    """A value the rule cannot convert, or whose result is not storable (domain/storable.py).
    The message names the rule's source path, target and transform, never the value. It is the
    only error applying rules raises: apply_rules reports it per rule in MappedFields.errors."""


def lookup(payload: Any, path: str) -> Any:
    current = payload
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def value_at(payload: Any, path: str) -> Any:
    """The value at a dot path; None when the path is absent (as for a NULL)."""
    value = lookup(payload, path)
    return None if value is _MISSING else value


def _transformed(rule: FieldRule, value: Any) -> Any:
    match rule.transform:
        case "copy":
            return value
        case "join":  # the parts present, in rule order
            return rule.join_with.join(str(part) for part in value)
        case "str":
            return str(value)
        case "int":
            return int(Decimal(str(value)))
        case "float":
            return float(Decimal(str(value)))
        case "bool":
            return (
                value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "y"}
            )
        case "lower":
            return str(value).lower()
        case "upper":
            return str(value).upper()
        case "cents_to_yuan":
            return str((Decimal(str(value)) / 100).quantize(Decimal("0.01")))
        case "enum":
            return rule.enum[str(value)] if str(value) in rule.enum else rule.enum.get("*", value)
    raise MappingError(f"unknown transform {rule.transform}")


def convert(rule: FieldRule, value: Any) -> Any:
    """The value as the rule transforms it (for a metric, as a float), storable; else MappingError.
    Decimal and float conversions raise ArithmeticErrors (InvalidOperation, OverflowError for
    Infinity -> int): they are MappingErrors too."""
    where = f"{','.join(rule.paths)} -> {rule.target}"
    try:
        converted = _transformed(rule, value)
        if rule.target.startswith("metrics."):
            converted = float(converted)
        check_scalar(converted)
    except NotStorable as exc:
        raise MappingError(f"{where}: {exc}") from None
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise MappingError(f"{where}: cannot apply {rule.transform} to {type(value).__name__}") from exc
    return converted


@dataclass(slots=True)
class MappedFields:
    attributes: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # mapped paths absent from the payload
    errors: list[str] = field(default_factory=list)


def apply_rules(rules: Iterable[FieldRule], payload: Any) -> MappedFields:
    """Every rule applied to the payload; a rule whose value cannot be converted or stored is
    reported in `errors` (a MappingError's text) and maps nothing."""
    out = MappedFields()
    for rule in rules:
        if rule.transform == "join":
            parts = [lookup(payload, p) for p in rule.sources]
            out.missing.extend(p for p, v in zip(rule.sources, parts, strict=True) if v is _MISSING)
            raw: Any = [p for p in parts if p is not _MISSING and p not in (None, "")]
            if not raw:
                continue
        else:
            raw = lookup(payload, rule.source)
            if raw is _MISSING:
                out.missing.append(rule.source)
                continue
        try:
            value = convert(rule, raw)
        except MappingError as exc:
            out.errors.append(str(exc))
            continue
        if rule.target.startswith("metrics."):
            out.metrics[rule.target.removeprefix("metrics.")] = value
        else:
            out.attributes[rule.target] = value
    return out


# -- schema drift ---------------------------------------------------------------------------------
def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def observed_schema(payload: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf path of a payload with its JSON type (arrays are described by their first item)."""
    schema: dict[str, str] = {}
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Mapping | list) and value:
                schema.update(observed_schema(value, path))
            else:
                schema[path] = _type_name(value)
    elif isinstance(payload, list) and payload:
        schema.update(observed_schema(payload[0], f"{prefix}.0" if prefix else "0"))
    return schema


@dataclass(frozen=True, slots=True)
class Suggestion:
    missing_path: str
    candidate_path: str
    score: float


@dataclass(slots=True)
class Drift:
    new_fields: dict[str, str] = field(default_factory=dict)
    missing_mapped: list[str] = field(default_factory=list)
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.new_fields or self.missing_mapped or self.type_changes)


def detect_drift(known: Mapping[str, str], observed: Mapping[str, str], mapped_paths: Iterable[str]) -> Drift:
    """Compare a source's known schema with a new payload's; for each mapped path that vanished,
    propose the new field most like it (name similarity, same value type)."""
    drift = Drift()
    drift.new_fields = {p: t for p, t in observed.items() if p not in known}
    drift.type_changes = {
        p: (known[p], t)
        for p, t in observed.items()
        if p in known and known[p] != t and "null" not in (known[p], t)
    }
    drift.missing_mapped = sorted(p for p in set(mapped_paths) if p in known and p not in observed)
    for path in drift.missing_mapped:
        best: Suggestion | None = None
        for candidate, type_ in drift.new_fields.items():
            score = difflib.SequenceMatcher(
                None, path.rsplit(".", 1)[-1], candidate.rsplit(".", 1)[-1]
            ).ratio()
            score += 0.3 * difflib.SequenceMatcher(None, path, candidate).ratio()
            if type_ == known[path]:
                score += 0.2
            if best is None or score > best.score:
                best = Suggestion(path, candidate, round(score, 3))
        if best is not None:
            drift.suggestions.append(best)
    return drift
