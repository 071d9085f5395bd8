"""Change data capture through `scrm local run`: a real MariaDB's binlog streamed by the local
bridge (as DMS would) into CdcStream, and the scheduled incremental pull, end in profiles,
orders and timelines within seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cdc_factories import SELLER, TID, trade
from tests.e2e.conftest import RunningStack, start_local_stack
from tests.mariadb import MariaDB
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mariadb(mariadb: MariaDB) -> MariaDB:
    """The suite's private MariaDB with the 聚石塔 and POS schemas loaded."""
    mariadb.run_sql_file(ROOT / "config" / "jdp_tb_trade.sql")
    mariadb.run_sql_file(ROOT / "config" / "pos_schema.sql")
    return mariadb


@pytest.fixture(scope="module")
def stack(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    rules = json.loads((ROOT / "config" / "rules.dev.json").read_text())
    rules["incremental_pull"] = [
        {"table": "pos.members", "primary_key": ["member_no"], "last_modified_column": "updated_at"},
        {"table": "pos.stock", "primary_key": ["store", "sku"], "last_modified_column": "updated_at"},
    ]
    path = tmp_path_factory.mktemp("rules") / "rules.json"
    path.write_text(json.dumps(rules))
    env = {
        "SCRM_CDC_MYSQL_URL": mariadb.url("sys_info"),
        "SCRM_CDC_CHECKPOINT": str(tmp_path_factory.mktemp("cdc") / "checkpoint.json"),
        "SCRM_RULES_FILE": str(path),
    }
    with start_local_stack(env) as running:
        yield running


def by_phone(stack: RunningStack, phone: str) -> dict | None:
    status, found = stack.call("GET", f"/profiles?type=phone&value={phone}")
    return found if status == 200 else None


def orders(stack: RunningStack, profile_id: str) -> list[dict]:
    status, timeline = stack.call("GET", f"/profiles/{profile_id}/timeline")
    assert status == 200
    return [e for e in timeline["entries"] if e["kind"] == "order"]


def write_trade(mariadb: MariaDB, status: str, modified: str, insert: bool) -> None:
    fields = trade(status, receiver_mobile="13700137000", modified=modified)
    response = json.dumps({"trade_fullinfo_get_response": {"trade": fields}}, ensure_ascii=False)
    if insert:
        mariadb.execute(
            "INSERT INTO jdp_tb_trade (tid, status, type, seller_nick, buyer_nick, created, modified, "
            "jdp_hashcode, jdp_response, jdp_created, jdp_modified) "
            "VALUES (%s, %s, 'fixed', %s, '王**', %s, %s, 'h1', %s, NOW(), NOW())",
            (fields["tid"], status, SELLER, fields["created"], modified, response),
            database="sys_info",
        )
    else:
        mariadb.execute(
            "UPDATE jdp_tb_trade SET status = %s, modified = %s, jdp_response = %s, jdp_modified = NOW() "
            "WHERE tid = %s",
            (status, modified, response, fields["tid"]),
            database="sys_info",
        )


def test_inserted_and_updated_trades_reach_the_buyers_profile_and_timeline(stack, mariadb):
    started = time.monotonic()
    write_trade(mariadb, "WAIT_SELLER_SEND_GOODS", "2026-11-11 00:00:31", insert=True)
    found = wait_for(timeout=30.0, interval=0.2, predicate=lambda: by_phone(stack, "13700137000"))
    (order,) = wait_for(timeout=30.0, interval=0.2, predicate=lambda: orders(stack, found["profile_id"]))
    assert order["data"]["status"] == "WAIT_SELLER_SEND_GOODS"
    assert time.monotonic() - started < 30  # "within seconds" (the bound only catches a stall)

    write_trade(mariadb, "TRADE_FINISHED", "2026-11-13 10:00:00", insert=False)
    updated = wait_for(
        timeout=30.0,
        interval=0.2,
        predicate=lambda: [
            o for o in orders(stack, found["profile_id"]) if o["data"]["status"] == "TRADE_FINISHED"
        ],
    )
    assert updated[0]["data"]["order_id"] == order["data"]["order_id"]
    assert found["attributes"].get("name") == "王小明"


def test_the_incremental_pull_brings_rows_of_tables_without_a_binlog_stream(stack, mariadb):
    mariadb.execute(
        "INSERT INTO pos.members (member_no, phone, name, level, store) VALUES (%s, %s, %s, %s, %s)",
        ("M-E2E-1", "13600136000", "李雷", "gold", "S017"),
    )
    pulled = stack.scrm("schedule", "IncrementalPullFunction")
    assert pulled.returncode == 0, pulled.stderr
    found = wait_for(timeout=30.0, interval=0.2, predicate=lambda: by_phone(stack, "13600136000"))
    assert found["attributes"]["name"] == "李雷"
    again = stack.scrm("schedule", "IncrementalPullFunction")  # nothing new: the overlap is absorbed
    assert again.returncode == 0, again.stderr


def test_a_tmall_trade_out_of_stock_at_the_warehouse_goes_to_the_nearest_store_then_the_next(stack, mariadb):
    """config/rules.dev.json: Tmall orders are fulfilled from wh-shanghai; store-xuhui is nearer
    to it than store-pudong."""
    tid = TID + 7_000_000
    sku = f"TM-{tid % 100_000}"
    seeds = [
        {
            "event_id": f"seed-{location}-{sku}",
            "source": "pos",
            "type": "inventory",
            "occurred_at": "2026-12-03T09:00:00+08:00",
            "inventory": {"kind": "receipt", "sku": sku, "location": location, "quantity": 3},
        }
        for location in ("store-xuhui", "store-pudong")
    ]
    status, report = stack.call("POST", "/events", {"events": seeds})
    assert status == 202, report

    fields = trade(receiver_mobile="13700137001", modified="2026-12-03 09:30:00")
    fields["tid"] = tid
    line = dict(fields["orders"]["order"][0], oid=tid + 1, sku_id=sku, num=2)
    fields["orders"] = {"order": [line]}
    response = json.dumps({"trade_fullinfo_get_response": {"trade": fields}}, ensure_ascii=False)
    mariadb.execute(
        "INSERT INTO jdp_tb_trade (tid, status, type, seller_nick, buyer_nick, created, modified, "
        "jdp_hashcode, jdp_response, jdp_created, jdp_modified) "
        "VALUES (%s, %s, 'fixed', %s, '王**', %s, %s, 'h2', %s, NOW(), NOW())",
        (tid, fields["status"], SELLER, fields["created"], fields["modified"], response),
        database="sys_info",
    )
    first_id = f"tmall:{tid}:{tid + 1}~1"

    def transfer(transfer_id: str) -> dict | None:
        status, body = stack.call("GET", f"/inventory/transfers/{transfer_id}")
        return body if status == 200 else None

    first = wait_for(timeout=60.0, interval=0.3, predicate=lambda: transfer(first_id))
    assert (first["source"], first["destination"], first["status"], first["quantity"]) == (
        "store-xuhui",
        "wh-shanghai",
        "requested",
        2,
    )
    status, rejected = stack.call("POST", f"/inventory/transfers/{first_id}/ack", {"status": "rejected"})
    assert status == 200 and rejected["status"] == "rejected"
    second = transfer(f"tmall:{tid}:{tid + 1}~2")
    assert second is not None and (second["source"], second["tried"]) == ("store-pudong", ["store-xuhui"])
    status, stock = stack.call("GET", f"/inventory/{sku}")
    available = {entry["location"]: entry["available"] for entry in stock["locations"]}
    assert available == {"store-xuhui": 2, "store-pudong": 0}  # 3 - 1 safety stock; 3 - 2 held - 1
    status, _ = stack.call("POST", f"/inventory/transfers/{first_id}/ack", {"status": "shipped"})
    assert status == 409  # a rejected instruction cannot be shipped


def test_pos_stock_rows_become_counts_of_the_stores_on_hand_stock(stack, mariadb):
    """The shipped pos.stock mapping: each row change is the POS's count for the SKU at its store,
    applied by the inventory lane; re-reading the same rows changes nothing."""
    sku = f"POS-{time.time_ns() % 10**9}"

    def on_hand() -> int | None:
        status, stock = stack.call("GET", f"/inventory/{sku}")
        if status != 200:
            return None
        found = [e["on_hand"] for e in stock["locations"] if e["location"] == "store-hangzhou"]
        return found[0] if found else None

    mariadb.execute("INSERT INTO pos.stock (store, sku, qty) VALUES ('store-hangzhou', %s, 6)", (sku,))
    assert stack.scrm("schedule", "IncrementalPullFunction").returncode == 0
    wait_for(timeout=30.0, interval=0.2, predicate=lambda: on_hand() == 6)

    mariadb.execute("UPDATE pos.stock SET qty = 4 WHERE store = 'store-hangzhou' AND sku = %s", (sku,))
    assert stack.scrm("schedule", "IncrementalPullFunction").returncode == 0
    wait_for(timeout=30.0, interval=0.2, predicate=lambda: on_hand() == 4)
    assert stack.scrm("schedule", "IncrementalPullFunction").returncode == 0  # the overlap re-read
    status, history = stack.call("GET", f"/inventory/{sku}/locations/store-hangzhou/movements")
    assert status == 200
    assert [(m["kind"], m["quantity"]) for m in history["movements"]] == [("count", 4), ("count", 6)]
    assert on_hand() == 4
