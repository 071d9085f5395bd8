"""The pure parts of the order archive: versions, shards, rows, objects, manifests, batches."""

from __future__ import annotations

import dataclasses
import gzip
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.archive import (
    DATA_PREFIX,
    MANIFEST_PREFIX,
    Manifest,
    archive_row,
    assemble,
    data_key_of_manifest,
    decode_rows,
    encode_rows,
    manifest_for,
    manifest_key,
    object_key,
    order_from_row,
    partition_of,
    row_key,
)
from scrm_sync.domain.events import replay_event_id
from scrm_sync.domain.orders import (
    AGE_SHARDS,
    OrderState,
    age_shard,
    archive_cutoff,
    order_key,
    order_state,
    order_version,
    split_order_key,
)

from tests.archive_support import order_event

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def state(
    order_id: str = "T1", day: str = "2026-05-01", total: Decimal | None = Decimal("99.50")
) -> OrderState:
    return OrderState(
        source="youzan",
        order_id=order_id,
        profile_id="p-1",
        status="paid",
        total=total,
        currency="CNY",
        created_at=f"{day}T08:00:00+00:00",
        order_date=day,
        lines=({"sku": "A", "name": "茶叶 礼盒", "quantity": Decimal(2), "price": Decimal("49.75")},),
        occurred_at=f"{day}T08:00:00+00:00",
        event_id="e-1",
        version=order_version(datetime.fromisoformat(f"{day}T08:00:00+00:00"), "e-1"),
    )


# -- versions, keys and shards -----------------------------------------------------------------
@given(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
    st.text(min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
)
def test_versions_sort_like_time_then_event_id(a_time, b_time, a_id, b_id):
    a, b = order_version(a_time, a_id), order_version(b_time, b_id)
    assert (a < b) == ((a_time, a_id) < (b_time, b_id))


def test_a_replay_wins_over_its_original():
    assert order_version(T0, "evt-9") < order_version(T0, replay_event_id("evt-9", "run1"))


def test_a_version_is_the_same_in_any_time_zone():
    assert order_version(T0.astimezone(SHANGHAI), "e") == order_version(T0, "e")


def test_shards_are_stable_and_spread():
    keys = [order_key("youzan", f"T{i}") for i in range(2000)]
    shards = [age_shard(k) for k in keys]
    assert set(shards) == {str(n) for n in range(AGE_SHARDS)}
    assert age_shard("order#youzan#T1") == age_shard("order#youzan#T1") == "9"  # not hash(): fixed forever


@given(st.from_regex(r"[a-z][a-z0-9_\-]{0,10}", fullmatch=True), st.text(min_size=1, max_size=20))
def test_an_order_key_splits_back_into_source_and_order_id(source, order_id):
    assert split_order_key(order_key(source, order_id)) == (source, order_id)


def test_the_order_day_is_the_utc_day_of_created_at_else_of_the_event():
    created_in_shanghai = datetime(2026, 1, 1, 7, 30, tzinfo=SHANGHAI)
    with_created = order_state(order_event("T1", created=created_in_shanghai), "p-1")
    assert with_created is not None and with_created.order_date == "2025-12-31"
    without = order_state(order_event("T1", created=T0, with_created_at=False), "p-1")
    assert without is not None and without.order_date == "2026-05-01" and without.created_at is None


def test_the_cutoff_is_the_day_after_days_ago():
    assert archive_cutoff(date(2026, 11, 25), 90) == date(2026, 8, 27)


# -- rows and objects --------------------------------------------------------------------------
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**14), max_value=10**14)


@given(amounts, st.text(max_size=30))
def test_a_row_survives_the_archive_exactly(total, name):
    order = state(total=total)
    order = dataclasses.replace(order, lines=({"name": name, "quantity": total, "amount": total},))
    [row] = decode_rows(encode_rows([archive_row(order, "2026-11-25T03:00:00+00:00")]))
    back = order_from_row(row)
    assert back == order
    assert back.total == total and back.lines[0]["amount"] == total


def test_an_amount_a_float_cannot_carry_is_kept_as_text():
    huge = Decimal("123456789012345678.9")
    [row] = decode_rows(encode_rows([archive_row(state(total=huge), "t")]))
    assert order_from_row(row).total == huge


def test_objects_are_one_json_document_per_line_and_reproducible():
    rows = [archive_row(state(f"T{i}"), "2026-11-25T03:00:00+00:00") for i in range(3)]
    body = encode_rows(rows)
    assert body == encode_rows(rows)  # no timestamp in the gzip header: same rows, same sha256
    lines = gzip.decompress(body).decode().splitlines()
    assert len(lines) == 3 and all(line.startswith("{") and line.endswith("}") for line in lines)
    assert "茶叶" in lines[0]  # readable in Athena and by eye: not \\u-escaped


def test_a_damaged_object_is_refused():
    body = encode_rows([archive_row(state(), "t")])
    damaged = body[:20] + bytes([body[20] ^ 0xFF]) + body[21:]
    with pytest.raises(ValueError):
        decode_rows(damaged)
    with pytest.raises(ValueError):
        decode_rows(body[:-4])


def test_a_manifest_names_its_object_and_checks_it():
    body = encode_rows([archive_row(state(), "t")])
    key = object_key("2026-05-01", "part-run1-00001")
    manifest = manifest_for(key, "2026-05-01", body, ["order#youzan#T1"], "2026-11-25T03:00:00.000+00:00")
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    assert manifest.matches(body)
    assert not manifest.matches(body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(ValueError):
        Manifest.from_bytes(b'{"object_key": "x"}')


def test_object_keys_are_hive_partitions_and_manifests_live_outside_the_table():
    key = object_key("2026-05-01", "part-run1-00001")
    assert key == "orders/dt=2026-05-01/part-run1-00001.jsonl.gz"
    assert manifest_key(key) == "manifests/orders/dt=2026-05-01/part-run1-00001.json"
    assert not manifest_key(key).startswith(DATA_PREFIX) and manifest_key(key).startswith(MANIFEST_PREFIX)
    assert data_key_of_manifest(manifest_key(key)) == key
    assert partition_of(key) == "2026-05-01"
    with pytest.raises(ValueError):
        manifest_key("landing/x.json")


# -- batches -----------------------------------------------------------------------------------
days = st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03"])


@given(st.lists(days, max_size=60), st.integers(1, 7), st.integers(200, 5000))
def test_batching_keeps_every_order_exactly_once_in_one_day_and_within_limits(
    order_days, max_orders, max_raw
):
    orders = [state(f"T{i}", day) for i, day in enumerate(order_days)]
    batches = list(assemble(orders, max_orders, max_raw, "t"))

    members = [m.key for b in batches for m in b.members]
    assert members == [o.key for o in orders]  # every order once, in the order given
    for batch in batches:
        rows = decode_rows(batch.body)
        assert [row_key(r) for r in rows] == [m.key for m in batch.members]
        assert {r["order_date"] for r in rows} == {batch.dt}
        assert len(rows) <= max_orders
        raw = len(gzip.decompress(batch.body))
        line = max(len(gzip.decompress(encode_rows([r]))) for r in rows)
        assert raw < max_raw + line  # at most one order past the byte bound


@given(st.lists(days, max_size=60).map(sorted), st.integers(1, 7))
def test_orders_sorted_by_day_fill_batches(order_days, max_orders):
    orders = [state(f"T{i}", day) for i, day in enumerate(order_days)]
    batches = list(assemble(orders, max_orders, 10**9, "t"))
    per_day: dict[str, list[int]] = {}
    for batch in batches:
        per_day.setdefault(batch.dt, []).append(len(batch.members))
    for sizes in per_day.values():  # only a day's last batch may be short
        assert all(size == max_orders for size in sizes[:-1])
    assert len(batches) == sum(-(-order_days.count(d) // max_orders) for d in set(order_days))


def test_order_state_of_a_non_order_event_is_none():
    event = order_event("T1", created=T0)
    profile_event = event.model_copy(update={"type": "profile.updated", "order": None})
    assert order_state(profile_event, "p-1") is None
    order = order_state(event, "p-1")
    assert order is not None and order.version == order_version(T0, event.event_id)
