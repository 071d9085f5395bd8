"""The change feed: one versioned change document per accepted profile change, for destinations
outside the profiles table (WeCom tags, subscribed webhooks, the event bus).

Documents come from the two tables' change streams: the profile item (fields, merges, splits,
unlinks: the same diff the audit chain records, `domain.audit.profile_changes`) and the identity
table (identifiers linked to or detached from a profile). A document's `id` is derived from the
stream record, so a redelivered record yields the same id and receivers dedupe on it; `sequence`
(the stream position, zero-padded) orders the changes of one profile within its stream.

    {"type": "profile.changed", "version": 1, "id": "chg_<32 hex>", "profile_id": "...",
     "sequence": "...", "changed_at": "2026-12-03T09:00:00Z", "kinds": ["fields", ...],
     "fields": {"member_level": {"old": "silver", "new": "gold", "source": "mdm",
                                 "event_id": "...", "occurred_at": "..."}},
     "identifiers": {"added": [{"type", "value", "scope"?}], "removed": [...]},
     "merged_into": "...", "merged_from": [...], "split_from": "...", "unlink": {...}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .audit import profile_changes
from .identifiers import Identifier
from .privacy import consents

DOCUMENT_TYPE = "profile.changed"
DOCUMENT_VERSION = 1
KINDS = ("fields", "identifiers", "merged", "merged_into", "split", "unlink")
_SEQUENCE_WIDTH = 40  # DynamoDB and Kinesis sequence numbers are decimal strings of up to 40 digits


def delivery_id(stream: str, sequence: str, profile_id: str) -> str:
    """Stable per stream record and profile: a redelivered record keeps its id."""
    digest = hashlib.sha256(f"{stream}|{sequence}|{profile_id}".encode()).hexdigest()
    return "chg_" + digest[:32]


def _padded(sequence: str) -> str:
    return sequence.zfill(_SEQUENCE_WIDTH) if sequence.isdigit() else sequence


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document(stream: str, sequence: str, profile_id: str, changed_at: datetime) -> dict[str, Any]:
    return {
        "type": DOCUMENT_TYPE,
        "version": DOCUMENT_VERSION,
        "id": delivery_id(stream, sequence, profile_id),
        "profile_id": profile_id,
        "sequence": _padded(sequence),
        "changed_at": _iso(changed_at),
        "kinds": [],
    }


def profile_document(
    profile_id: str,
    sequence: str,
    changed_at: datetime,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The change document of one profile item change (plain Python images), or None when the
    change is invisible outside (counters, timestamps)."""
    document = _document("profile", sequence, profile_id, changed_at)
    for change in profile_changes(old, new):
        kind = change["kind"]
        if kind == "fields":
            document["fields"] = {
                entry["field"]: {
                    key: entry[key] for key in ("old", "new", "source", "event_id", "occurred_at")
                }
                for entry in change["changes"]
            }
        elif kind == "merged_into":
            document["merged_into"] = change["survivor"]
        elif kind == "merged":
            document["merged_from"] = list(change["from"])
        elif kind == "split":
            document["split_from"] = change["from"]
        elif kind == "unlink":
            document["unlink"] = {key: value for key, value in change.items() if key != "kind"}
        document["kinds"].append(kind)
    if not document["kinds"]:
        return None
    document["consent"] = consents(_values(new or {}))  # what the outbound destinations honour
    return document


def _values(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name[2:]: value for name, value in image.items() if name.startswith("v:")}


def _owner_and_identifier(image: Mapping[str, Any] | None) -> tuple[str | None, Identifier | None]:
    if not image or not image.get("profile_id") or not image.get("identifier_key"):
        return None, None
    try:
        return str(image["profile_id"]), Identifier.from_key(str(image["identifier_key"]))
    except ValueError:
        return str(image["profile_id"]), None


def identity_documents(
    sequence: str, changed_at: datetime, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The change documents of one identity item change: the identifier added to its new owner
    and removed from its old one (a link, a detach, or a merge moving it)."""
    old_owner, old_identifier = _owner_and_identifier(old)
    new_owner, new_identifier = _owner_and_identifier(new)
    if old_owner == new_owner:
        return []  # the same link (a block flag or a re-put): nothing changed for anybody
    documents = []
    for owner, identifier, direction in (
        (old_owner, old_identifier, "removed"),
        (new_owner, new_identifier, "added"),
    ):
        if owner and identifier:
            document = _document("identity", sequence, owner, changed_at)
            document["kinds"] = ["identifiers"]
            document["identifiers"] = {"added": [], "removed": [], direction: [identifier.as_dict()]}
            documents.append(document)
    return documents


def changed_fields(document: Mapping[str, Any]) -> frozenset[str]:
    fields = document.get("fields")
    return frozenset(fields) if isinstance(fields, Mapping) else frozenset()


def added_identifier_types(document: Mapping[str, Any]) -> frozenset[str]:
    identifiers = document.get("identifiers")
    if not isinstance(identifiers, Mapping):
        return frozenset()
    return frozenset(str(i.get("type")) for i in identifiers.get("added", []) if isinstance(i, Mapping))


def compact_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def bounded(document: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """The document within `max_bytes` of JSON (queue and event bus limits): when a profile's
    field values make it larger, the values are left out (`"truncated": true`) and only the
    names, sources and times remain; receivers read the profile for the values."""
    if len(compact_json(document).encode()) <= max_bytes:
        return dict(document)
    trimmed = dict(document)
    fields = document.get("fields")
    if isinstance(fields, Mapping):
        trimmed["fields"] = {
            name: {key: value for key, value in change.items() if key not in ("old", "new")}
            for name, change in fields.items()
        }
    trimmed["truncated"] = True
    return trimmed
