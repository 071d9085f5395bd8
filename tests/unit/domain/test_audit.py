import dataclasses
import json

from scrm_sync.adapters.memory import InMemoryAuditRepository
from scrm_sync.domain.audit import GENESIS_HASH, profile_changes, verify_chain
from scrm_sync.services.audit import AuditTrail


def chain_of(*changes):
    repo = InMemoryAuditRepository()
    trail = AuditTrail(repo)
    for i, change in enumerate(changes):
        trail.record("p1", change, f"{100 + i}/000")
    return repo, trail


def test_entries_link_to_their_predecessor_from_the_genesis_hash():
    repo, trail = chain_of({"kind": "fields", "n": 1}, {"kind": "fields", "n": 2})
    first, second = repo.entries("p1")
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert trail.verify("p1").ok


def test_a_redelivered_stream_record_is_not_chained_twice():
    repo, trail = chain_of({"kind": "fields", "n": 1})
    assert trail.record("p1", {"kind": "fields", "n": 1}, "100/000") is None
    assert trail.record("p1", {"kind": "fields", "n": 1}, "99/000") is None
    assert len(repo.entries("p1")) == 1


def test_positions_compare_as_numbers_not_text():
    _, trail = chain_of({"n": 1})
    assert trail.record("p1", {"n": 2}, "1000/000") is not None  # "1000" < "100/..." as text


def test_tampering_with_any_entry_is_caught_at_that_entry():
    repo, _ = chain_of({"n": 1}, {"n": 2}, {"n": 3})
    entries = repo.entries("p1")
    entries[1] = dataclasses.replace(entries[1], change_json='{"n":20}')
    report = verify_chain(entries, repo.head("p1")[0])
    assert (report.ok, report.first_broken_seq) == (False, 2)


def test_a_removed_entry_is_caught():
    repo, _ = chain_of({"n": 1}, {"n": 2}, {"n": 3})
    entries = repo.entries("p1")
    del entries[1]
    assert verify_chain(entries, repo.head("p1")[0]).first_broken_seq == 2


def test_a_recomputed_digest_and_hash_still_break_the_next_link():
    from scrm_sync.domain.audit import chain_hash, content_digest

    repo, _ = chain_of({"n": 1}, {"n": 2}, {"n": 3})
    entries = repo.entries("p1")
    forged = '{"n":20}'
    digest = content_digest(forged)
    entries[1] = dataclasses.replace(
        entries[1], change_json=forged, digest=digest, hash=chain_hash(entries[1].prev_hash, digest)
    )
    assert verify_chain(entries, repo.head("p1")[0]).first_broken_seq == 3


def meta(source, event_id, at="2026-11-01T00:00:00+00:00"):
    return {"k": f"k-{event_id}", "s": source, "e": event_id, "t": at}


def test_profile_changes_name_each_changed_field_with_its_source():
    old = {"v:name": "a", "m:name": meta("pos", "e1"), "v:level": "gold", "m:level": meta("mdm", "e0")}
    new = {"v:name": "b", "m:name": meta("mdm", "e2"), "v:level": "gold", "m:level": meta("mdm", "e0")}
    (change,) = profile_changes(old, new)
    assert change == {
        "kind": "fields",
        "changes": [
            {
                "field": "name",
                "old": "a",
                "new": "b",
                "source": "mdm",
                "event_id": "e2",
                "occurred_at": "2026-11-01T00:00:00+00:00",
            }
        ],
    }


def test_profile_changes_record_merges_splits_and_unlinks():
    assert profile_changes({"pk": "p2"}, {"pk": "p2", "redirect_to": "p1", "merged_by_event": "e9"}) == [
        {"kind": "merged_into", "survivor": "p1", "event_id": "e9"}
    ]
    assert profile_changes({"merged_from": ["p2"]}, {"merged_from": ["p2", "p3"]}) == [
        {"kind": "merged", "from": ["p3"]}
    ]
    unlink = {"identifier": "phone##+8613900000000", "reason": "shared", "by": "ops", "at": "t"}
    assert profile_changes({}, {"last_unlink": unlink, "pk": "p1"}) == [{"kind": "unlink", **unlink}]
    assert profile_changes(None, {"split_from": "p1"}) == [{"kind": "split", "from": "p1"}]
    assert profile_changes({"updated_at": "1"}, {"updated_at": "2"}) == []


# -- format 2: content can be erased, the chain still verifies -------------------------------------
def v1_chain(*changes):
    """A chain as format 1 wrote it (before digests)."""
    from scrm_sync.domain.audit import AuditEntry, canonical_json, chain_hash

    repo = InMemoryAuditRepository()
    previous = None
    for seq, change in enumerate(changes, start=1):
        text = canonical_json(change)
        prev_hash = previous.hash if previous else GENESIS_HASH
        previous = AuditEntry(seq, prev_hash, chain_hash(prev_hash, text), text)
        assert repo.append("p1", previous, f"{seq}/000", seq - 1)
    return repo


def test_a_format_1_chain_still_verifies_and_migrates_to_format_2_entry_for_entry():
    repo = v1_chain({"kind": "fields", "n": 1}, {"kind": "fields", "n": 2})
    trail = AuditTrail(repo)
    assert trail.verify("p1").ok
    before = repo.entries("p1")
    assert trail.migrate("p1") == "migrated"
    after = repo.entries("p1")
    assert [e.format for e in after] == [2, 2] and repo.head("p1")[0].format == 2
    assert [e.change_json for e in after] == [e.change_json for e in before]
    assert trail.verify("p1").ok
    assert trail.migrate("p1") == "current"
    trail.record("p1", {"kind": "fields", "n": 3}, "3/000")  # appends link to the rewritten chain
    assert trail.verify("p1").ok


def test_a_tampered_format_1_chain_is_not_migrated():
    repo = v1_chain({"n": 1}, {"n": 2})
    repo.chains["p1"][0] = dataclasses.replace(repo.chains["p1"][0], change_json='{"n":9}')
    assert AuditTrail(repo).migrate("p1") == "broken"
    assert [e.format for e in repo.entries("p1")] == [1, 1]


def test_an_interrupted_migration_is_finished_by_the_next_run():
    from scrm_sync.domain.audit import migrate_chain

    repo = v1_chain({"n": 1}, {"n": 2})
    old_head = repo.head("p1")[0]
    assert repo.move_head("p1", migrate_chain(repo.entries("p1"))[-1], old_head)  # then it died
    trail = AuditTrail(repo)
    assert not trail.verify("p1").ok
    assert trail.migrate("p1") == "migrated"
    assert trail.verify("p1").ok


def test_an_erasure_removes_every_entrys_content_and_the_chain_verifies():
    from scrm_sync.domain.audit import erasure_change

    repo = v1_chain({"kind": "fields", "changes": [{"field": "name", "old": None, "new": "王小明"}]})
    trail = AuditTrail(repo)
    trail.record("p1", {"kind": "fields", "changes": [{"field": "phone", "new": "+8613800138000"}]}, "2/000")
    change = erasure_change("er-1", "dev-integrator", "2026-12-03T10:00:00+00:00", ["profiles", "audit"], [])
    assert trail.erase("p1", change) == [1, 2]
    stored = repo.entries("p1")
    assert [e.change_json for e in stored[:2]] == ["", ""]  # the values are gone...
    assert "王小明" not in str(stored) and "13800138000" not in str(stored)
    assert trail.verify("p1").ok  # ...and the chain still verifies
    recorded = json.loads(stored[2].change_json)
    assert recorded == {**change, "redacted": [1, 2]}
    assert trail.erase("p1", change) == [1, 2]  # again (the audit function, a retry): nothing new
    assert len(repo.entries("p1")) == 3

    # a change chained after the erasure (a stream record older than the deletion) is erased too
    trail.record("p1", {"kind": "fields", "changes": [{"field": "name", "new": "王小明"}]}, "4/000")
    assert trail.erase("p1", change) == [1, 2, 4]
    assert "王小明" not in str(repo.entries("p1")) and trail.verify("p1").ok


def test_content_removed_without_an_erasure_entry_breaks_the_chain():
    repo, trail = chain_of({"n": 1}, {"n": 2})
    repo.chains["p1"][0] = repo.chains["p1"][0].without_content()
    report = trail.verify("p1")
    assert (report.ok, report.first_broken_seq) == (False, 1)
    assert "erasure" in (report.problem or "")


def test_retention_removes_old_content_records_it_and_the_chain_verifies():
    repo = InMemoryAuditRepository()
    trail = AuditTrail(repo)
    repo.clock = lambda: "2021-01-01T00:00:00+00:00"
    trail.record("p1", {"kind": "fields", "changes": [{"field": "name", "new": "王小明"}]}, "1/000")
    repo.clock = lambda: "2026-12-01T00:00:00+00:00"
    trail.record("p1", {"kind": "fields", "changes": [{"field": "level", "new": "gold"}]}, "2/000")
    assert repo.chains_with_content_before("2021-12-03T00:00:00+00:00") == ["p1"]

    assert trail.expire_all("2021-12-03T00:00:00+00:00") == 1
    first, second, sweep = repo.entries("p1")
    assert first.change_json == "" and "gold" in second.change_json  # only the old one
    assert json.loads(sweep.change_json) == {
        "kind": "expired",
        "before": "2021-12-03T00:00:00+00:00",
        "redacted": [1],
    }
    assert trail.verify("p1").ok
    assert trail.expire_all("2021-12-03T00:00:00+00:00") == 0  # again: nothing left to remove
    assert repo.chains_with_content_before("2021-12-03T00:00:00+00:00") == []
