import dataclasses

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


def test_a_recomputed_hash_still_breaks_the_next_link():
    from scrm_sync.domain.audit import chain_hash

    repo, _ = chain_of({"n": 1}, {"n": 2}, {"n": 3})
    entries = repo.entries("p1")
    forged = '{"n":20}'
    entries[1] = dataclasses.replace(
        entries[1], change_json=forged, hash=chain_hash(entries[1].prev_hash, forged)
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
