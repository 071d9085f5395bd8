"""The DynamoDB adapter behaves like the in-memory one: the same sync scenarios, run against moto
with the tables declared in template.yaml (key schemas, GSIs, streams, TTL)."""

from __future__ import annotations

import time

import pytest
from scrm_sync.adapters.dynamodb import DynamoProfileRepository
from scrm_sync.adapters.dynamodb_audit import DynamoAuditRepository
from scrm_sync.adapters.dynamodb_ledger import DynamoChangeLedger
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.identifiers import normalize_identifier
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.audit import AuditTrail
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync
from scrm_sync.services.unlink import IdentityUnlink

from tests.factories import event, member, openid, order_event, phone

RULES = load_rules(
    {"identifier_blocklist": {"phone": ["021-5555-0100"]}, "max_identifiers_per_type": {"email": 2}}
)


@pytest.fixture(params=["memory", "dynamodb"])
def repo(request):
    if request.param == "memory":
        return InMemoryProfileRepository()
    resources = request.getfixturevalue("app_resources")
    return DynamoProfileRepository(
        resources.clients("dynamodb"),
        resources.table("ProfilesTable"),
        resources.table("IdentityTable"),
        resources.table("TimelineTable"),
    )


@pytest.fixture
def sync(repo):
    return ProfileSync(repo, lambda: RULES)


def find(repo, type_, value, scope=None):
    return ProfileQueries(repo).find(RULES, type_, value, scope)


def test_precedence_tiers(sync, repo):
    sync.apply(event("mdm", at=0, attributes={"name": "MDM", "contract_no": "HT-1"}))
    sync.apply(event("pos", at=10, attributes={"name": "POS", "address": "old", "contract_no": "HT-2"}))
    sync.apply(event("erp", at=20, attributes={"address": "new", "level": 3.5}))  # same rank as pos, later
    late = event("pos", at=5, attributes={"address": "older"})
    outcome, outcome_event_id = sync.apply(late), late.event_id
    profile = find(repo, "phone", "13800138000")
    assert profile["attributes"] == {"name": "MDM", "contract_no": "HT-1", "address": "new", "level": 3.5}
    assert profile["sources"]["address"]["source"] == "erp"
    assert [c.field for c in outcome.conflicts] == ["address"]
    # each lost write is recorded with the event, for the conflict rate and a later recommender
    (record,) = [r for r in repo.event_records([profile["profile_id"]]) if r.event_id == outcome_event_id]
    assert record.conflicts == (
        {
            "field": "address",
            "winner_source": "erp",
            "winner_occurred_at": "2026-11-01T08:00:20+00:00",
            "loser_source": "pos",
            "loser_occurred_at": "2026-11-01T08:00:05+00:00",
        },
    )


def test_merge_redirect_and_identifier_limits(sync, repo):
    a = sync.apply(event("wechat_mp", identifiers=[openid("o-1")], attributes={"nickname": "xm"}))
    b = sync.apply(event("pos", identifiers=[phone("13800138000"), member("M1")], attributes={"name": "王"}))
    merged = sync.apply(event("wecom", at=5, identifiers=[openid("o-1"), phone("13800138000")]))
    survivor, loser = sorted([a.profile_id, b.profile_id])
    assert merged.profile_id == survivor and merged.merged == [loser]
    profile = find(repo, "member_no", "M1", "loyalty")
    assert profile["profile_id"] == survivor
    assert profile["attributes"] == {"name": "王", "nickname": "xm"}
    assert ProfileQueries(repo).get(loser)["profile_id"] == survivor
    for i, email in enumerate(["a@x.cn", "b@x.cn", "c@x.cn"]):
        out = sync.apply(
            event(at=10 + i, identifiers=[phone("13800138000"), {"type": "email", "value": email}])
        )
    assert [i.value for i in out.not_linked] == ["c@x.cn"]


def test_blocklisted_phone_never_merges(sync, repo):
    a = sync.apply(event(identifiers=[openid("o-1"), phone("021-5555-0100")]))
    b = sync.apply(event(identifiers=[openid("o-2"), phone("021 5555 0100")]))
    assert a.profile_id != b.profile_id and find(repo, "phone", "02155550100") is None


def test_timeline_newest_first_and_replays_are_harmless(sync, repo):
    sync.apply(order_event("o-1", at=0, event_id="ord-1"))
    sync.apply(order_event("o-2", at=100, event_id="ord-2"))
    out = sync.apply(
        event("wecom", at=50, type="interaction", interaction={"kind": "message", "content": "hi"})
    )
    sync.apply(order_event("o-2", at=100, event_id="ord-2"))
    entries = ProfileQueries(repo).timeline(out.profile_id, 10)["entries"]
    assert [e["kind"] for e in entries] == ["order", "interaction", "order"]
    assert entries[0]["data"]["total"] == "99.50"


def test_unlink_splits_back(sync, repo):
    a = sync.apply(
        event("wechat_mp", at=0, identifiers=[openid("o-a"), phone("13900000000")], attributes={"name": "A"})
    )
    sync.apply(
        event("wechat_mp", at=20, identifiers=[openid("o-b"), phone("13900000000")], attributes={"nick": "B"})
    )
    sync.apply(order_event("ord-b", at=30, identifiers=[openid("o-b")]))
    outcome = IdentityUnlink(repo).unlink(
        a.profile_id, normalize_identifier("phone", "13900000000"), "front-desk phone", "ops"
    )
    queries = ProfileQueries(repo)
    (split_id,) = outcome.split_off
    assert queries.get(a.profile_id)["attributes"] == {"name": "A"}
    assert queries.get(split_id)["attributes"] == {"nick": "B"}
    assert [e["data"]["order_id"] for e in queries.timeline(split_id, 5)["entries"]] == ["ord-b"]
    assert find(repo, "phone", "13900000000")["profile_id"] == outcome.unlinked_profile_id


def test_identifiers_removed_detaches_links_keeps_the_profile_and_may_link_again(sync, repo):
    created = sync.apply(
        event("pos", at=0, identifiers=[member("M1"), phone("13800138000")], attributes={"name": "王"})
    )
    removed = sync.apply(event("pos", at=10, type="identifiers.removed", identifiers=[member("M1")]))
    assert removed.profile_id == created.profile_id and [i.value for i in removed.detached] == ["M1"]
    assert find(repo, "member_no", "M1", "loyalty") is None
    kept = find(repo, "phone", "13800138000")
    assert kept["profile_id"] == created.profile_id and kept["attributes"] == {"name": "王"}
    (record,) = [r for r in repo.event_records([created.profile_id]) if r.type == "identifiers.removed"]
    assert record.detached_keys == ("member_no#loyalty#M1",)
    assert (
        sync.apply(event("pos", at=11, type="identifiers.removed", identifiers=[member("M1")])).detached == []
    )
    # not a block: the identifier links again, and the per-type limit counts it once
    sync.apply(event("pos", at=20, identifiers=[member("M1"), phone("13800138000")]))
    for i in range(2, 6):
        sync.apply(event("pos", at=20 + i, identifiers=[member(f"M{i}"), phone("13800138000")]))
    members = [i for i in find(repo, "phone", "13800138000")["identifiers"] if i["type"] == "member_no"]
    assert len(members) == 5  # the detached link gave its place back


def test_a_detach_is_conditional_on_the_owner(sync, repo):
    created = sync.apply(event("pos", identifiers=[member("M1")]))
    identifier = normalize_identifier("member_no", "M1", "loyalty")
    assert repo.detach_identifiers("p_not_the_owner", [identifier]) == []
    assert find(repo, "member_no", "M1", "loyalty")["profile_id"] == created.profile_id
    assert repo.detach_identifiers(created.profile_id, [identifier]) == [identifier]
    assert repo.detach_identifiers(created.profile_id, [identifier]) == []


def test_a_detach_leaves_an_operator_block_in_place(sync, repo):
    a = sync.apply(event("pos", identifiers=[openid("o-a"), phone("13900000000")]))
    IdentityUnlink(repo).unlink(a.profile_id, normalize_identifier("phone", "13900000000"), "shared", "ops")
    owner = repo.owners([normalize_identifier("phone", "13900000000").key])
    (blocked,) = owner.values()
    assert blocked.blocked
    sync.apply(event("pos", at=5, type="identifiers.removed", identifiers=[phone("13900000000")]))
    assert repo.owners([normalize_identifier("phone", "13900000000").key]) == owner


def test_audit_chain_on_dynamodb_catches_tampering(app_resources):
    db = app_resources.clients("dynamodb")
    table = app_resources.table("AuditTable")
    trail = AuditTrail(DynamoAuditRepository(db, table))
    for i in range(3):
        trail.record("p1", {"kind": "fields", "n": i}, f"{10 + i}/000")
    assert trail.record("p1", {"kind": "fields", "n": 2}, "12/000") is None  # redelivery
    assert trail.verify("p1").ok and trail.verify("p1").entries == 3
    db.update_item(
        TableName=table,
        Key={"pk": {"S": "p1"}, "sk": {"S": "000000000002"}},
        UpdateExpression="SET change = :c",
        ExpressionAttributeValues={":c": {"S": '{"kind":"fields","n":99}'}},
    )
    report = trail.verify("p1")
    assert (report.ok, report.first_broken_seq) == (False, 2)


def test_change_ledger_on_the_idempotency_table(app_resources):
    db = app_resources.clients("dynamodb")
    table = app_resources.table("IdempotencyTable")
    ledger = DynamoChangeLedger(db, table)
    key = "pos.members:M0001234:5521900004417:1"
    assert not ledger.applied(key)
    ledger.record(key)
    ledger.record(key)  # recording again is harmless
    assert ledger.applied(key) and not ledger.applied("pos.members:M0001234:5521900004417:2")
    (item,) = [i for i in db.scan(TableName=table)["Items"] if i["id"]["S"].startswith("cdc2#")]
    assert "M0001234" not in str(item)  # the row's primary key (a member number) is not kept
    # the table's TTL removes it once nothing can replay the change (the stream keeps 7 days)
    assert time.time() + 7 * 86400 < int(item["expiration"]["N"]) <= time.time() + 8 * 86400

    # a mark written before keys were hashed still counts until it expires
    legacy = "pos.members:M0009999:5521900004417:9"
    db.put_item(TableName=table, Item={"id": {"S": "cdc#" + legacy}, "expiration": {"N": "9999999999"}})
    assert ledger.applied(legacy)


def test_a_profile_at_the_item_size_limit_refuses_new_fields_and_keeps_everything_else(sync, repo):
    """DynamoDB refuses an update past 400 KB: the event still completes (no retry, no DLQ),
    its refused fields are reported, and what the profile holds stays readable and updatable."""
    text = "长" * 1300  # ~3.9 KB of UTF-8 per value, six per event: each event is within the event cap
    outcome = None
    for n in range(60):
        attributes = {f"note_{n}_{k}": text for k in range(6)}
        outcome = sync.apply(event("pos", at=n, attributes=attributes))
        if outcome.too_large:
            break
    assert outcome is not None and outcome.too_large == sorted(attributes)
    profile = find(repo, "phone", "13800138000")
    assert profile is not None and not set(outcome.too_large) & set(profile["attributes"])
    assert profile["attributes"]["note_0_0"] == text
    # replacing a stored value with one of the same size still fits
    changed = sync.apply(event("pos", at=1000, attributes={"note_0_0": "短" * 1300}))
    assert changed.applied == ["note_0_0"] and not changed.too_large
    assert find(repo, "phone", "13800138000")["attributes"]["note_0_0"] == "短" * 1300


def test_a_batch_with_more_evidence_than_one_page_and_an_event_twice_is_stored_once(repo, sync):
    """A full queue batch leaves evidence and timeline entries for several BatchWriteItem pages,
    and SQS may hand over one message twice in the same batch: BatchWriteItem refuses a request
    naming one key twice, so the adapter must store each entry once."""
    events = [order_event(f"ord-{i}", at=i, identifiers=[phone("13800138000")]) for i in range(40)]
    batch = sync.batch(events + events[:5])
    profile_ids = {batch.apply(e).profile_id for e in events + events[:5]}
    batch.finish()
    (profile_id,) = profile_ids
    records = repo.event_records([profile_id])
    assert sorted(r.event_id for r in records) == sorted(e.event_id for e in events)
    entries = ProfileQueries(repo).timeline(profile_id, 100)["entries"]
    assert sorted(e["data"]["order_id"] for e in entries) == sorted(f"ord-{i}" for i in range(40))
