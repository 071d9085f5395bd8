"""config/pos_schema.sql loads into a real MariaDB, and its rows, read back with pymysql's types
(DATETIME, DECIMAL, JSON text), map through the shipped pos.* table mappings."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest
from scrm_sync.domain.cdc import RowChange
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.table_mapping import events_for_change

from tests.mariadb import MariaDB

pytestmark = pytest.mark.mariadb
ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules({})


@pytest.fixture(scope="module")
def mariadb(mariadb: MariaDB) -> MariaDB:
    """The suite's private MariaDB with config/pos_schema.sql loaded."""
    mariadb.run_sql_file(ROOT / "config" / "pos_schema.sql")
    return mariadb


def read_row(mariadb: MariaDB, sql: str, key: str) -> dict:
    with (
        contextlib.closing(mariadb.connect("pos", cursorclass=pymysql.cursors.DictCursor)) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, (key,))
        return dict(cursor.fetchone())


def test_a_pos_member_and_order_map_to_events(mariadb):
    lines = [{"sku": "LIP-RED-01", "name": "丝绒口红", "quantity": 1, "price": "259.00", "amount": "259.00"}]
    mariadb.execute(
        "INSERT INTO members (member_no, phone, name, level, store) VALUES (%s, %s, %s, %s, %s)",
        ("M0001234", "138 0013 8000", "王小明", "gold", "SH-017"),
        database="pos",
    )
    mariadb.execute(
        "INSERT INTO orders (order_no, member_no, store, status, total, `lines`, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        ("S017-1", "M0001234", "SH-017", "paid", "259.00", json.dumps(lines), "2026-11-02 14:05:11"),
        database="pos",
    )
    committed = datetime(2026, 11, 2, 6, 5, 12, tzinfo=UTC)
    member = read_row(mariadb, "SELECT * FROM members WHERE member_no = %s", "M0001234")
    order = read_row(mariadb, "SELECT * FROM orders WHERE order_no = %s", "S017-1")
    assert isinstance(member["updated_at"], datetime) and isinstance(order["total"], Decimal)

    (profile_event,) = events_for_change(
        RowChange("pos", "members", "insert", member, None, committed, "1:1"),
        RULES.table_mapping("pos.members"),
    )
    assert profile_event.attributes == {"name": "王小明", "member_level": "gold", "home_store": "SH-017"}
    assert profile_event.occurred_at.utcoffset().total_seconds() == 8 * 3600  # naive DATETIME, Shanghai

    (order_event,) = events_for_change(
        RowChange("pos", "orders", "insert", order, None, committed, "1:2"), RULES.table_mapping("pos.orders")
    )
    assert order_event.order.total == Decimal("259.00")
    assert [line.sku for line in order_event.order.lines] == ["LIP-RED-01"]
    assert order_event.order.created_at == datetime(2026, 11, 2, 6, 5, 11, tzinfo=UTC)


def test_a_pos_stock_row_maps_to_a_count_versioned_by_its_update_time(mariadb):
    mariadb.execute(
        "INSERT INTO stock (store, sku, qty, updated_at) VALUES (%s, %s, %s, %s)",
        ("store-xuhui", "LIP-RED-01", 12, "2026-12-03 10:00:00.123456"),
        database="pos",
    )
    row = read_row(mariadb, "SELECT * FROM stock WHERE store = 'store-xuhui' AND sku = %s", "LIP-RED-01")
    committed = datetime(2026, 12, 3, 2, 0, 1, tzinfo=UTC)
    (count,) = events_for_change(
        RowChange("pos", "stock", "insert", row, None, committed, "1:3"), RULES.table_mapping("pos.stock")
    )
    assert count.type == "inventory" and count.identifiers == []
    movement = count.inventory
    assert (movement.kind, movement.sku, movement.location, movement.quantity) == (
        "count",
        "LIP-RED-01",
        "store-xuhui",
        12,
    )
    # DATETIME(6) keeps the microseconds, so two changes in one millisecond still order
    assert movement.source_version == 1_796_263_200_123_456  # 2026-12-03T02:00:00.123456Z
