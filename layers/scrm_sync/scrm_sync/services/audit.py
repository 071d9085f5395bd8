"""Appending to and verifying the per-profile audit chain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..domain.audit import AuditEntry, ChainReport, next_entry, verify_chain

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
