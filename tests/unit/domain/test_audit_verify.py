"""Verifying an audit chain against its HEAD: truncation, removal, reordering and alteration are
caught; an id with nothing chained is reported as missing, not as intact."""

from __future__ import annotations

import dataclasses

import pytest
from scrm_sync.adapters.memory import InMemoryAuditRepository
from scrm_sync.domain.audit import AuditEntry, ChainStatus, next_entry, verify_chain
from scrm_sync.services.audit import AuditTrail


def chain(length: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for n in range(1, length + 1):
        entries.append(next_entry(entries[-1] if entries else None, {"kind": "fields", "n": n}))
    return entries


def broken_at(report) -> int | None:
    assert report.status is ChainStatus.BROKEN and not report.ok, report
    return report.first_broken_seq


def test_an_untouched_chain_matches_its_head():
    entries = chain(3)
    report = verify_chain(entries, entries[-1])
    assert (report.ok, report.status, report.entries, report.problem) == (True, ChainStatus.OK, 3, None)


def test_deleting_the_newest_entry_is_caught_by_head():
    entries = chain(3)
    report = verify_chain(entries[:2], entries[-1])
    assert broken_at(report) == 3
    assert report.problem == "entry 3 is missing: HEAD records 3 entries"


def test_deleting_a_middle_entry_is_caught():
    entries = chain(3)
    assert broken_at(verify_chain([entries[0], entries[2]], entries[-1])) == 2


def test_two_swapped_entries_are_caught():
    first, second, third = chain(3)
    assert broken_at(verify_chain([second, first, third], third)) == 1


def test_an_altered_entry_is_caught_at_that_entry():
    entries = chain(3)
    entries[1] = dataclasses.replace(entries[1], change_json='{"kind":"fields","n":20}')
    assert broken_at(verify_chain(entries, entries[-1])) == 2


def test_a_newest_entry_replaced_by_a_well_linked_forgery_disagrees_with_head():
    entries = chain(3)
    forged = next_entry(entries[1], {"kind": "fields", "n": 30})
    report = verify_chain([*entries[:2], forged], entries[-1])
    assert broken_at(report) == 3 and report.problem == "entry 3 does not match HEAD"


def test_an_entry_beyond_head_is_caught():
    entries = chain(3)
    assert broken_at(verify_chain(entries, entries[1])) == 3


def test_a_head_without_entries_is_broken():
    report = verify_chain([], chain(2)[-1])
    assert broken_at(report) == 1


def test_entries_without_a_head_are_broken():
    report = verify_chain(chain(2), None)
    assert broken_at(report) is None
    assert report.problem == "HEAD is missing: 2 entries without a head"


def test_an_id_with_neither_head_nor_entries_has_no_chain():
    report = verify_chain([], None)
    assert (report.ok, report.status, report.entries) == (False, ChainStatus.MISSING, 0)


# --- through the AuditTrail use case and the in-memory repository --------------------------------
@pytest.fixture
def recorded() -> tuple[InMemoryAuditRepository, AuditTrail]:
    repo = InMemoryAuditRepository()
    trail = AuditTrail(repo)
    for n in range(3):
        trail.record("p1", {"kind": "fields", "n": n}, f"{100 + n}/000")
    return repo, trail


def test_trail_verify_catches_a_deleted_newest_entry(recorded):
    repo, trail = recorded
    assert trail.verify("p1").ok
    del repo.chains["p1"][-1]
    assert broken_at(trail.verify("p1")) == 3


def test_trail_verify_reports_an_unknown_id_as_missing(recorded):
    _, trail = recorded
    assert trail.verify("no-such-profile").status is ChainStatus.MISSING


class AppendsWhileEntriesAreRead(InMemoryAuditRepository):
    """Another writer appends between the verifier's read of HEAD and its read of the entries."""

    def __init__(self) -> None:
        super().__init__()
        self.concurrent_appends = 0

    def entries(self, profile_id: str) -> list[AuditEntry]:
        if self.concurrent_appends < 2:
            self.concurrent_appends += 1
            AuditTrail(self).record(profile_id, {"n": "late"}, f"{900 + self.concurrent_appends}/000")
        return super().entries(profile_id)


def test_an_append_during_verification_is_not_mistaken_for_tampering():
    repo = AppendsWhileEntriesAreRead()
    trail = AuditTrail(repo)
    trail.record("p1", {"n": 1}, "100/000")
    report = trail.verify("p1")
    assert (report.ok, report.entries) == (True, 3)
