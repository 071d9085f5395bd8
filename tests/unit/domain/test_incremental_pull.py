"""The pure parts of the incremental pull: table configuration, keyset SQL, watermark arithmetic
and the paging plan, driven against an in-memory table (numeric keys, which Python orders as
MySQL does; tests/integration/test_incremental_pull.py runs the same plan against MariaDB)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sync.domain.cdc import RowChange, decode_dms
from scrm_sync.domain.incremental_pull import (
    FLOOR,
    KeysetQuery,
    PullConfigError,
    PullTable,
    TableRun,
    Watermark,
    advance_watermark,
    decode_key,
    encode_key,
    pulled_change,
    pulled_record,
)
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.table_mapping import map_change

T0 = datetime(2026, 5, 1, 12, 0, 0)


def table(**overrides) -> PullTable:
    return PullTable.model_validate(
        {"table": "pos.orders", "last_modified_column": "updated_at", **overrides}
    )


# -- configuration ----------------------------------------------------------------------------


def test_jushita_trades_need_no_configuration_beyond_the_table():
    trades = PullTable.model_validate({"table": "sys_info.jdp_tb_trade"})
    assert trades.primary_key == ("tid",)
    assert trades.last_modified_column == "jdp_modified"
    assert trades.time_zone == "+08:00"  # the push service writes Beijing time
    assert (trades.overlap_seconds, trades.batch_size, trades.max_rows_per_run) == (5, 500, 50_000)


def test_other_tables_default_to_an_id_key_but_must_name_their_last_modified_column():
    assert table().primary_key == ("id",)
    with pytest.raises(ValidationError, match="last_modified_column"):
        PullTable.model_validate({"table": "pos.orders"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"table": "orders"},  # no schema
        {"table": "pos.orders`; DROP TABLE x; --"},
        {"table": "pos.ord ers"},
        {"primary_key": []},
        {"primary_key": ["id", "ID"]},
        {"primary_key": ["store`id"]},
        {"last_modified_column": "updated_at) OR (1=1"},
        {"last_modified_column": "123"},
        {"primary_key": ["updated_at"]},  # the last-modified column cannot be part of the key
        {"batch_size": 5001},
        {"batch_size": 0},
        {"overlap_seconds": -1},
        {"max_rows_per_run": 0},
        {"time_zone": "Mars/Olympus"},
        {"unknown": 1},
    ],
)
def test_bad_table_configuration_is_refused(overrides):
    with pytest.raises(ValidationError):
        table(**overrides)


def test_start_at_with_a_zone_is_read_in_the_tables_time_zone():
    configured = table(time_zone="+08:00", start_at="2026-05-01T00:00:00Z")
    assert configured.start_at == datetime(2026, 5, 1, 8, 0, 0)


def test_rules_file_lists_tables_once():
    rules = load_rules({"incremental_pull": [{"table": "sys_info.jdp_tb_trade"}]})
    assert [t.table for t in rules.incremental_pull] == ["sys_info.jdp_tb_trade"]
    assert load_rules({}).incremental_pull == ()
    with pytest.raises(ValidationError, match="twice"):
        load_rules(
            {"incremental_pull": [{"table": "sys_info.jdp_tb_trade"}, {"table": "SYS_INFO.jdp_tb_trade"}]}
        )


def test_position_of_a_row_and_clear_errors_for_wrong_columns():
    config = table(primary_key=["store_id", "order_no"])
    row = {"Store_ID": "S1", "order_no": 7, "updated_at": T0}  # MySQL names are case-insensitive
    assert config.position_of(row) == Watermark(T0, ("S1", 7))
    assert config.position_of({**row, "updated_at": date(2026, 5, 1)}).last_modified == datetime(2026, 5, 1)
    with pytest.raises(PullConfigError, match="no column 'order_no'"):
        config.position_of({"store_id": "S1", "updated_at": T0})
    with pytest.raises(PullConfigError, match="DATETIME"):
        config.position_of({**row, "updated_at": 1714560000})
    with pytest.raises(PullConfigError, match="NULL"):
        config.position_of({**row, "order_no": None})


# -- keyset SQL -------------------------------------------------------------------------------


def test_first_page_reads_from_the_floor_in_pull_order():
    sql, params = KeysetQuery(table(), None, None, None, 500).sql()
    assert sql == (
        "SELECT * FROM `pos`.`orders` WHERE `updated_at` >= %s ORDER BY `updated_at`, `id` LIMIT %s"
    )
    assert params == (FLOOR, 500)


def test_next_page_continues_strictly_after_the_last_row_with_values_as_parameters():
    config = table(primary_key=["store_id", "order_no"])
    after = Watermark(T0, ("S'1", 7))
    sql, params = KeysetQuery(config, after, None, None, 100).sql()
    assert "S'1" not in sql and "2026" not in sql
    assert sql == (
        "SELECT * FROM `pos`.`orders` WHERE `updated_at` >= %s AND (`updated_at` > %s OR "
        "(`updated_at` = %s AND (`store_id` > %s OR (`store_id` = %s AND (`order_no` > %s))))) "
        "ORDER BY `updated_at`, `store_id`, `order_no` LIMIT %s"
    )
    assert params == (T0, T0, T0, "S'1", "S'1", 7, 100)


def test_overlap_re_read_is_bounded_by_the_watermark_inclusive():
    stored = Watermark(T0, (42,))
    sql, params = KeysetQuery(table(), None, T0 - timedelta(seconds=5), stored, 10).sql()
    assert sql == (
        "SELECT * FROM `pos`.`orders` WHERE `updated_at` >= %s AND `updated_at` <= %s AND "
        "(`updated_at` < %s OR (`updated_at` = %s AND (`id` <= %s))) ORDER BY `updated_at`, `id` LIMIT %s"
    )
    assert params == (T0 - timedelta(seconds=5), T0, T0, T0, 42, 10)


# -- watermark --------------------------------------------------------------------------------

key_values = st.one_of(
    st.integers(-(2**63), 2**64),
    st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(),
    st.dates(),
    st.binary(max_size=8),
)


@given(st.datetimes(), st.lists(key_values, min_size=1, max_size=3))
def test_watermark_survives_storage_with_its_value_types(moment, key):
    watermark = Watermark(moment, tuple(key))
    restored = Watermark.from_document(watermark.to_document())
    assert restored == watermark
    assert [type(v) for v in restored.key] == [type(v) for v in watermark.key]
    assert decode_key(encode_key(watermark.key)) == watermark.key


positions = st.builds(
    Watermark,
    st.integers(0, 50).map(lambda s: T0 + timedelta(seconds=s)),
    st.tuples(st.integers(0, 20)),
)


@given(st.lists(positions, min_size=1, max_size=20))
def test_a_watermark_never_moves_back(candidates):
    current = None
    for candidate in candidates:
        advanced = advance_watermark(current, candidate)
        if current is not None:
            assert (advanced.last_modified, advanced.key) >= (current.last_modified, current.key)
        current = advanced
    assert current == max(candidates, key=lambda w: (w.last_modified, w.key))


# -- the paging plan against an in-memory table ------------------------------------------------


def run_once(
    config: PullTable, rows: list[dict], stored: Watermark | None
) -> tuple[TableRun, list[int], list]:
    """One run of the plan; returns it, the ids sent in order, and the watermarks stored."""
    plan = TableRun(config, stored)
    ordered = sorted(rows, key=lambda r: (r["updated_at"], r["id"]))
    sent: list[int] = []
    stored_marks: list[Watermark] = []
    while (query := plan.next_query()) is not None:
        page = [r for r in ordered if query.admits(config.position_of(r))][: query.limit]
        step = plan.page_read(query, page)
        sent.extend(r["id"] for r in page)
        if step.advance_to is not None:
            stored_marks.append(step.advance_to)
    return plan, sent, stored_marks


def table_rows(draw_seconds: list[int]) -> list[dict]:
    return [{"id": i, "updated_at": T0 + timedelta(seconds=s)} for i, s in enumerate(draw_seconds)]


rows_with_ties = st.lists(st.integers(0, 8), max_size=60).map(table_rows)  # few distinct times: many ties


@settings(max_examples=300)
@given(rows_with_ties, st.integers(1, 12), st.integers(0, 10))
def test_paging_visits_every_row_exactly_once(rows, batch_size, overlap):
    config = table(batch_size=batch_size, overlap_seconds=overlap)
    plan, sent, marks = run_once(config, rows, None)
    assert Counter(sent) == Counter(r["id"] for r in rows)
    assert plan.caught_up and plan.rows_reread == 0
    if rows:
        last = max(rows, key=lambda r: (r["updated_at"], r["id"]))
        assert plan.watermark == config.position_of(last) == marks[-1]
    assert marks == sorted(marks, key=lambda w: (w.last_modified, w.key))


@settings(max_examples=300)
@given(rows_with_ties, st.integers(1, 12), st.integers(1, 25))
def test_bounded_runs_resume_from_the_watermark_without_gaps_or_repeats(rows, batch_size, max_rows):
    config = table(batch_size=batch_size, overlap_seconds=0, max_rows_per_run=max_rows)
    stored, sent_all = None, []
    for _ in range(len(rows) // max_rows + 2):
        plan, sent, _ = run_once(config, rows, stored)
        assert len(sent) <= max_rows
        stored = plan.watermark
        sent_all.extend(sent)
        if plan.caught_up:
            break
    assert plan.caught_up
    assert Counter(sent_all) == Counter(r["id"] for r in rows)


@settings(max_examples=300)
@given(rows_with_ties.filter(bool), st.integers(1, 12), st.integers(0, 10))
def test_a_run_with_nothing_new_only_re_reads_the_overlap_and_keeps_the_watermark(rows, batch_size, overlap):
    config = table(batch_size=batch_size, overlap_seconds=overlap)
    first, _, _ = run_once(config, rows, None)
    second, sent, marks = run_once(config, rows, first.watermark)
    assert first.watermark is not None
    window_start = first.watermark.last_modified - timedelta(seconds=overlap)
    expected = [r["id"] for r in rows if r["updated_at"] >= window_start] if overlap else []
    assert sorted(sent) == sorted(expected)
    assert second.rows_reread == len(expected) and second.rows_new == 0
    assert marks == [] and second.watermark == first.watermark and second.caught_up


@settings(max_examples=200)
@given(rows_with_ties.filter(bool), st.integers(1, 12), st.integers(0, 8), st.integers(0, 8))
def test_late_commits_inside_the_overlap_are_picked_up(rows, batch_size, overlap, lateness):
    config = table(batch_size=batch_size, overlap_seconds=overlap)
    first, _, _ = run_once(config, rows, None)
    assert first.watermark is not None
    # a transaction that stamped its row `lateness` seconds before the watermark commits only now
    late = {"id": len(rows), "updated_at": first.watermark.last_modified - timedelta(seconds=lateness)}
    _, sent, _ = run_once(config, [*rows, late], first.watermark)
    assert (late["id"] in sent) == (lateness <= overlap)  # older than the overlap: missed, documented


def test_an_overlap_window_larger_than_a_run_cannot_stop_the_watermark():
    rows = table_rows([0] * 40)  # a bulk update: 40 rows stamped with the same second
    config = table(batch_size=4, max_rows_per_run=10, overlap_seconds=5)
    stored, runs, seen = None, 0, set()
    while True:
        plan, sent, _ = run_once(config, rows, stored)
        runs += 1
        seen.update(sent)
        assert stored is None or plan.watermark != stored or plan.caught_up  # progress every run
        stored = plan.watermark
        if plan.caught_up:
            break
    assert seen == {r["id"] for r in rows} and runs <= 6
    assert plan.overlap_truncated


def test_start_at_skips_history_on_the_first_run():
    rows = table_rows([0, 1, 2, 3])
    _, sent, _ = run_once(table(start_at=T0 + timedelta(seconds=2)), rows, None)
    assert sent == [2, 3]


# -- rows as DMS records ----------------------------------------------------------------------


def trade_row(**overrides) -> dict:
    return {
        "tid": 3958123456789,
        "status": "WAIT_SELLER_SEND_GOODS",
        "buyer_nick": "小明",
        "payment": Decimal("199.00"),
        "pay_window": timedelta(minutes=-30, microseconds=-5),  # a TIME column
        "jdp_response": '{"trade_fullinfo_get_response": {"trade": {"tid": 3958123456789}}}',
        "jdp_modified": datetime(2026, 5, 1, 20, 0, 0),
        **overrides,
    }


def test_a_pulled_row_is_a_dms_load_record_with_a_content_position():
    trades = PullTable.model_validate({"table": "sys_info.jdp_tb_trade"})
    built = datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)
    record = pulled_record(trades, trade_row(), built)
    assert record.partition_key == "sys_info.jdp_tb_trade.3958123456789"
    change = decode_dms(record.data, "unused")
    assert isinstance(change, RowChange)
    assert (change.schema, change.table, change.operation, change.before) == (
        "sys_info",
        "jdp_tb_trade",
        "load",
        None,
    )
    assert change.committed_at == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)  # 20:00 Beijing time
    assert change.row["tid"] == 3958123456789 and change.row["buyer_nick"] == "小明"
    assert change.row["payment"] == "199.00" and change.row["pay_window"] == "-00:30:00.000005"
    assert change.row["jdp_modified"] == "2026-05-01T20:00:00"
    expected, transaction_id = pulled_change(trades, trade_row())
    assert change.position == expected.position == f"{transaction_id}:1"
    assert transaction_id.startswith("pull:") and len(transaction_id) == len("pull:") + 24


def test_the_same_row_read_twice_has_the_same_position_and_a_new_version_a_new_one():
    trades = PullTable.model_validate({"table": "sys_info.jdp_tb_trade"})
    first = pulled_change(trades, trade_row())[0].position
    reordered = dict(reversed(list(trade_row().items())))
    assert pulled_change(trades, reordered)[0].position == first
    newer = trade_row(status="TRADE_FINISHED", jdp_modified=datetime(2026, 5, 1, 20, 5))
    assert pulled_change(trades, newer)[0].position != first
    other_table = PullTable.model_validate({"table": "copy.jdp_tb_trade"})
    assert pulled_change(other_table, trade_row())[0].position != first


def test_very_long_keys_get_a_hashed_partition_key():
    config = table(primary_key=["code"])
    record = pulled_record(config, {"code": "x" * 300, "updated_at": T0}, datetime.now(UTC))
    assert len(record.partition_key) == 64


def test_a_pulled_jushita_trade_maps_through_the_cdc_table_mapping_like_a_dms_row():
    trade = {
        "tid": 3958123456789,
        "status": "WAIT_SELLER_SEND_GOODS",
        "seller_nick": "旗舰店",
        "buyer_open_uid": "AAHm5d-EAAeGwJedwSHpg8bT",
        "receiver_mobile": "13800138000",
        "payment": "199.00",
        "created": "2026-05-01 19:58:00",
        "modified": "2026-05-01 20:00:00",
        "orders": {"order": [{"oid": 1, "num_iid": 2, "title": "T恤", "num": 1, "price": "199.00"}]},
    }
    row = {
        "tid": 3958123456789,
        "status": "WAIT_SELLER_SEND_GOODS",
        "seller_nick": "旗舰店",
        "modified": datetime(2026, 5, 1, 20, 0, 0),
        "jdp_response": json.dumps({"trade_fullinfo_get_response": {"trade": trade}}, ensure_ascii=False),
        "jdp_modified": datetime(2026, 5, 1, 20, 0, 3),
    }
    trades = PullTable.model_validate({"table": "sys_info.jdp_tb_trade"})
    mapping = load_rules({}).table_mapping("sys_info.jdp_tb_trade")
    assert mapping is not None
    mapped = [
        map_change(decode_dms(pulled_record(trades, row, built).data, "unused"), mapping)  # type: ignore[arg-type]
        for built in (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC))  # read twice
    ]
    (event,) = mapped[0].events
    assert (
        event.type == "order.created" and event.order is not None and event.order.order_id == "3958123456789"
    )
    assert mapped[0].event_id == mapped[1].event_id  # the overlap re-read is the same event
