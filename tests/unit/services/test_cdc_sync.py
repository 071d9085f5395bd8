"""CDC changes through CdcSync and the sync core (in-memory repository): deletes that detach
identifiers, unmapped tables, control records, and duplicates that change nothing."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryChangeLedger, InMemoryProfileRepository
from scrm_sync.domain.cdc import ControlChange, MalformedChange
from scrm_sync.domain.identifiers import normalize_identifier
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.table_mapping import map_change
from scrm_sync.services.cdc import CdcSync
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

from tests.cdc_factories import COMMITTED, change, jdp_row, pos_member, pos_order, trade

RULES = load_rules({"max_identifiers_per_type": {"default": 50}})


@pytest.fixture
def repo():
    return InMemoryProfileRepository()


class ForgetfulLedger(InMemoryChangeLedger):
    """Crashes between applying a change and recording it, for the keys it is told."""

    def __init__(self, forget: set[str] | None = None) -> None:
        super().__init__()
        self.forget = forget

    def record(self, change_key: str) -> None:
        if self.forget is None or change_key in self.forget:
            return
        super().record(change_key)


def cdc_sync(repo, rules=RULES, ledger=None):
    return CdcSync(ProfileSync(repo, lambda: rules), lambda: rules, ledger or InMemoryChangeLedger())


@pytest.fixture
def cdc(repo):
    return cdc_sync(repo)


def find(repo, type_, value, scope=None):
    return ProfileQueries(repo).find(RULES, type_, value, scope)


def test_a_deleted_member_row_takes_its_member_number_off_the_profile_and_keeps_the_rest(cdc, repo):
    cdc.apply(change("pos.members", "insert", pos_member()))
    cdc.apply(change("sys_info.jdp_tb_trade", "insert", jdp_row()))
    profile = find(repo, "member_no", "M0001234", "pos")
    outcome = cdc.apply(change("pos.members", "delete", pos_member()))
    assert outcome.applied and outcome.mapped
    assert find(repo, "member_no", "M0001234", "pos") is None
    kept = find(repo, "phone", "13800138000")
    assert kept["profile_id"] == profile["profile_id"]
    assert kept["attributes"] == profile["attributes"]
    assert {i["type"] for i in kept["identifiers"]} == {"phone", "taobao_open_uid"}
    (record,) = [r for r in repo.event_records([kept["profile_id"]]) if r.type == "identifiers.removed"]
    assert record.detached_keys == ("member_no#pos#M0001234",) and record.identifier_keys == ()


def test_a_reinserted_member_row_links_again(cdc, repo):
    cdc.apply(change("pos.members", "insert", pos_member()))
    cdc.apply(change("pos.members", "delete", pos_member()))
    cdc.apply(change("pos.members", "insert", pos_member(level="platinum")))
    profile = find(repo, "member_no", "M0001234", "pos")
    assert profile["profile_id"] == find(repo, "phone", "13800138000")["profile_id"]
    assert profile["attributes"]["member_level"] == "platinum"


def test_a_repeated_delete_changes_nothing(cdc, repo):
    cdc.apply(change("pos.members", "insert", pos_member()))
    delete = change("pos.members", "delete", pos_member())
    cdc.apply(delete)
    before = find(repo, "phone", "13800138000")
    records = len(repo.event_records([before["profile_id"]]))
    cdc.apply(delete)
    assert find(repo, "phone", "13800138000") == before
    assert len(repo.event_records([before["profile_id"]])) == records


def test_a_detach_never_lifts_an_operators_block(repo):
    cdc = cdc_sync(repo)
    cdc.apply(change("pos.members", "insert", pos_member(phone=None)))
    key = normalize_identifier("member_no", "M0001234", "pos").key
    repo.blocked.add(key)  # what an unlink leaves behind
    cdc.apply(change("pos.members", "delete", pos_member(phone=None)))
    assert key in repo.identity


def test_a_detach_removes_only_the_owner_it_resolved(repo):
    cdc_sync(repo).apply(change("pos.members", "insert", pos_member()))
    member_no = normalize_identifier("member_no", "M0001234", "pos")
    assert repo.detach_identifiers("p_someone_else", [member_no]) == []
    assert member_no.key in repo.identity


def test_order_changes_land_on_the_buyers_timeline_and_a_deleted_row_cancels(cdc, repo):
    cdc.apply(change("pos.members", "insert", pos_member()))
    cdc.apply(change("pos.orders", "insert", pos_order()))
    cdc.apply(change("pos.orders", "delete", pos_order(), committed_at=COMMITTED + timedelta(days=30)))
    profile = find(repo, "member_no", "M0001234", "pos")
    entries = ProfileQueries(repo).timeline(profile["profile_id"], 10)["entries"]
    assert [(e["data"]["type"], e["data"]["status"]) for e in entries] == [
        ("order.updated", "deleted"),
        ("order.created", "paid"),
    ]
    assert profile["attributes"]["last_store"] == "SH-017"


def test_a_trade_status_change_adds_to_the_timeline_of_the_same_buyer(cdc, repo):
    cdc.apply(change("sys_info.jdp_tb_trade", "insert", jdp_row()))
    shipped = trade("WAIT_BUYER_CONFIRM_GOODS", modified="2026-11-11 10:15:07")
    cdc.apply(change("sys_info.jdp_tb_trade", "update", jdp_row(shipped)))
    profile = find(repo, "phone", "13800138000")
    statuses = [
        e["data"]["status"] for e in ProfileQueries(repo).timeline(profile["profile_id"], 10)["entries"]
    ]
    assert statuses == ["WAIT_BUYER_CONFIRM_GOODS", "WAIT_SELLER_SEND_GOODS"]


def test_changes_of_unmapped_tables_are_skipped_and_counted_not_failed(cdc, repo):
    outcome = cdc.apply(change("pos.audit_log", "insert", {"id": 1, "note": "x"}))
    assert outcome.skipped and not outcome.mapped and outcome.applied == []
    assert repo.identity == {}


def test_control_records_come_back_to_the_caller(cdc):
    control = ControlChange(
        "pos",
        "members",
        "add-column",
        {"table-def": {"columns": {"wechat": {"type": "STRING"}}}},
        COMMITTED,
        "9:1",
    )
    outcome = cdc.apply(control)
    assert outcome.control is control and outcome.mapped and not outcome.skipped
    unmapped = cdc.apply(ControlChange("pos", "audit_log", "drop-table", {}, COMMITTED, "9:2"))
    assert unmapped.control is not None and not unmapped.mapped


def test_a_trade_that_cannot_link_is_counted_not_raised(cdc, repo):
    anonymous = trade(receiver_mobile="138****8000", buyer_open_uid=None)
    outcome = cdc.apply(change("sys_info.jdp_tb_trade", "insert", jdp_row(anonymous)))
    assert len(outcome.unlinkable) == 1 and outcome.applied == []
    blocklisted = load_rules({"identifier_blocklist": {"phone": ["13800138000"]}})
    blocked_cdc = cdc_sync(repo, blocklisted)
    outcome = blocked_cdc.apply(
        change("sys_info.jdp_tb_trade", "insert", jdp_row(trade(buyer_open_uid=None)))
    )
    assert len(outcome.unlinkable) == 1 and repo.identity == {}


def test_a_malformed_row_reaches_the_caller(cdc):
    with pytest.raises(MalformedChange):
        cdc.apply(change("sys_info.jdp_tb_trade", "insert", jdp_row(jdp_response="{not json")))


# -- property: at-least-once delivery of a stream of row changes ----------------------------------
MEMBER_NOS = ["M1", "M2", "M3"]
PHONES = ["13800000001", "13800000002", None]
ORDER_NOS = ["S-1", "S-2"]


@st.composite
def row_histories(draw):
    """Per row, its changes in source order (insert, updates, delete, insert again...), then all
    rows' changes interleaved as one stream keeps them: in order per row."""
    histories = []
    rows = [("pos.members", m) for m in MEMBER_NOS] + [("pos.orders", o) for o in ORDER_NOS]
    for table_key, key in draw(st.lists(st.sampled_from(rows), min_size=1, max_size=4, unique=True)):
        present = None
        history = []
        for _ in range(draw(st.integers(1, 5))):
            operation = draw(st.sampled_from(["update", "delete"])) if present else "insert"
            if operation == "delete":
                history.append((table_key, "delete", present, None))
                present = None
                continue
            if table_key == "pos.members":
                row = pos_member(
                    key,
                    phone=draw(st.sampled_from(PHONES)),
                    name=draw(st.sampled_from(["王", "李", None])),
                    level=draw(st.sampled_from(["gold", "silver"])),
                )
            else:
                row = pos_order(
                    key,
                    member_no=draw(st.sampled_from([*MEMBER_NOS, None])),
                    status=draw(st.sampled_from(["paid", "refunded"])),
                )
            history.append((table_key, operation, row, present))
            present = row
        histories.append(history)
    stream = []
    while any(histories):
        history = draw(st.sampled_from([h for h in histories if h]))
        stream.append(history.pop(0))
    changes = []
    for index, (table_key, operation, row, before) in enumerate(stream):
        # the row's own modified time moves on with every change (some in the same second)
        stamp = (datetime(2026, 11, 2, 14, 0) + timedelta(seconds=index // 2)).isoformat(sep=" ")
        row = {**row, "updated_at": stamp} if operation != "delete" else row
        changes.append(
            change(
                table_key,
                operation,
                row,
                before=before,
                position=f"{9100 + index}:1",
                committed_at=COMMITTED + timedelta(seconds=index),
            )
        )
    return changes


def deliver(changes, ledger):
    repo = InMemoryProfileRepository()
    cdc = cdc_sync(repo, ledger=ledger)
    for row_change in changes:
        cdc.apply(row_change)
    return snapshot(repo)


def snapshot(repo):
    """Every live profile (also those left without identifiers) with its timeline, independent of
    the generated profile ids."""
    profiles = []
    for profile_id, record in list(repo.profiles.items()):
        if record.redirect_to is not None:
            continue
        profile = repo.load(profile_id).to_dict()
        timeline = repo.timeline(repo.members(profile_id), 1000)
        profiles.append(
            json.dumps(
                {
                    "identifiers": profile["identifiers"],
                    "attributes": profile["attributes"],
                    "timeline": sorted((e["event_id"], e["data"]["status"]) for e in timeline),
                },
                sort_keys=True,
                ensure_ascii=False,
            )
        )
    return sorted(profiles)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row_histories(), st.data())
def test_a_change_applied_again_right_after_itself_changes_nothing(changes, data):
    # the sync core on its own, as when every change is applied and then the worker crashes
    # before recording it: each record comes 1..3 times in a row
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(changes), max_size=len(changes)))
    redelivered = [c for c, n in zip(changes, copies, strict=True) for _ in range(n)]
    assert deliver(redelivered, ForgetfulLedger()) == deliver(changes, ForgetfulLedger())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row_histories(), st.data())
def test_a_batch_retried_from_its_start_gives_the_profiles_of_one_delivery(changes, data):
    # a timed-out invocation: the change it was on was applied but not recorded, and Lambda
    # retries the shard from the batch's first record (DMS resends from its checkpoint alike)
    crashed_at = data.draw(st.integers(0, len(changes) - 1))
    batch_start = data.draw(st.integers(0, crashed_at))
    redelivered = changes[: crashed_at + 1] + changes[batch_start:]
    crashed = changes[crashed_at]
    ledger = ForgetfulLedger({map_change(crashed, RULES.table_mapping(crashed.table_key)).event_id})
    assert deliver(redelivered, ledger) == deliver(changes, InMemoryChangeLedger())


def test_without_the_ledger_a_replayed_old_change_would_merge_what_a_delete_separated(repo):
    # why the ledger exists: M1 (with phone P1) is deleted and re-inserted without a phone, so
    # it lives apart from P1's profile; replaying the old insert names M1 and P1 together again
    insert = change("pos.members", "insert", pos_member("M1", phone="13800000001"))
    delete = change("pos.members", "delete", pos_member("M1", phone="13800000001"))
    reinsert = change("pos.members", "insert", pos_member("M1", phone=None))
    forgetful = cdc_sync(repo, ledger=ForgetfulLedger())
    for row_change in [insert, delete, reinsert, insert]:
        forgetful.apply(row_change)
    assert find(repo, "member_no", "M1", "pos") == find(repo, "phone", "13800000001")

    remembering = cdc_sync(other := InMemoryProfileRepository())
    for row_change in [insert, delete, reinsert, insert]:
        outcome = remembering.apply(row_change)
    assert outcome.replayed and outcome.applied == []
    assert find(other, "member_no", "M1", "pos") != find(other, "phone", "13800000001")


def test_the_time_of_a_pos_member_change_is_its_own_update_time(cdc, repo):
    cdc.apply(change("pos.members", "insert", pos_member(updated_at="2026-11-02 14:05:11")))
    profile = find(repo, "member_no", "M0001234", "pos")
    assert profile["sources"]["name"] == {
        "source": "pos",
        "occurred_at": datetime(2026, 11, 2, 6, 5, 11, tzinfo=UTC).isoformat(),
    }
