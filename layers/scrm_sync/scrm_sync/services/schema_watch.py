"""Schema drift: every platform message is compared with what its source sent before.

The first message of a (source, kind) becomes its baseline. After that a new field, a mapped
field that vanished or a field whose type changed is a drift: recorded once (with a proposed
mapping for each vanished field) and reported to the caller, who counts it as a metric. Known
schemas are cached per process, so a steady stream costs no storage round trip.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..domain.mapping import Drift, Suggestion, detect_drift, observed_schema
from ..domain.rules import Rules


@dataclass(frozen=True, slots=True)
class DriftRecord:
    source: str
    kind: str
    detected_at: str
    new_fields: Mapping[str, str] = field(default_factory=dict)
    missing_mapped: tuple[str, ...] = ()
    type_changes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    suggestions: tuple[Mapping[str, Any], ...] = ()

    @property
    def signature(self) -> str:
        """Identifies the same drift seen again (by any process): its content, not its time."""
        content = {
            "source": self.source,
            "kind": self.kind,
            "new": sorted(self.new_fields.items()),
            "missing": sorted(self.missing_mapped),
            "types": sorted((k, list(v)) for k, v in self.type_changes.items()),
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "detected_at": self.detected_at,
            "new_fields": dict(self.new_fields),
            "missing_mapped": list(self.missing_mapped),
            "type_changes": {k: {"was": v[0], "now": v[1]} for k, v in self.type_changes.items()},
            "suggestions": [dict(s) for s in self.suggestions],
        }

    @classmethod
    def from_drift(cls, source: str, kind: str, drift: Drift, detected_at: str) -> DriftRecord:
        return cls(
            source=source,
            kind=kind,
            detected_at=detected_at,
            new_fields=dict(drift.new_fields),
            missing_mapped=tuple(drift.missing_mapped),
            type_changes=dict(drift.type_changes),
            suggestions=tuple(
                {
                    "missing": s.missing_path,
                    "use": s.candidate_path,
                    "score": s.score,
                    "rule": {"source": s.candidate_path},
                }
                for s in drift.suggestions
            ),
        )


class SchemaRegistry(Protocol):
    def known_schema(self, source: str, kind: str) -> dict[str, str] | None:
        """Field path -> JSON type seen so far; None when the source kind was never seen."""
        ...

    def remember(self, source: str, kind: str, fields: Mapping[str, str], drift: DriftRecord | None) -> None:
        """Merge these field types into the known schema and keep the drift record (once per
        signature); both idempotent."""
        ...

    def drift_records(self, source: str | None = None) -> list[DriftRecord]: ...


class SchemaWatch:
    def __init__(
        self,
        registry: SchemaRegistry,
        rules: Callable[[], Rules],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._rules = rules
        self._clock = clock
        self._known: dict[tuple[str, str], dict[str, str]] = {}
        self._reported: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def observe(self, source: str, kind: str, payload: Any) -> DriftRecord | None:
        """The drift this message shows, the first time this process sees it; else None."""
        observed = observed_schema(payload)
        key = (source, kind)
        with self._lock:
            known = self._known.get(key)
        if known is None:
            stored = self._registry.known_schema(source, kind)
            if stored is None:  # first message of its kind: the baseline
                self._registry.remember(source, kind, observed, None)
                with self._lock:
                    self._known[key] = dict(observed)
                return None
            known = stored
        mapped = [path for rule in self._rules().mapping_for(source, kind) for path in rule.paths]
        drift = detect_drift(known, observed, mapped)
        additions = {**drift.new_fields, **{p: now for p, (_, now) in drift.type_changes.items()}}
        with self._lock:
            self._known[key] = {**known, **additions}
            drift = _unreported(drift, self._reported, key)
        if not drift.any:
            return None
        drift.suggestions = _suggestions(known, observed, drift.missing_mapped, mapped)
        record = DriftRecord.from_drift(source, kind, drift, self._clock().isoformat())
        self._registry.remember(source, kind, additions, record)
        return record


def _findings(drift: Drift, key: tuple[str, str]) -> set[tuple[str, ...]]:
    return (
        {(*key, "new", p) for p in drift.new_fields}
        | {(*key, "missing", p) for p in drift.missing_mapped}
        | {(*key, "type", p, now) for p, (_, now) in drift.type_changes.items()}
    )


def _unreported(drift: Drift, reported: set[tuple[str, ...]], key: tuple[str, str]) -> Drift:
    """Only the findings this process has not reported yet (each is recorded once, not per event)."""
    fresh = Drift(
        new_fields={p: t for p, t in drift.new_fields.items() if (*key, "new", p) not in reported},
        missing_mapped=[p for p in drift.missing_mapped if (*key, "missing", p) not in reported],
        type_changes={p: c for p, c in drift.type_changes.items() if (*key, "type", p, c[1]) not in reported},
    )
    reported |= _findings(fresh, key)
    return fresh


def _suggestions(
    known: Mapping[str, str], observed: Mapping[str, str], missing: list[str], mapped: list[str]
) -> list[Suggestion]:
    """For each vanished mapped field, the most similar field of this message that no rule maps
    (new or not: a field first seen in an earlier message may be the rename)."""
    if not missing:
        return []
    unmapped = {p: t for p, t in observed.items() if p not in mapped}
    return detect_drift({p: known[p] for p in missing}, unmapped, missing).suggestions
