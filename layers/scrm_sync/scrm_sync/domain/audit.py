"""Tamper-evident audit chain: one hash chain per profile.

entry n: hash_n = sha256(hash_{n-1} + canonical JSON of change_n), hash_0 = 64 zeros.
Changing, removing or reordering any stored entry breaks every later link. Removing the newest
entries breaks no link, so the chain's HEAD (its last entry, moved in the same write as each
append) is the other witness: `verify_chain` checks the links and that the entries end exactly
where HEAD says, and names the first entry that fails either.

`profile_changes` turns a profile item's old and new image (from the table's change stream)
into the changes worth auditing: field changes, merges, splits and unlinks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(change: Mapping[str, Any]) -> str:
    return json.dumps(change, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(previous_hash: str, change_json: str) -> str:
    return hashlib.sha256((previous_hash + change_json).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    prev_hash: str
    hash: str
    change_json: str  # stored verbatim: the hash covers these exact bytes


def next_entry(head: AuditEntry | None, change: Mapping[str, Any]) -> AuditEntry:
    prev_hash = head.hash if head else GENESIS_HASH
    text = canonical_json(change)
    return AuditEntry((head.seq if head else 0) + 1, prev_hash, chain_hash(prev_hash, text), text)


class ChainStatus(StrEnum):
    OK = "ok"
    BROKEN = "broken"
    MISSING = "missing"  # neither HEAD nor entries: nothing was ever chained for this id


@dataclass(frozen=True, slots=True)
class ChainReport:
    status: ChainStatus
    entries: int
    first_broken_seq: int | None  # None when intact, missing, or when only HEAD itself is absent
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.status is ChainStatus.OK


def verify_chain(entries: Sequence[AuditEntry], head: AuditEntry | None) -> ChainReport:
    """Check the stored entries (in sequence order) against each other and against HEAD."""
    count = len(entries)

    def broken(seq: int | None, problem: str) -> ChainReport:
        return ChainReport(ChainStatus.BROKEN, count, seq, problem)

    if head is None and not entries:
        return ChainReport(ChainStatus.MISSING, 0, None, "no audit chain")
    previous = GENESIS_HASH
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return broken(expected_seq, f"entry {expected_seq} is missing or out of place")
        if head is not None and entry.seq > head.seq:
            return broken(entry.seq, f"entry {entry.seq} lies beyond HEAD, which records {head.seq}")
        if entry.prev_hash != previous:
            return broken(entry.seq, "does not link to the previous entry")
        if chain_hash(previous, entry.change_json) != entry.hash:
            return broken(entry.seq, "content does not match its hash")
        previous = entry.hash
    if head is None:
        return broken(None, f"HEAD is missing: {count} entries without a head")
    if count < head.seq:
        return broken(count + 1, f"entry {count + 1} is missing: HEAD records {head.seq} entries")
    if not entries or entries[-1] != head:
        return broken(head.seq, f"entry {head.seq} does not match HEAD")
    return ChainReport(ChainStatus.OK, count, None, None)


def _fields(image: Mapping[str, Any]) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    return {
        name[2:]: (image.get("v:" + name[2:]), meta) for name, meta in image.items() if name.startswith("m:")
    }


def profile_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Auditable changes between two images of a profile item (plain Python values)."""
    old, new = old or {}, new or {}
    changes: list[dict[str, Any]] = []
    if not old and new.get("split_from"):
        changes.append({"kind": "split", "from": new["split_from"]})
    before, after = _fields(old), _fields(new)
    field_changes = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        value, meta = after.get(name, (None, {}))
        field_changes.append(
            {
                "field": name,
                "old": before.get(name, (None, {}))[0],
                "new": value,
                "source": meta.get("s"),
                "event_id": meta.get("e"),
                "occurred_at": meta.get("t"),
            }
        )
    if field_changes:
        changes.append({"kind": "fields", "changes": field_changes})
    if new.get("redirect_to") and not old.get("redirect_to"):
        changes.append(
            {"kind": "merged_into", "survivor": new["redirect_to"], "event_id": new.get("merged_by_event")}
        )
    added = sorted(set(_as_list(new.get("merged_from"))) - set(_as_list(old.get("merged_from"))))
    if added:
        changes.append({"kind": "merged", "from": added})
    if new.get("last_unlink") and new.get("last_unlink") != old.get("last_unlink"):
        changes.append({"kind": "unlink", **dict(new["last_unlink"])})
    return changes


def _as_list(value: Iterable[str] | None) -> list[str]:
    return list(value or [])
