"""Appending to, verifying, migrating and (for an erasure) redacting the per-profile audit chain.

The audit function is the chain's only appender and handles one profile's stream records in
order, so an erasure's migration and redaction run there, in the profile's own order.
`scrm audit migrate` moves HEAD first (conditional on the HEAD it verified), so an append that
races it links to the rewritten chain; a migration interrupted after HEAD moved is finished by
the next run, which recognizes its own HEAD.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from ..domain.audit import (
    CURRENT_FORMAT,
    REDACTING,
    AuditEntry,
    ChainReport,
    expiry_change,
    migrate_chain,
    next_entry,
    verify_chain,
)

log = logging.getLogger(__name__)
MigrationOutcome = Literal["migrated", "current", "missing", "broken"]

MAX_ATTEMPTS = 10


class AuditRepository(Protocol):
    def head(self, profile_id: str) -> tuple[AuditEntry | None, str]:
        """HEAD: the last entry appended (stored apart from the entries, moved by every append)
        and the last stream position appended (for idempotent replays)."""
        ...

    def append(self, profile_id: str, entry: AuditEntry, position: str, expected_head_seq: int) -> bool:
        """Claim entry.seq with a conditional put; False if another writer claimed it first."""
        ...

    def entries(self, profile_id: str) -> list[AuditEntry]:
        """The stored entries in sequence order, as they are (tampered ones included)."""
        ...

    def chains_before(self, audit_format: int) -> Iterable[str]:
        """The profile ids whose HEAD is in an older format."""
        ...

    def chains_with_content_before(self, before: str) -> Iterable[str]:
        """The profile ids with an entry appended before `before` that still has content."""
        ...

    def move_head(self, profile_id: str, head: AuditEntry, expected: AuditEntry) -> bool:
        """Set HEAD if it is still `expected` (seq and hash)."""
        ...

    def put_entries(self, profile_id: str, entries: list[AuditEntry]) -> None:
        """Overwrite these stored entries."""
        ...


class AuditTrail:
    def __init__(self, repository: AuditRepository) -> None:
        self._repo = repository

    def record(self, profile_id: str, change: Mapping[str, Any], position: str) -> AuditEntry | None:
        """Append `change`, unless the change at this stream position is already in the chain.
        `position` must grow with every change of one profile (a stream sequence number)."""
        for _ in range(MAX_ATTEMPTS):
            head, last_position = self._repo.head(profile_id)
            if last_position and _position_key(last_position) >= _position_key(position):
                return None  # a redelivered stream record: already chained
            entry = next_entry(head, change)
            if self._repo.append(profile_id, entry, position, head.seq if head else 0):
                return entry
        raise RuntimeError(f"could not append to the audit chain of {profile_id}")

    def migrate(self, profile_id: str) -> MigrationOutcome:
        """Rewrite a verified format-1 chain in the current format (domain/audit.py)."""
        for _ in range(MAX_ATTEMPTS):
            head, _ = self._repo.head(profile_id)
            entries = self._repo.entries(profile_id)
            if head is None and not entries:
                return "missing"
            if (
                head is not None
                and head.format >= CURRENT_FORMAT
                and all(e.format >= CURRENT_FORMAT for e in entries)
            ):
                return "current"
            migrated = migrate_chain(entries)
            if head is None or not migrated:
                return "broken"
            if verify_chain(entries, head).ok:
                if not self._repo.move_head(profile_id, migrated[-1], head):
                    continue  # appended meanwhile: verify the longer chain
            elif migrated[-1].hash != head.hash:
                return "broken"  # neither a verified chain nor one this migration began
            self._repo.put_entries(profile_id, [m for m, e in zip(migrated, entries, strict=True) if m != e])
            return "migrated"
        raise RuntimeError(f"the audit chain of {profile_id} kept growing while it was migrated")

    def migrate_all(self) -> dict[str, int]:
        """Every chain still in an older format, migrated; counts per outcome."""
        counts: dict[str, int] = {}
        for profile_id in self._repo.chains_before(CURRENT_FORMAT):
            outcome = self.migrate(profile_id)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "broken":
                log.error("audit chain broken: left as it is", extra={"profile_id": profile_id})
        return counts

    def erase(self, profile_id: str, change: Mapping[str, Any]) -> list[int]:
        """Record an erasure (`domain.audit.erasure_change`) and remove the content of every entry
        before it, keeping their digests: the chain still verifies. Idempotent, and safe to run
        from the erasure run and the audit function alike: entries whose content is still there
        and that no erasure entry names yet get one more erasure entry; entries named but not yet
        emptied (an interrupted run) are emptied. Returns the redacted seqs."""
        return self._redact(profile_id, change, lambda _: True)

    def expire(self, profile_id: str, before: str) -> list[int]:
        """Retention: remove the content of the entries appended before `before` (ISO 8601,
        UTC), recorded by an `expired` entry; entries without an append time are kept."""
        return self._redact(profile_id, expiry_change(before, []), lambda e: "" < e.recorded_at < before)

    def expire_all(self, before: str) -> int:
        """The retention sweep: every chain's content appended before `before` removed (the
        chains stay verifiable); the number of entries redacted."""
        redacted = 0
        for profile_id in self._repo.chains_with_content_before(before):
            redacted += len(self.expire(profile_id, before))
        return redacted

    def _redact(
        self, profile_id: str, change: Mapping[str, Any], due: Callable[[AuditEntry], bool]
    ) -> list[int]:
        if self.migrate(profile_id) == "broken":
            log.error("audit chain broken before a redaction; its content is removed all the same")
        for _ in range(MAX_ATTEMPTS):
            head, position = self._repo.head(profile_id)
            entries = self._repo.entries(profile_id)
            covered = {n for entry in entries for n in _redacted_by(entry)}
            unfinished = [e.without_content() for e in entries if e.seq in covered and e.change_json]
            if unfinished:
                self._repo.put_entries(profile_id, unfinished)
            uncovered = [
                e.seq
                for e in entries
                if e.change_json and _kind(e) not in REDACTING and e.seq not in covered and due(e)
            ]
            if not uncovered:
                return sorted(covered)
            entry = next_entry(head, {**change, "redacted": uncovered})
            # the stream position stays: this entry answers no stream record of its own
            if self._repo.append(profile_id, entry, position, head.seq if head else 0):
                self._repo.put_entries(
                    profile_id, [e.without_content() for e in entries if e.seq in set(uncovered)]
                )
                return sorted(covered | set(uncovered))
        raise RuntimeError(f"could not record the redaction in the audit chain of {profile_id}")

    def verify(self, profile_id: str) -> ChainReport:
        """Verify the entries against HEAD. Entries and HEAD cannot be read in one snapshot, so
        HEAD is read before and after the entries: an append in between would otherwise look
        like an entry beyond HEAD or a missing newest entry. Read again until HEAD holds still."""
        head, _ = self._repo.head(profile_id)
        for _ in range(MAX_ATTEMPTS):
            entries = self._repo.entries(profile_id)
            head_after, _ = self._repo.head(profile_id)
            if head_after == head:
                return verify_chain(entries, head)
            head = head_after
        raise RuntimeError(f"the audit chain of {profile_id} kept growing while it was verified")


def _position_key(position: str) -> tuple[int, str]:
    """Stream positions are decimal strings of varying length: compare them as numbers."""
    head, _, sub = position.partition("/")
    return (int(head) if head.isdigit() else -1, sub)


def _redacted_by(entry: AuditEntry) -> list[int]:
    if _kind(entry) not in REDACTING:
        return []
    return [n for n in json.loads(entry.change_json).get("redacted") or [] if isinstance(n, int)]


def _kind(entry: AuditEntry) -> str | None:
    if not entry.change_json:
        return None
    try:
        change = json.loads(entry.change_json)
    except ValueError:
        return None
    return change.get("kind") if isinstance(change, dict) else None
