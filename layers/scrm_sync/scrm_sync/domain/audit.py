"""Tamper-evident audit chain: one hash chain per profile.

Format 2 (every entry appended now): digest_n = sha256(canonical JSON of change_n) and
hash_n = sha256(hash_{n-1} + digest_n), hash_0 = 64 zeros. The chain links digests, not contents,
so an erasure can remove an entry's content (personal data) and keep its digest: the chain still
verifies, and the erasure entry that did it (`kind: erased`, listing the entries it redacted)
is itself in the chain, so content can only go missing visibly and accountably. A retention sweep
(`kind: expired`) removes the content of entries older than the retention the same way. An entry whose
content is present must still match its digest.
Format 1 (entries appended before format 2): hash_n = sha256(hash_{n-1} + canonical JSON), no
digest, so its content cannot be removed without breaking the chain; `migrate_chain` rewrites a
verified format-1 chain as format 2 (what `scrm audit migrate` and an erasure do).

Changing, removing or reordering any stored entry breaks every later link. Removing the newest
entries breaks no link, so the chain's HEAD (its last entry, moved in the same write as each
append) is the other witness: `verify_chain` checks the links and that the entries end exactly
where HEAD says, and names the first entry that fails either.

`profile_changes` turns a profile item's old and new image (from the table's change stream)
into the changes worth auditing: field changes, merges, splits, unlinks and erasures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64
ERASED_BY = "erased_by"  # an erased profile's tombstone (no fields, identifiers or values)


def canonical_json(change: Mapping[str, Any]) -> str:
    return json.dumps(change, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(previous_hash: str, change_json: str) -> str:
    return hashlib.sha256((previous_hash + change_json).encode("utf-8")).hexdigest()


CURRENT_FORMAT = 2
ERASED = "erased"  # the change kind of an erasure
EXPIRED = "expired"  # the change kind of a retention sweep (AuditRetentionDays)
REDACTING = frozenset({ERASED, EXPIRED})  # the entries that may name entries whose content went


def content_digest(change_json: str) -> str:
    return hashlib.sha256(change_json.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    prev_hash: str
    hash: str
    change_json: str  # stored verbatim ("" once redacted): the digest covers these exact bytes
    format: int = 1
    digest: str = ""  # format 2: sha256 of change_json, kept when the content is redacted
    # when it was appended (not hashed: a retention sweep that redacts by it names what it
    # redacted in an entry of its own, which is); "" for entries appended before it was kept
    recorded_at: str = field(default="", compare=False)

    @property
    def redacted(self) -> bool:
        return self.format >= 2 and not self.change_json

    def without_content(self) -> AuditEntry:
        return replace(self, change_json="")


def next_entry(head: AuditEntry | None, change: Mapping[str, Any]) -> AuditEntry:
    return _entry(head, canonical_json(change))


def _entry(head: AuditEntry | None, text: str) -> AuditEntry:
    prev_hash = head.hash if head else GENESIS_HASH
    digest = content_digest(text)
    seq = (head.seq if head else 0) + 1
    return AuditEntry(seq, prev_hash, chain_hash(prev_hash, digest), text, CURRENT_FORMAT, digest)


def migrate_chain(entries: Sequence[AuditEntry]) -> list[AuditEntry]:
    """A verified chain rewritten in the current format, entry for entry (same seq and content);
    entries already in it are relinked to the rewritten ones before them."""
    migrated: list[AuditEntry] = []
    for entry in entries:
        previous = migrated[-1] if migrated else None
        if entry.format >= CURRENT_FORMAT:
            prev_hash = previous.hash if previous else GENESIS_HASH
            migrated.append(replace(entry, prev_hash=prev_hash, hash=chain_hash(prev_hash, entry.digest)))
        else:
            migrated.append(_entry(previous, entry.change_json))
    return migrated


def erasure_change(
    erasure_id: str, requested_by: str, requested_at: str, stores: Sequence[str], redacted: Sequence[int]
) -> dict[str, Any]:
    """The chain's record of an erasure: who asked, when, which stores, which entries lost their
    content (never the erased values)."""
    return {
        "kind": ERASED,
        "erasure_id": erasure_id,
        "requested_by": requested_by,
        "requested_at": requested_at,
        "stores": list(stores),
        "redacted": list(redacted),
    }


def expiry_change(before: str, redacted: Sequence[int]) -> dict[str, Any]:
    """The chain's record of a retention sweep: the content of entries appended before `before`
    was removed (their digests stay)."""
    return {"kind": EXPIRED, "before": before, "redacted": list(redacted)}


def _redactions(entry: AuditEntry) -> set[int]:
    if entry.redacted:
        return set()
    try:
        change = json.loads(entry.change_json)
    except ValueError:
        return set()
    if not isinstance(change, dict) or change.get("kind") not in REDACTING:
        return set()
    return {n for n in change.get("redacted", []) if isinstance(n, int)}


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
    redacted_by_erasure: set[int] = set()
    for entry in reversed(entries):  # an erasure entry vouches for the entries before it
        redacted_by_erasure |= {n for n in _redactions(entry) if n < entry.seq}
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return broken(expected_seq, f"entry {expected_seq} is missing or out of place")
        if head is not None and entry.seq > head.seq:
            return broken(entry.seq, f"entry {entry.seq} lies beyond HEAD, which records {head.seq}")
        if entry.prev_hash != previous:
            return broken(entry.seq, "does not link to the previous entry")
        if entry.format >= 2:
            if entry.redacted and entry.seq not in redacted_by_erasure:
                return broken(entry.seq, "content removed without an erasure entry naming it")
            if not entry.redacted and content_digest(entry.change_json) != entry.digest:
                return broken(entry.seq, "content does not match its digest")
            if chain_hash(previous, entry.digest) != entry.hash:
                return broken(entry.seq, "digest does not match its hash")
        elif chain_hash(previous, entry.change_json) != entry.hash:
            return broken(entry.seq, "content does not match its hash")
        previous = entry.hash
    if head is None:
        return broken(None, f"HEAD is missing: {count} entries without a head")
    if count < head.seq:
        return broken(count + 1, f"entry {count + 1} is missing: HEAD records {head.seq} entries")
    if not entries or _linked(entries[-1]) != _linked(head):
        return broken(head.seq, f"entry {head.seq} does not match HEAD")
    return ChainReport(ChainStatus.OK, count, None, None)


def _linked(entry: AuditEntry) -> tuple[int, str, str]:
    """What HEAD must agree on with the last entry (HEAD keeps its content when the entry's is
    redacted only until the erasure that redacts appends after it)."""
    return entry.seq, entry.prev_hash, entry.hash


def _fields(image: Mapping[str, Any]) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    return {
        name[2:]: (image.get("v:" + name[2:]), meta) for name, meta in image.items() if name.startswith("m:")
    }


def profile_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Auditable changes between two images of a profile item (plain Python values). A profile
    item replaced by an erasure's tombstone is one `erased` change, naming no value."""
    old, new = old or {}, new or {}
    if new.get(ERASED_BY) and not old.get(ERASED_BY):  # the erasure's tombstone replaced it
        return [
            erasure_change(
                str(new[ERASED_BY]),
                str(new.get("erasure_requested_by") or ""),
                str(new.get("erasure_requested_at") or ""),
                [str(s) for s in new.get("erasure_stores") or []],
                [],
            )
        ]
    if new.get(ERASED_BY) or (not new and old.get(ERASED_BY)):
        return []  # a tombstone holds nothing to audit
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
