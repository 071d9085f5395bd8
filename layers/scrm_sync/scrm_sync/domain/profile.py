"""Unified profile: turning a canonical event into field writes, and the profile read model."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .events import CanonicalEvent
from .identifiers import Identifier, InvalidIdentifier, normalize_identifier
from .precedence import FieldVersion, FieldWrite, precedence_key
from .privacy import is_consent_attribute
from .rules import Rules


def new_profile_id() -> str:
    return f"p_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class RejectedIdentifier:
    type: str
    value_hint: str  # never the full value: it may be personal data
    reason: str


@dataclass(frozen=True, slots=True)
class ResolvedIdentifiers:
    linkable: tuple[Identifier, ...]
    blocklisted: tuple[Identifier, ...]
    rejected: tuple[RejectedIdentifier, ...]

    def unlinkable_reason(self) -> str | None:
        """Why no identifier can link a profile (the event cannot sync), or None when one can.
        Names identifier types and the normalizer's reasons only, never a value."""
        if self.linkable:
            return None
        why = [f"{r.type} ({r.reason})" for r in self.rejected]
        why += [f"{i.type} (blocklisted)" for i in self.blocklisted]
        return f"no identifier that can link a profile: {', '.join(why) or 'none given'}"[:300]


def _hint(value: str) -> str:
    return value[:3] + "***" if len(value) > 6 else "***"


def normalize_identifiers(event: CanonicalEvent, rules: Rules) -> ResolvedIdentifiers:
    linkable: dict[str, Identifier] = {}
    blocklisted: dict[str, Identifier] = {}
    rejected: list[RejectedIdentifier] = []
    for raw in event.identifiers:
        try:
            ident = normalize_identifier(raw.type, raw.value, raw.scope, rules.default_phone_region)
        except InvalidIdentifier as exc:
            rejected.append(RejectedIdentifier(raw.type, _hint(raw.value), str(exc)))
            continue
        target = blocklisted if rules.is_blocklisted(ident.type, ident.value) else linkable
        target[ident.key] = ident
    return ResolvedIdentifiers(
        tuple(sorted(linkable.values())), tuple(sorted(blocklisted.values())), tuple(rejected)
    )


def field_writes(event: CanonicalEvent, rules: Rules) -> list[FieldWrite]:
    rank = rules.rank_of(event.source)
    occurred_at = event.occurred_at.astimezone(UTC)
    occurred_text = occurred_at.isoformat()
    writes = []
    for name in sorted(event.attributes):
        # a consent is the person's own latest statement: no source outranks it
        field_rank = 0 if is_consent_attribute(name) else rank
        key = precedence_key(field_rank, occurred_at, event.source, event.event_id, rules.is_write_once(name))
        version = FieldVersion(key, event.source, occurred_text, event.event_id)
        writes.append(FieldWrite(name, event.attributes[name], version))
    return writes


@dataclass(slots=True)
class Profile:
    profile_id: str
    identifiers: list[Identifier] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, FieldVersion] = field(default_factory=dict)
    updated_at: str | None = None
    merged_from: list[str] = field(default_factory=list)  # profiles merged into this one

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "identifiers": [i.as_dict() for i in sorted(self.identifiers)],
            "attributes": {k: v for k, v in sorted(self.values.items()) if v is not None},
            "sources": {
                name: {"source": v.source, "occurred_at": v.occurred_at}
                for name, v in sorted(self.versions.items())
                if self.values.get(name) is not None
            },
            "updated_at": self.updated_at,
        }


def merge_field_versions(
    profiles: Iterable[Mapping[str, tuple[Any, FieldVersion]]],
) -> dict[str, tuple[Any, FieldVersion]]:
    """Per field, the value with the greatest precedence key: the same rule as a conditional write."""
    merged: dict[str, tuple[Any, FieldVersion]] = {}
    for fields in profiles:
        for name, (value, version) in fields.items():
            current = merged.get(name)
            if current is None or current[1].key < version.key:
                merged[name] = (value, version)
    return merged


def version_to_document(version: FieldVersion) -> dict[str, str]:
    """A field version as stored: `k` precedence key, `s` source, `t` occurred_at, `e` event id.
    The profile item's `m:<field>` and an event record's writes both hold this form."""
    return {"k": version.key, "s": version.source, "t": version.occurred_at, "e": version.event_id}


def version_from_document(doc: Mapping[str, Any]) -> FieldVersion:
    """The inverse of `version_to_document` (extra keys, such as a write's field, are ignored)."""
    return FieldVersion(str(doc["k"]), str(doc["s"]), str(doc["t"]), str(doc["e"]))


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What one event contributed to a profile: the evidence for its links and its fields.
    Kept so that undoing a wrong link can re-derive profiles from their events."""

    source: str
    event_id: str
    type: str
    occurred_at: str
    identifier_keys: tuple[str, ...]
    writes: tuple[FieldWrite, ...]
    # writes this event lost to a stronger version: kept for the conflict rate and rule tuning
    conflicts: tuple[Mapping[str, str], ...] = ()
    # identifier links an `identifiers.removed` event took off the profile (not evidence of a link)
    detached_keys: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.source}#{self.event_id}"

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "source": self.source,
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "identifiers": list(self.identifier_keys),
            "writes": [
                {"field": w.field, "value": w.value, **version_to_document(w.version)} for w in self.writes
            ],
            "conflicts": [dict(c) for c in self.conflicts],
        }
        if self.detached_keys:
            document["detached"] = list(self.detached_keys)
        return document

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> EventRecord:
        return cls(
            source=str(doc["source"]),
            event_id=str(doc["event_id"]),
            type=str(doc["type"]),
            occurred_at=str(doc["occurred_at"]),
            identifier_keys=tuple(doc.get("identifiers", [])),
            writes=tuple(
                FieldWrite(w["field"], w.get("value"), version_from_document(w))
                for w in doc.get("writes", [])
            ),
            conflicts=tuple(dict(c) for c in doc.get("conflicts", [])),
            detached_keys=tuple(doc.get("detached", [])),
        )


def fields_from_events(records: Iterable[EventRecord]) -> dict[str, tuple[Any, FieldVersion]]:
    """Recompute a profile's fields from its events: the same precedence as the live writes."""
    return merge_field_versions({w.field: (w.value, w.version) for w in r.writes} for r in records)
