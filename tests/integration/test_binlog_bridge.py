"""The local binlog bridge: a real MariaDB (ROW binlog) streamed into moto's Kinesis as DMS
records, decoded with the same codec CdcFunction uses."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from scrm_local.aws import Clients
from scrm_local.binlog import BinlogBridge, bridge_for_stack
from scrm_local.binlog.checkpoint import BinlogPosition
from scrm_local.binlog.ddl import TableDdl, table_ddl
from scrm_local.settings import Settings
from scrm_local.stack import LocalStack
from scrm_local.template import Template
from scrm_sync.domain.cdc import ControlChange, RowChange, decode_dms

from tests.mariadb import MariaDB
from tests.waiting import wait_for

STREAM = "scrm-cdc"


class SimulatedCrash(BaseException):
    """Ends the bridge's thread like a killed process would (not caught as an ordinary error)."""


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def schema(mariadb: MariaDB) -> str:
    """A fresh database per test: the bridge streams only its own schema."""
    name = f"shop_{uuid.uuid4().hex[:8]}"
    mariadb.create_database(name)
    mariadb.execute(
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), balance DECIMAL(10,2), "
        "updated_at DATETIME(3), born DATE, opens TIME, avatar VARBINARY(16), profile JSON, "
        "tags SET('vip','new'))",
        database=name,
    )
    mariadb.execute(
        "CREATE TABLE order_lines (shop_id INT, order_no VARCHAR(20), qty INT, "
        "PRIMARY KEY (shop_id, order_no))",
        database=name,
    )
    return name


@pytest.fixture
def kinesis(in_process_aws: None) -> Any:
    client = boto3.client("kinesis", region_name="us-east-1")
    # moto's backends are process-wide: never inherit a stream another test left behind
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_stream(StreamName=STREAM, EnforceConsumerDeletion=True)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    return client


@pytest.fixture
def bridges() -> Iterator[list[BinlogBridge]]:
    """Bridges a test started; each is stopped at the end whatever happened."""
    started: list[BinlogBridge] = []
    yield started
    for bridge in started:
        bridge.stop()


# --- helpers ------------------------------------------------------------------------------------


def start_bridge(
    bridges: list[BinlogBridge],
    mariadb: MariaDB,
    schema: str,
    kinesis: Any,
    checkpoint: Path,
    **options: Any,
) -> BinlogBridge:
    bridge = BinlogBridge(mariadb.url(schema), kinesis, STREAM, checkpoint, **options)
    bridges.append(bridge)
    bridge.start()
    assert bridge.ready.wait(20), "the bridge did not fix its start position"
    return bridge


def stream_records(kinesis: Any) -> list[dict[str, Any]]:
    """Every record in the stream, shard by shard, in sequence order within a shard."""
    records = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator)
            if not response["Records"]:
                break
            records.extend(response["Records"])
            iterator = response.get("NextShardIterator")
    return records


def changes(kinesis: Any) -> list[RowChange | ControlChange]:
    """The decoded changes in commit order (transaction, then record id), whatever the shard."""
    decoded = [decode_dms(r["Data"], r["SequenceNumber"]) for r in stream_records(kinesis)]
    return sorted(decoded, key=_commit_order)


def _commit_order(change: RowChange | ControlChange) -> tuple[int, int]:
    gtid, record_id = change.position.rsplit(":", 1)
    return int(gtid.rsplit("-", 1)[1]), int(record_id)


def wait_for_changes(kinesis: Any, count: int) -> list[RowChange | ControlChange]:
    return wait_for(lambda: (found := changes(kinesis)) and len(found) >= count and found)


def commit(mariadb: MariaDB, schema: str, *statements: tuple[str, tuple[Any, ...]]) -> str:
    """Runs the statements as one transaction; returns its GTID."""
    with contextlib.closing(mariadb.connect(schema)) as connection, connection.cursor() as cursor:
        connection.begin()
        for sql, args in statements:
            cursor.execute(sql, args)
        connection.commit()
        cursor.execute("SELECT @@last_gtid")
        return str(cursor.fetchone()[0])


def insert_customer(mariadb: MariaDB, schema: str, customer_id: int, name: str = "Li Lei") -> str:
    return commit(mariadb, schema, ("INSERT INTO customers (id, name) VALUES (%s, %s)", (customer_id, name)))


def rows(found: list[RowChange | ControlChange]) -> list[RowChange]:
    return [c for c in found if isinstance(c, RowChange)]


# --- rows ---------------------------------------------------------------------------------------
@pytest.mark.mariadb
def test_row_changes_become_dms_records_in_commit_order(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    start_bridge(bridges, mariadb, schema, kinesis, tmp_path / "checkpoint.json")
    before = datetime.now(UTC).replace(microsecond=0)

    first = commit(
        mariadb,
        schema,
        (
            "INSERT INTO customers VALUES (1, '张三', 12.50, '2024-05-06 07:08:09.123', '1990-01-02', "
            "'09:30:00', 'hi', '{\"level\": \"gold\", \"points\": [1, 2]}', 'vip,new')",
            (),
        ),
    )
    second = commit(
        mariadb,
        schema,
        ("INSERT INTO customers (id, name) VALUES (2, 'Han Meimei'), (3, 'Wei Hua')", ()),
        ("UPDATE customers SET name = 'Li Lei', balance = 99.99 WHERE id = 1", ()),
        ("INSERT INTO order_lines VALUES (7, 'SO-1', 2)", ()),
    )
    third = commit(mariadb, schema, ("DELETE FROM customers WHERE id = 2", ()))

    found = wait_for_changes(kinesis, 6)
    assert len(found) == 6
    assert all(isinstance(c, RowChange) and c.schema == schema for c in found)
    assert [(c.position, c.operation, c.table) for c in found] == [
        (f"{first}:1", "insert", "customers"),
        (f"{second}:1", "insert", "customers"),
        (f"{second}:2", "insert", "customers"),
        (f"{second}:3", "update", "customers"),
        (f"{second}:4", "insert", "order_lines"),
        (f"{third}:1", "delete", "customers"),
    ]
    inserted, _, _, updated, line, deleted = rows(found)
    assert inserted.row == {
        "id": 1,
        "name": "张三",
        "balance": "12.50",
        "updated_at": "2024-05-06T07:08:09.123000",
        "born": "1990-01-02",
        "opens": "09:30:00",
        "avatar": "hi",
        "profile": {"level": "gold", "points": [1, 2]},
        "tags": ["new", "vip"],
    }
    assert inserted.before is None
    assert updated.before == inserted.row
    assert updated.row == {**inserted.row, "name": "Li Lei", "balance": "99.99"}
    assert line.row == {"shop_id": 7, "order_no": "SO-1", "qty": 2}
    assert deleted.row["id"] == 2 and deleted.before is None
    assert all(before <= c.committed_at <= datetime.now(UTC) + timedelta(seconds=1) for c in found)

    # DMS primary-key partitioning: one row's changes share a key (and so a shard).
    keys = {
        json.loads(r["Data"])["metadata"]["partition-key-value"]: r["PartitionKey"]
        for r in stream_records(kinesis)
    }
    assert all(value == key for value, key in keys.items())
    assert set(keys) == {
        f"{schema}.customers.1",
        f"{schema}.customers.2",
        f"{schema}.customers.3",
        f"{schema}.order_lines.7|SO-1",
    }


@pytest.mark.mariadb
def test_without_a_checkpoint_it_can_start_at_the_beginning_of_the_binlog(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    existing = insert_customer(mariadb, schema, 1)  # before the bridge starts
    bridge = BinlogBridge(mariadb.url(schema), kinesis, STREAM, tmp_path / "cp.json", start_from="beginning")
    bridges.append(bridge)
    bridge.start()

    found = wait_for_changes(kinesis, 3)
    assert [(type(c).__name__, c.operation, c.table) for c in found] == [
        ("ControlChange", "create-table", "customers"),
        ("ControlChange", "create-table", "order_lines"),
        ("RowChange", "insert", "customers"),
    ]
    assert found[-1].position == f"{existing}:1"


# --- DDL ----------------------------------------------------------------------------------------
@pytest.mark.mariadb
def test_table_ddl_on_the_schema_becomes_control_records(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    mariadb.create_database(other)
    start_bridge(bridges, mariadb, schema, kinesis, tmp_path / "checkpoint.json")

    statements = [
        "ALTER TABLE customers ADD COLUMN nickname VARCHAR(20)",
        "CREATE TABLE coupons (code VARCHAR(10) PRIMARY KEY)",
        "RENAME TABLE coupons TO vouchers",
        "DROP TABLE vouchers",
    ]
    gtids = [commit(mariadb, schema, (sql, ())) for sql in statements]
    mariadb.execute("CREATE TABLE elsewhere (id INT PRIMARY KEY)", database=other)  # not streamed
    after = insert_customer(mariadb, schema, 5)

    found = wait_for_changes(kinesis, 5)
    controls = [c for c in found if isinstance(c, ControlChange)]
    assert [(c.position, c.operation, c.schema, c.table) for c in controls] == [
        (f"{gtids[0]}:1", "add-column", schema, "customers"),
        (f"{gtids[1]}:1", "create-table", schema, "coupons"),
        (f"{gtids[2]}:1", "rename-table", schema, "coupons"),
        (f"{gtids[3]}:1", "drop-table", schema, "vouchers"),
    ]
    assert controls[0].detail == {"table-def": {"statement": statements[0]}}
    (row,) = rows(found)
    assert row.position == f"{after}:1" and row.row["nickname"] is None  # the new column streams
    assert len(changes(kinesis)) == 5


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("ALTER TABLE customers ADD COLUMN z INT", [TableDdl(None, "customers", "add-column")]),
        ("ALTER TABLE `shop`.`t` ADD (a INT, b INT)", [TableDdl("shop", "t", "add-column")]),
        ("alter table t drop column z", [TableDdl(None, "t", "drop-column")]),
        ("ALTER TABLE t RENAME COLUMN a TO b", [TableDdl(None, "t", "rename-column")]),
        ("ALTER TABLE t MODIFY a BIGINT", [TableDdl(None, "t", "column-type-change")]),
        ("ALTER TABLE t RENAME TO u", [TableDdl(None, "t", "rename-table")]),
        ("ALTER TABLE t ADD c INT, DROP d", [TableDdl(None, "t", "change-columns")]),
        (
            "ALTER TABLE t ADD INDEX i (a), ADD COLUMN c VARCHAR(5) DEFAULT 'x,y'",
            [TableDdl(None, "t", "change-columns")],
        ),
        ("CREATE TABLE IF NOT EXISTS t(id INT)", [TableDdl(None, "t", "create-table")]),
        ("CREATE OR REPLACE TABLE s.t (id INT)", [TableDdl("s", "t", "create-table")]),
        (
            "DROP TABLE IF EXISTS `a`, s.`b``c` /* generated by server */",
            [TableDdl(None, "a", "drop-table"), TableDdl("s", "b`c", "drop-table")],
        ),
        (
            "RENAME TABLE a TO b, s.c TO s.d",
            [TableDdl(None, "a", "rename-table"), TableDdl("s", "c", "rename-table")],
        ),
        ("TRUNCATE t", [TableDdl(None, "t", "truncate-table")]),
        ("CREATE DATABASE shop", []),
        ("CREATE INDEX i ON t (a)", []),
        ("GRANT SELECT ON shop.* TO someone", []),
    ],
)
def test_table_ddl_names_tables_and_dms_operations(statement: str, expected: list[TableDdl]) -> None:
    assert table_ddl(statement) == expected


# --- restarts -----------------------------------------------------------------------------------
@pytest.mark.mariadb
def test_restart_resumes_at_the_checkpoint_without_a_gap(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    checkpoint = tmp_path / "state" / "checkpoint.json"
    first = start_bridge(bridges, mariadb, schema, kinesis, checkpoint)
    gtids = [insert_customer(mariadb, schema, 1)]
    wait_for_changes(kinesis, 1)

    first.stop()
    assert not first.running
    saved = json.loads(checkpoint.read_text())
    assert saved["gtid"] == gtids[0]

    gtids += [insert_customer(mariadb, schema, 2), insert_customer(mariadb, schema, 3)]  # while down
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint)
    gtids.append(insert_customer(mariadb, schema, 4))

    found = wait_for_changes(kinesis, 4)
    assert [c.position for c in found] == [f"{gtid}:1" for gtid in gtids]  # all, once each
    assert [c.row["id"] for c in rows(found)] == [1, 2, 3, 4]
    wait_for(lambda: json.loads(checkpoint.read_text())["gtid"] == gtids[-1])


@pytest.mark.mariadb
def test_a_crash_between_put_and_checkpoint_resends_identical_records(
    mariadb: MariaDB,
    schema: str,
    kinesis: Any,
    tmp_path: Path,
    bridges: list[BinlogBridge],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    crashing = BinlogBridge(mariadb.url(schema), kinesis, STREAM, checkpoint)
    crashed = threading.Event()

    def crash_before_checkpoint(_source: str, _position: BinlogPosition) -> None:
        raise SimulatedCrash

    def run_until_crash() -> None:
        try:
            crashing.run_forever(threading.Event())
        except SimulatedCrash:
            crashed.set()

    thread = threading.Thread(target=run_until_crash, daemon=True)
    thread.start()
    assert crashing.ready.wait(20)  # the start position is saved before `ready`
    monkeypatch.setattr(crashing.checkpoints, "save", crash_before_checkpoint)

    lost_checkpoint = commit(
        mariadb,
        schema,
        ("INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b')", ()),
        ("UPDATE customers SET name = 'c' WHERE id = 1", ()),
    )
    assert crashed.wait(20), "the bridge did not reach the checkpoint"
    thread.join(10)
    sent_before_crash = stream_records(kinesis)
    assert len(sent_before_crash) == 3  # put_records happened, the checkpoint did not

    later = insert_customer(mariadb, schema, 3)
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint)
    found = wait_for_changes(kinesis, 7)

    positions = [c.position for c in found]
    assert positions == [
        f"{lost_checkpoint}:1",
        f"{lost_checkpoint}:1",
        f"{lost_checkpoint}:2",
        f"{lost_checkpoint}:2",
        f"{lost_checkpoint}:3",
        f"{lost_checkpoint}:3",
        f"{later}:1",
    ]
    # The re-sent transaction is byte for byte what was sent before the crash.
    copies = Counter(r["Data"] for r in stream_records(kinesis))
    assert all(copies[r["Data"]] == 2 for r in sent_before_crash)
    # the checkpoint follows the records it covers: wait for it rather than race the bridge
    wait_for(lambda: json.loads(checkpoint.read_text())["gtid"] == later)


@pytest.mark.mariadb
def test_a_dropped_replication_connection_is_resumed_without_loss(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    start_bridge(bridges, mariadb, schema, kinesis, tmp_path / "checkpoint.json")
    gtids = [insert_customer(mariadb, schema, 1)]
    wait_for_changes(kinesis, 1)

    with contextlib.closing(mariadb.connect()) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%%'")
        dumps = [row[0] for row in cursor.fetchall()]
        assert dumps, "no replication connection to drop"
        for dump in dumps:
            cursor.execute(f"KILL {int(dump)}")

    gtids += [insert_customer(mariadb, schema, 2), insert_customer(mariadb, schema, 3)]
    found = wait_for_changes(kinesis, 3)
    assert [c.position for c in found] == [f"{gtid}:1" for gtid in gtids]


@pytest.mark.mariadb
def test_stop_interrupts_the_blocking_read_and_run_forever_honours_its_event(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    # A heartbeat far longer than the bound below: only the interrupt can end the read in time.
    bridge = BinlogBridge(mariadb.url(schema), kinesis, STREAM, tmp_path / "a.json", heartbeat=60)
    bridges.append(bridge)
    bridge.start()
    assert bridge.ready.wait(20)
    insert_customer(mariadb, schema, 1)
    wait_for_changes(kinesis, 1)  # connected and blocked on the next event
    started = time.monotonic()
    bridge.stop()
    assert not bridge.running
    assert time.monotonic() - started < 5.0

    # Without stop(), the server's heartbeat wakes the blocked read up to see the event.
    other = BinlogBridge(mariadb.url(schema), kinesis, STREAM, tmp_path / "b.json")
    stop = threading.Event()
    thread = threading.Thread(target=other.run_forever, args=(stop,), daemon=True)
    thread.start()
    assert other.ready.wait(20)
    insert_customer(mariadb, schema, 2)
    wait_for_changes(kinesis, 2)  # `other` streamed it, and now waits for the next event
    stop.set()
    thread.join(15)
    assert not thread.is_alive()


# --- group commit -------------------------------------------------------------------------------
class PutRecordsCalls:
    """The PutRecords calls the real Kinesis client makes, by their number of records (a botocore
    hook on the client: once per call, whatever the bridge itself counts)."""

    def __init__(self, kinesis: Any) -> None:
        self.sizes: list[int] = []
        kinesis.meta.events.register("before-parameter-build.kinesis.PutRecords", self._count)

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        self.sizes.append(len(params["Records"]))


def saved_positions(bridge: BinlogBridge, crash_at: int | None = None) -> list[str]:
    """The GTID states the bridge checkpoints from now on; its `crash_at`-th save crashes instead."""
    saved: list[str] = []
    save = bridge.checkpoints.save

    def spy(source: str, position: BinlogPosition) -> None:
        if crash_at is not None and len(saved) + 1 == crash_at:
            raise SimulatedCrash
        save(source, position)
        saved.append(str(position.gtid))

    bridge.checkpoints.save = spy  # type: ignore[method-assign]
    return saved


def commit_many(mariadb: MariaDB, schema: str, ids: range) -> list[str]:
    """One single-row transaction per id (autocommit INSERTs in one round trip); their GTIDs."""
    statements = ";".join(["INSERT INTO customers (id, name) VALUES (%s, %s)"] * len(ids))
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with (
        contextlib.closing(mariadb.connect(schema, client_flag=flags)) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(statements, [value for i in ids for value in (i, f"c{i}")])
        while cursor.nextset():
            pass
        cursor.execute("SELECT @@last_gtid")
        domain_server, last = str(cursor.fetchone()[0]).rsplit("-", 1)
    # nothing else commits on this module's server meanwhile: the sequence numbers are consecutive
    return [f"{domain_server}-{seq}" for seq in range(int(last) - len(ids) + 1, int(last) + 1)]


def checkpointed(checkpoint: Path) -> str:
    return str(json.loads(checkpoint.read_text())["gtid"])


def has_read(bridge: BinlogBridge, gtid: str) -> bool:
    return bridge.position is not None and bridge.position.gtid == gtid


@pytest.mark.mariadb
def test_many_small_transactions_share_a_few_put_records_calls_and_stop_sends_the_rest(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint).stop()  # fixes where to resume
    gtids = commit_many(mariadb, schema, range(600))  # while the bridge is down
    calls = PutRecordsCalls(kinesis)
    # A linger far longer than the test: only PutRecords' limits and stop() send.
    bridge = BinlogBridge(mariadb.url(schema), kinesis, STREAM, checkpoint, linger=3600)
    bridges.append(bridge)
    saved = saved_positions(bridge)
    bridge.start()

    wait_for(lambda: has_read(bridge, gtids[-1]))
    wait_for(lambda: saved == [gtids[499]])  # one full call, checkpointed after its last transaction
    assert calls.sizes == [500]
    assert checkpointed(checkpoint) == gtids[499]

    bridge.stop()  # sends the 100 collected transactions and checkpoints them
    assert calls.sizes == [500, 100]
    assert saved == [gtids[499], gtids[-1]]
    assert checkpointed(checkpoint) == gtids[-1]
    assert [c.position for c in changes(kinesis)] == [f"{gtid}:1" for gtid in gtids]


@pytest.mark.mariadb
def test_a_transaction_larger_than_one_call_is_checkpointed_after_its_last_record(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    calls = PutRecordsCalls(kinesis)
    bridge = BinlogBridge(mariadb.url(schema), kinesis, STREAM, checkpoint, linger=3600)
    bridges.append(bridge)
    bridge.start()
    assert bridge.ready.wait(20)
    start = checkpointed(checkpoint)
    saved = saved_positions(bridge)

    placeholders = ",".join(["(%s, %s)"] * 1200)
    values = tuple(value for i in range(1200) for value in (i, f"c{i}"))
    insert = "INSERT INTO customers (id, name) VALUES " + placeholders  # noqa: S608 - placeholders only
    big = commit(mariadb, schema, (insert, values))
    wait_for(lambda: has_read(bridge, big))
    wait_for(lambda: calls.sizes == [500, 500])  # two full calls at once; 200 records linger
    assert saved == []
    assert checkpointed(checkpoint) == start  # never a position inside the transaction

    bridge.stop()
    assert calls.sizes == [500, 500, 200]
    assert saved == [big]
    assert [c.position for c in changes(kinesis)] == [f"{big}:{n}" for n in range(1, 1201)]


@pytest.mark.mariadb
def test_a_crash_after_a_put_before_its_checkpoint_replays_only_the_window_after_the_checkpoint(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint).stop()
    gtids = commit_many(mariadb, schema, range(600))
    crashing = BinlogBridge(mariadb.url(schema), kinesis, STREAM, checkpoint, linger=0.2, heartbeat=0.5)
    saved = saved_positions(crashing, crash_at=2)  # the second checkpoint never lands
    crashed = threading.Event()

    def run_until_crash() -> None:
        try:
            crashing.run_forever(threading.Event())
        except SimulatedCrash:
            crashed.set()

    thread = threading.Thread(target=run_until_crash, daemon=True)
    thread.start()
    assert crashed.wait(30), "the bridge did not reach its second checkpoint"
    thread.join(10)
    (last_checkpoint,) = saved
    assert checkpointed(checkpoint) == last_checkpoint
    window = set(gtids[gtids.index(last_checkpoint) + 1 :])
    sent_before_crash = stream_records(kinesis)

    def gtid_of(record: dict[str, Any]) -> str:
        return decode_dms(record["Data"], "").position.rsplit(":", 1)[0]

    replayed = [r for r in sent_before_crash if gtid_of(r) in window]
    assert replayed, "the crash came after a PutRecords: some records were sent past the checkpoint"

    later = insert_customer(mariadb, schema, 1000)
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint)
    found = wait_for_changes(kinesis, 601 + len(replayed))

    assert {c.position for c in found} == {f"{gtid}:1" for gtid in [*gtids, later]}  # no gap
    copies = Counter(r["Data"] for r in stream_records(kinesis))
    assert len(stream_records(kinesis)) == 601 + len(replayed)
    for record in sent_before_crash:  # duplicates only after the checkpoint, byte for byte
        assert copies[record["Data"]] == (2 if gtid_of(record) in window else 1)
    wait_for(lambda: checkpointed(checkpoint) == later)


@pytest.mark.mariadb
def test_the_linger_sends_a_lone_transaction_without_more_traffic(
    mariadb: MariaDB, schema: str, kinesis: Any, tmp_path: Path, bridges: list[BinlogBridge]
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    # No heartbeat within the test: only the linger can send the transaction.
    start_bridge(bridges, mariadb, schema, kinesis, checkpoint, linger=0.1, heartbeat=3600)
    calls = PutRecordsCalls(kinesis)
    gtid = insert_customer(mariadb, schema, 1)

    (change,) = wait_for_changes(kinesis, 1)
    assert change.position == f"{gtid}:1"
    assert calls.sizes == [1]
    wait_for(lambda: checkpointed(checkpoint) == gtid)


# --- the local stack ----------------------------------------------------------------------------
CDC_PROJECT_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  CdcStream:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: 1
  CdcFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/cdc/
      Handler: app.lambda_handler
      Runtime: python3.12
      Events:
        Changes:
          Type: Kinesis
          Properties:
            Stream: !GetAtt CdcStream.Arn
            StartingPosition: LATEST
"""

# The handler runs in an execution environment of its own: it tells the test what it decoded in
# a file beside its code.
CDC_HANDLER = """\
import base64
import json
from pathlib import Path

from scrm_sync.domain.cdc import decode_dms


def lambda_handler(event, context):
    for record in event["Records"]:
        kinesis = record["kinesis"]
        change = decode_dms(base64.b64decode(kinesis["data"]), kinesis["sequenceNumber"])
        seen = {"table": change.table, "operation": change.operation, "position": change.position}
        with (Path(__file__).parent / "changes.jsonl").open("a") as file:
            file.write(json.dumps(seen) + "\\n")
    return {"batchItemFailures": []}
"""


@pytest.mark.mariadb
def test_scrm_local_run_streams_the_binlog_to_the_cdc_function(
    mariadb: MariaDB, schema: str, tmp_path: Path
) -> None:
    (tmp_path / "template.yaml").write_text(CDC_PROJECT_TEMPLATE)
    (tmp_path / "functions" / "cdc").mkdir(parents=True)
    (tmp_path / "functions" / "cdc" / "app.py").write_text(CDC_HANDLER)
    settings = Settings.from_env(
        {"SCRM_CDC_MYSQL_URL": mariadb.url(schema), "MOTO_PORT": "0", "PORT": "0"}, cwd=tmp_path
    )
    stack = LocalStack(settings).start()
    try:
        assert stack.binlog_bridge is not None and stack.binlog_bridge.ready.wait(20)
        assert "binlog" in stack.describe()
        gtid = insert_customer(mariadb, schema, 1)
        changes = tmp_path / "functions" / "cdc" / "changes.jsonl"
        (change,) = wait_for(lambda: changes.is_file() and changes.read_text().splitlines())
        assert json.loads(change) == {"table": "customers", "operation": "insert", "position": f"{gtid}:1"}
    finally:
        stack.stop()
    assert not stack.binlog_bridge.running
    assert (tmp_path / ".local-state" / "cdc-checkpoint.json").is_file()


def _stack_settings(tmp_path: Path, resources: str, **values: Any) -> Settings:
    template = tmp_path / "template.yaml"
    template.write_text(f"AWSTemplateFormatVersion: '2010-09-09'\nResources:\n{resources}")
    return Settings(template_path=template, project_root=tmp_path, stack_name="local", **values)


def test_the_stack_feeds_the_templates_cdc_stream(tmp_path: Path) -> None:
    settings = _stack_settings(
        tmp_path,
        "  CdcStream:\n    Type: AWS::Kinesis::Stream\n    Properties:\n      ShardCount: 1\n",
        cdc_mysql_url="mysql://sync:p%40ss@db.local:3307/sys_info",
        cdc_tables=("members",),
    )
    bridge = bridge_for_stack(settings, Template.load(settings), Clients("http://127.0.0.1:1"))
    assert bridge is not None
    assert bridge.stream_name == "local-CdcStream"
    assert (bridge.source.host, bridge.source.port, bridge.source.schema) == ("db.local", 3307, "sys_info")
    assert bridge.source.password == "p@ss" and "p@ss" not in repr(bridge.source)
    assert bridge.tables == {"members"}
    assert bridge.checkpoints.path == tmp_path / ".local-state" / "cdc-checkpoint.json"


def test_the_stack_does_not_start_a_bridge_without_a_cdc_stream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _stack_settings(
        tmp_path,
        "  Other:\n    Type: AWS::SQS::Queue\n",
        cdc_mysql_url="mysql://root@127.0.0.1:3306/sys_info",
    )
    with caplog.at_level(logging.ERROR):
        assert bridge_for_stack(settings, Template.load(settings), Clients("http://127.0.0.1:1")) is None
    assert "CdcStream" in caplog.text
    assert (
        bridge_for_stack(Settings.from_env({}, cwd=tmp_path), Template.load(settings), Clients("x")) is None
    )


def test_settings_read_the_cdc_variables(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SCRM_CDC_MYSQL_URL": "mysql://u:p@h:1/db",
            "SCRM_CDC_TABLES": "members, orders",
            "SCRM_CDC_CHECKPOINT": str(tmp_path / "cp.json"),
        },
        cwd=tmp_path,
    )
    assert settings.cdc_mysql_url == "mysql://u:p@h:1/db"
    assert settings.cdc_tables == ("members", "orders")
    assert settings.cdc_checkpoint == tmp_path / "cp.json"


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(ValueError, match="one database"):
        BinlogBridge("mysql://root@127.0.0.1:3306/", None, STREAM, Path("cp.json"))
