"""The sync core's rules, through the ProfileSync use case with the in-memory repository."""

import pytest
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync, UnlinkableEvent

from tests.factories import event, member, openid, order_event, phone

RULES = load_rules(
    {
        "identifier_blocklist": {"phone": ["021-5555-0100"]},
        "max_identifiers_per_type": {"default": 5, "email": 2},
    }
)


@pytest.fixture
def repo():
    return InMemoryProfileRepository()


@pytest.fixture
def sync(repo):
    return ProfileSync(repo, lambda: RULES)


def profile_by_phone(repo, value):
    return ProfileQueries(repo).find(RULES, "phone", value, None)


def test_first_event_creates_a_profile_reachable_by_every_identifier(sync, repo):
    outcome = sync.apply(
        event(identifiers=[phone("138 0013 8000"), member("M1")], attributes={"name": "王小明"})
    )
    assert outcome.created
    by_phone = profile_by_phone(repo, "+86-138-0013-8000")
    by_member = ProfileQueries(repo).find(RULES, "member_no", "M1", "loyalty")
    assert by_phone == by_member
    assert by_phone["attributes"] == {"name": "王小明"}
    assert by_phone["sources"]["name"]["source"] == "pos"


def test_mdm_beats_a_later_channel_edit(sync, repo):
    sync.apply(event("mdm", at=0, attributes={"name": "王小明"}))
    outcome = sync.apply(event("wecom", at=3600, attributes={"name": "小明"}))
    assert profile_by_phone(repo, "13800138000")["attributes"]["name"] == "王小明"
    assert [c.field for c in outcome.conflicts] == ["name"]
    assert outcome.conflicts[0].winner_source == "mdm"


def test_a_later_channel_edit_beats_an_earlier_one_whatever_the_arrival_order(sync, repo):
    sync.apply(event("pos", at=20, attributes={"address": "new"}))
    sync.apply(event("erp", at=10, attributes={"address": "old"}))
    assert profile_by_phone(repo, "13800138000")["attributes"]["address"] == "new"


def test_contract_no_keeps_the_first_value_against_later_channel_writes(sync, repo):
    sync.apply(event("pos", at=0, attributes={"contract_no": "HT-1"}))
    sync.apply(event("pos", at=60, attributes={"contract_no": "HT-2"}))
    sync.apply(event("wecom", at=120, attributes={"contract_no": "HT-3"}))
    assert profile_by_phone(repo, "13800138000")["attributes"]["contract_no"] == "HT-1"


def test_only_a_higher_authority_replaces_a_write_once_field(sync, repo):
    sync.apply(event("pos", at=0, attributes={"contract_no": "HT-1"}))
    sync.apply(event("mdm", at=60, attributes={"contract_no": "HT-MDM"}))
    assert profile_by_phone(repo, "13800138000")["attributes"]["contract_no"] == "HT-MDM"


def test_explicit_null_clears_a_field_and_an_older_write_cannot_revive_it(sync, repo):
    sync.apply(event("pos", at=0, attributes={"address": "a"}))
    sync.apply(event("pos", at=10, attributes={"address": None}))
    sync.apply(event("pos", at=5, attributes={"address": "b"}))
    assert "address" not in profile_by_phone(repo, "13800138000")["attributes"]


def test_a_replayed_event_changes_nothing(sync, repo):
    first = event("pos", at=0, attributes={"name": "a"}, event_id="dup-1")
    sync.apply(first)
    sync.apply(event("pos", at=10, attributes={"name": "b"}))
    replay = sync.apply(first)
    assert replay.applied == [] and replay.conflicts and not replay.created
    assert profile_by_phone(repo, "13800138000")["attributes"]["name"] == "b"


def test_a_redelivered_winning_event_is_a_duplicate_not_a_conflict(sync):
    first = event("pos", at=0, attributes={"name": "a"}, event_id="dup-2")
    sync.apply(first)
    again = sync.apply(first)
    assert again.duplicates == ["name"] and again.conflicts == [] and again.applied == []


def test_identifiers_of_two_profiles_in_one_event_merge_them(sync, repo):
    a = sync.apply(event("wechat_mp", identifiers=[openid("o-1")], attributes={"nickname": "xm"}))
    b = sync.apply(event("pos", identifiers=[phone("13800138000")], attributes={"name": "王小明"}))
    assert a.profile_id != b.profile_id
    merged = sync.apply(event("wecom", at=5, identifiers=[openid("o-1"), phone("13800138000")]))
    assert merged.merged == [max(a.profile_id, b.profile_id)]
    survivor = min(a.profile_id, b.profile_id)
    profile = profile_by_phone(repo, "13800138000")
    assert profile["profile_id"] == survivor
    assert profile["attributes"] == {"name": "王小明", "nickname": "xm"}
    assert {i["type"] for i in profile["identifiers"]} == {"phone", "wechat_openid"}
    # the merged profile id still reads, redirected to the survivor
    assert ProfileQueries(repo).get(max(a.profile_id, b.profile_id))["profile_id"] == survivor


def test_a_blocklisted_phone_never_merges_two_customers(sync, repo):
    a = sync.apply(event(identifiers=[openid("o-1"), phone("021-5555-0100")], attributes={"name": "A"}))
    b = sync.apply(event(identifiers=[openid("o-2"), phone("02155550100")], attributes={"name": "B"}))
    assert a.profile_id != b.profile_id
    assert profile_by_phone(repo, "021-5555-0100") is None


def test_an_event_with_only_a_blocklisted_identifier_is_unlinkable(sync):
    with pytest.raises(UnlinkableEvent):
        sync.apply(event(identifiers=[phone("021-5555-0100")]))


def test_a_profile_never_auto_links_more_values_of_one_type_than_allowed(sync, repo):
    sync.apply(event(identifiers=[phone("13800138000"), {"type": "email", "value": "a@x.cn"}]))
    sync.apply(event(identifiers=[phone("13800138000"), {"type": "email", "value": "b@x.cn"}]))
    outcome = sync.apply(event(identifiers=[phone("13800138000"), {"type": "email", "value": "c@x.cn"}]))
    assert [i.value for i in outcome.not_linked] == ["c@x.cn"]
    emails = [i for i in profile_by_phone(repo, "13800138000")["identifiers"] if i["type"] == "email"]
    assert len(emails) == 2


def test_orders_and_interactions_land_on_the_timeline_newest_first(sync, repo):
    sync.apply(order_event("o-1", at=0))
    sync.apply(order_event("o-2", at=100))
    outcome = sync.apply(
        event("wecom", at=50, type="interaction", interaction={"kind": "message", "content": "你好"})
    )
    timeline = ProfileQueries(repo).timeline(outcome.profile_id, 10)
    assert [e["kind"] for e in timeline["entries"]] == ["order", "interaction", "order"]
    assert timeline["entries"][0]["data"]["order_id"] == "o-2"
    assert "expires_at" in timeline["entries"][1]
    sync.apply(order_event("o-2", at=100, event_id=timeline["entries"][0]["event_id"]))  # a replay
    assert ProfileQueries(repo).timeline(outcome.profile_id, 10) == timeline


def test_a_known_customer_update_needs_at_most_three_round_trips(sync, repo):
    sync.apply(event(attributes={"name": "a"}))
    before = repo.requests
    sync.apply(event(at=10, attributes={"name": "b"}))
    assert repo.requests - before <= 3


def test_unlink_splits_a_wrongly_merged_profile_back(sync, repo):
    from scrm_sync.domain.identifiers import normalize_identifier
    from scrm_sync.services.unlink import IdentityUnlink

    # a shared phone (not yet blocklisted) glues two customers together
    a = sync.apply(
        event("wechat_mp", at=0, identifiers=[openid("o-a"), phone("13900000000")], attributes={"name": "A"})
    )
    sync.apply(
        event("pos", at=10, identifiers=[member("M-A"), openid("o-a")], attributes={"member_level": "gold"})
    )
    sync.apply(
        event(
            "wechat_mp",
            at=20,
            identifiers=[openid("o-b"), phone("13900000000")],
            attributes={"nickname": "bb"},
        )
    )
    sync.apply(order_event("ord-b", at=30, identifiers=[openid("o-b")]))
    glued = profile_by_phone(repo, "13900000000")
    assert glued["profile_id"] == a.profile_id and len(glued["identifiers"]) == 4

    outcome = IdentityUnlink(repo).unlink(
        a.profile_id, normalize_identifier("phone", "13900000000"), "front-desk phone", "ops@brand"
    )
    queries = ProfileQueries(repo)
    kept = queries.get(a.profile_id)
    (split_id,) = outcome.split_off
    split = queries.get(split_id)
    assert {i["value"] for i in kept["identifiers"]} == {"o-a", "M-A"}
    assert kept["attributes"] == {"name": "A", "member_level": "gold"}
    assert {i["value"] for i in split["identifiers"]} == {"o-b"}
    assert split["attributes"] == {"nickname": "bb"}
    assert [e["data"]["order_id"] for e in queries.timeline(split_id, 10)["entries"]] == ["ord-b"]
    assert queries.timeline(a.profile_id, 10)["entries"] == []
    # the unlinked phone lives on alone and never glues the two together again
    assert profile_by_phone(repo, "13900000000")["profile_id"] == outcome.unlinked_profile_id
    again = sync.apply(event("pos", at=40, identifiers=[openid("o-b"), phone("13900000000"), openid("o-a")]))
    assert again.merged  # o-a and o-b are named together by this event: that is real evidence
    sync.apply(event("pos", at=50, identifiers=[phone("13900000000"), member("M-Z")]))
    assert ProfileQueries(repo).find(RULES, "member_no", "M-Z", "loyalty")["profile_id"] not in {
        a.profile_id,
        split_id,
        outcome.unlinked_profile_id,
    }


# -- the batch-staged path --------------------------------------------------------------------
class CountingRepository(InMemoryProfileRepository):
    """Counts identity reads, and can fail the batch's evidence write or its identity read."""

    def __init__(self):
        super().__init__()
        self.owner_reads = 0
        self.fail_owner_reads = 0
        self.fail_evidence = False

    def owners(self, identifier_keys):
        self.owner_reads += 1
        if self.fail_owner_reads:
            self.fail_owner_reads -= 1
            raise RuntimeError("throttled")
        return super().owners(identifier_keys)

    def record_events(self, entries):
        if self.fail_evidence:
            raise RuntimeError("throttled")
        super().record_events(entries)


def test_a_batch_reads_the_identity_graph_once_for_all_its_events():
    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    sync.apply(event(identifiers=[phone("13800000001")], attributes={"name": "A"}))
    repo.owner_reads = 0
    events = [
        event("pos", at=60 + i, identifiers=[phone("13800000001")], attributes={"city": f"c{i}"})
        for i in range(5)
    ]
    batch = sync.batch(events)
    outcomes = [batch.apply(e) for e in events]
    batch.finish()
    assert repo.owner_reads == 1  # known customer: no event read its owners again
    assert len({o.profile_id for o in outcomes}) == 1
    assert profile_by_phone(repo, "13800000001")["attributes"] == {"name": "A", "city": "c4"}


def test_a_new_customer_twice_in_one_batch_is_created_once_and_the_loser_links_to_it():
    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    first = event("pos", at=0, identifiers=[phone("13800000002")], attributes={"name": "B"})
    second = event(
        "wecom", at=10, identifiers=[phone("13800000002"), member("M2")], attributes={"city": "上海"}
    )
    batch = sync.batch([first, second])  # both see "nobody owns this phone"
    created = [batch.apply(first), batch.apply(second)]
    batch.finish()
    assert [o.created for o in created] == [True, False]  # the second lost the race and re-read
    assert created[1].profile_id == created[0].profile_id
    assert profile_by_phone(repo, "13800000002")["attributes"] == {"name": "B", "city": "上海"}
    assert (
        ProfileQueries(repo).find(RULES, "member_no", "M2", "loyalty")["profile_id"] == created[0].profile_id
    )


def test_evidence_is_written_at_the_end_and_a_failed_write_names_every_event_of_the_batch():
    from scrm_sync.services.sync import EvidenceNotWritten

    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    events = [
        event("pos", at=i, identifiers=[phone(f"1380000001{i}")], attributes={"name": "C"}) for i in range(3)
    ]
    batch = sync.batch(events)
    for e in events:
        batch.apply(e)
    profile = repo.load(profile_by_phone(repo, "13800000010")["profile_id"])
    assert profile is not None and not repo.event_records([profile.profile_id])  # not yet
    repo.fail_evidence = True
    with pytest.raises(EvidenceNotWritten) as failed:
        batch.finish()
    assert failed.value.event_keys == {e.idempotency_key for e in events}

    repo.fail_evidence = False  # the queue delivers them again: fields are duplicates, evidence lands
    retry = sync.batch(events)
    outcomes = [retry.apply(e) for e in events]
    retry.finish()
    assert all(o.duplicates and not o.applied for o in outcomes)
    assert [r.event_id for r in repo.event_records([profile.profile_id])] == [events[0].event_id]


def test_a_failed_batch_identity_read_lets_each_event_read_its_own():
    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    events = [
        event("pos", at=i, identifiers=[phone(f"1380000002{i}")], attributes={"name": "D"}) for i in range(3)
    ]
    repo.fail_owner_reads = 1
    batch = sync.batch(events)
    assert all(batch.apply(e).created for e in events)
    batch.finish()
    assert repo.owner_reads == 1 + len(events)


def test_one_event_fails_with_its_own_identity_read():
    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    repo.fail_owner_reads = 1
    with pytest.raises(RuntimeError, match="throttled"):
        sync.apply(event(identifiers=[phone("13800000030")]))


def test_an_event_after_a_removal_of_its_identifier_in_the_same_batch_sees_the_removal():
    """A POS row's phone removed, then a new member who took over that phone, in one batch and in
    that order: the new member must not be written onto the old profile the batch read."""
    repo = CountingRepository()
    sync = ProfileSync(repo, lambda: RULES)
    old = sync.apply(event(identifiers=[phone("13800000040"), member("OLD")], attributes={"name": "Old"}))
    removal = event(at=10, type="identifiers.removed", identifiers=[phone("13800000040")])
    newcomer = event(at=20, identifiers=[phone("13800000040")], attributes={"name": "New"})
    batch = sync.batch([removal, newcomer])
    batch.apply(removal)
    created = batch.apply(newcomer)
    batch.finish()
    assert created.created and created.profile_id != old.profile_id
    assert ProfileQueries(repo).find(RULES, "member_no", "OLD", "loyalty")["attributes"] == {"name": "Old"}
    assert profile_by_phone(repo, "13800000040")["attributes"] == {"name": "New"}
