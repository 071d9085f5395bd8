"""The scheduled incremental pull against a real MariaDB (tests/mariadb.py) and the checkpoints
table, CDC stream and source secret of template.yaml (moto): rows arrive on the stream as DMS
records, only changed rows (plus the overlap) are re-sent, and the watermark only advances over
pages that were written, whatever stops a run."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.messaging import KinesisChangeStream
from scrm_sync.adapters.mysql_source import MySqlConnectionSettings, MySqlRowSource, MySqlSourceSecret
from scrm_sync.adapters.watermarks import DynamoWatermarkStore
from scrm_sync.domain.cdc import RowChange, StreamRecord, decode_dms
from scrm_sync.domain.incremental_pull import PullTable, Watermark
from scrm_sync.services.incremental_pull import IncrementalPull, PullReport
from scrm_sync.services.ports import StoredWatermark, StreamWriteFailed, WatermarkConflict

from tests.integration.conftest import AppResources
from tests.mariadb import MariaDB, mariadb_available

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(not mariadb_available(), reason="MariaDB server binaries not installed"),
]

BASE = datetime(2026, 5, 1, 9, 0, 0)
TRADES_DDL = """
CREATE TABLE jdp_tb_trade (
  tid BIGINT NOT NULL PRIMARY KEY,
  status VARCHAR(64), type VARCHAR(32), seller_nick VARCHAR(64), buyer_nick VARCHAR(64),
  created DATETIME, modified DATETIME, jdp_hashcode VARCHAR(128), jdp_response MEDIUMTEXT,
  jdp_created DATETIME, jdp_modified DATETIME,
  KEY ind_jdp_tb_trade_jdp_modified (jdp_modified)
) DEFAULT CHARSET=utf8mb4
"""


@pytest.fixture
def schema(mariadb: MariaDB) -> str:
    name = f"pull_{uuid.uuid4().hex[:8]}"
    mariadb.create_database(name)
    mariadb.execute(TRADES_DDL, database=name)
    return name


def insert_trades(mariadb: MariaDB, schema: str, modified: Sequence[datetime], first_tid: int = 1) -> None:
    rows = [
        (
            first_tid + i,
            "WAIT_SELLER_SEND_GOODS",
            "fixed",
            "旗舰店",
            f"buyer{i}",
            moment,
            moment,
            f"h{i}",
            json.dumps({"trade_fullinfo_get_response": {"trade": {"tid": first_tid + i}}}),
            moment,
            moment,
        )
        for i, moment in enumerate(modified)
    ]
    with contextlib.closing(mariadb.connect(schema)) as conn, conn.cursor() as cursor:
        cursor.executemany("INSERT INTO jdp_tb_trade VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)


class StreamReader:
    """Every record written to the stream since the last call, decoded."""

    def __init__(self, kinesis: Any, stream: str) -> None:
        self._kinesis = kinesis
        self._iterators = {
            shard["ShardId"]: kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in kinesis.list_shards(StreamName=stream)["Shards"]
        }

    def changes(self) -> list[RowChange]:
        found: list[RowChange] = []
        for shard, iterator in self._iterators.items():
            while True:
                response = self._kinesis.get_records(ShardIterator=iterator, Limit=10000)
                iterator = response["NextShardIterator"]
                for record in response["Records"]:
                    change = decode_dms(record["Data"], record["SequenceNumber"])
                    assert isinstance(change, RowChange)
                    found.append(change)
                if not response["Records"]:
                    break
            self._iterators[shard] = iterator
        return found


class FailingKinesis:
    """The moto client, except that PutRecords reports entries failed (as Kinesis does when
    throttled): every entry from call number `fail_from`, or the first `flaky` entries once."""

    def __init__(self, real: Any, fail_from: int | None = None, flaky: int = 0) -> None:
        self._real = real
        self._fail_from = fail_from
        self._flaky = flaky
        self.calls = 0

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        failed = Records if self._fail_from is not None and self.calls >= self._fail_from else []
        if self._flaky:
            failed, self._flaky = Records[: self._flaky], 0
        rest = Records[len(failed) :]
        sent = self._real.put_records(StreamName=StreamName, Records=rest) if rest else {"Records": []}
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
            for _ in failed
        ] + sent["Records"]
        return {"FailedRecordCount": len(failed), "Records": results}


class Harness:
    def __init__(self, aws: AppResources, mariadb: MariaDB, schema: str) -> None:
        self.aws = aws
        self.url = mariadb.url(schema)
        self.kinesis = aws.clients("kinesis")
        self.stream_name = aws.table("CdcStream")
        self.reader = StreamReader(self.kinesis, self.stream_name)
        self.watermarks = DynamoWatermarkStore(aws.clients("dynamodb"), aws.table("CheckpointsTable"))
        self.sleeps: list[float] = []

    def stream(self, client: Any = None) -> KinesisChangeStream:
        return KinesisChangeStream(client or self.kinesis, self.stream_name, sleep=self.sleeps.append)

    def pull(self, kinesis: Any = None, watermarks: Any = None) -> IncrementalPull:
        return IncrementalPull(
            MySqlRowSource.from_url(self.url), self.stream(kinesis), watermarks or self.watermarks
        )

    def run(
        self,
        tables: Sequence[PullTable],
        remaining: Callable[[], float] = lambda: 900.0,
        **kwargs: Any,
    ) -> PullReport:
        return self.pull(**kwargs).run(tables, remaining)


@pytest.fixture
def harness(app_resources: AppResources, mariadb: MariaDB, schema: str) -> Harness:
    return Harness(app_resources, mariadb, schema)


def trades(schema: str, **overrides: Any) -> PullTable:
    return PullTable.model_validate({"table": f"{schema}.jdp_tb_trade", **overrides})


def tids(changes: list[RowChange]) -> Counter[int]:
    return Counter(int(c.row["tid"]) for c in changes)


def test_first_run_sends_every_row_then_only_the_changed_rows_and_the_overlap(harness, mariadb, schema):
    # 1200 trades in groups of 150 sharing a jdp_modified second: page boundaries fall inside groups
    insert_trades(mariadb, schema, [BASE + timedelta(minutes=i // 150) for i in range(1200)])
    config = trades(schema)

    (first,) = harness.run([config]).tables
    changes = harness.reader.changes()
    assert tids(changes) == Counter(range(1, 1201))
    assert {c.operation for c in changes} == {"load"} and all(c.position.startswith("pull:") for c in changes)
    assert (first.rows_read, first.rows_sent, first.pages, first.caught_up) == (1200, 1200, 3, True)
    stored = harness.watermarks.load(config.table)
    assert stored is not None and stored.watermark == Watermark(BASE + timedelta(minutes=7), (1200,))
    first_positions = {int(c.row["tid"]): c.position for c in changes}

    updated = [3, 77, 600, 1100, 1199]
    mariadb.execute(
        "UPDATE jdp_tb_trade SET status = 'TRADE_FINISHED', jdp_modified = %s WHERE tid IN %s",
        (BASE + timedelta(minutes=10), updated),
        database=schema,
    )
    (second,) = harness.run([config]).tables
    changes = harness.reader.changes()
    overlap = set(range(1051, 1201)) - set(updated)  # the last group: within 5 s of the watermark
    assert tids(changes) == Counter(set(updated) | overlap)
    assert (second.rows_reread, second.rows_sent - second.rows_reread) == (len(overlap), len(updated))
    for change in changes:
        tid = int(change.row["tid"])
        if tid in overlap:  # re-read unchanged: the same position, deduplicated downstream
            assert change.position == first_positions[tid]
        else:
            assert change.row["status"] == "TRADE_FINISHED" and change.position != first_positions[tid]
    assert harness.watermarks.load(config.table).watermark == Watermark(BASE + timedelta(minutes=10), (1199,))
    # what the pull saves over a full extract, for the benchmark
    assert 0 < second.bytes_read < first.bytes_read / 4

    (third,) = harness.run([config]).tables  # nothing changed: only the overlap, watermark kept
    assert third.rows_sent == third.rows_reread == len(harness.reader.changes()) == 5
    assert harness.watermarks.load(config.table).version == stored.version + 1


def test_many_rows_sharing_one_timestamp_are_not_skipped_at_page_boundaries(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE] * 1000)
    (report,) = harness.run([trades(schema, batch_size=7)]).tables
    assert tids(harness.reader.changes()) == Counter(range(1, 1001))
    assert (report.pages, report.caught_up) == (143, True)


def test_composite_string_keys_follow_the_servers_collation(harness, mariadb, schema):
    # utf8mb4_general_ci orders a < B < c < D; Python would put B and D first
    mariadb.execute(
        "CREATE TABLE orders (store_id VARCHAR(8) NOT NULL, order_no INT NOT NULL, amount DECIMAL(10,2), "
        "updated_at DATETIME(3), PRIMARY KEY (store_id, order_no)) DEFAULT CHARSET=utf8mb4",
        database=schema,
    )
    rows = [(store, n, "9.90", BASE + timedelta(seconds=n % 2)) for store in "aBcDe" for n in range(30)]
    with contextlib.closing(mariadb.connect(schema)) as conn, conn.cursor() as cursor:
        cursor.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)
    config = PullTable.model_validate(
        {
            "table": f"{schema}.orders",
            "primary_key": ["store_id", "order_no"],
            "last_modified_column": "updated_at",
            "batch_size": 4,
        }
    )
    (report,) = harness.run([config]).tables
    sent = Counter((c.row["store_id"], int(c.row["order_no"])) for c in harness.reader.changes())
    assert sent == Counter((store, n) for store, n, _, _ in rows)
    assert report.caught_up and report.watermark == Watermark(BASE + timedelta(seconds=1), ("e", 29))


def test_a_stream_failure_keeps_the_watermark_at_the_last_page_written(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE + timedelta(seconds=i) for i in range(450)])
    config = trades(schema, batch_size=100)
    broken = FailingKinesis(harness.kinesis, fail_from=3)  # pages 1 and 2 go through, page 3 fails
    (failed,) = harness.run([config], kinesis=broken).tables
    assert failed.stopped == "stream_failed" and "ProvisionedThroughputExceededException" in str(failed.error)
    assert (failed.rows_sent, failed.rows_read) == (200, 300)
    assert harness.watermarks.load(config.table).watermark == Watermark(BASE + timedelta(seconds=199), (200,))
    assert len(harness.sleeps) == 5  # retried with backoff before giving up
    assert harness.sleeps == sorted(harness.sleeps) and max(harness.sleeps) <= 2.0
    first = tids(harness.reader.changes())
    assert first == Counter(range(1, 201))

    (resumed,) = harness.run([config]).tables
    second = tids(harness.reader.changes())
    assert resumed.caught_up and resumed.rows_reread == 6  # tids 195..200, within 5 s of the watermark
    assert set(first) | set(second) == set(range(1, 451))
    assert harness.watermarks.load(config.table).watermark == Watermark(BASE + timedelta(seconds=449), (450,))


def test_throttled_entries_are_retried_until_written(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE + timedelta(seconds=i) for i in range(20)])
    flaky = FailingKinesis(harness.kinesis, flaky=3)
    (report,) = harness.run([trades(schema)], kinesis=flaky).tables
    assert report.caught_up and flaky.calls == 2 and len(harness.sleeps) == 1
    assert tids(harness.reader.changes()) == Counter(range(1, 21))


def test_a_run_stopped_by_the_deadline_resumes_on_the_next_run(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE + timedelta(seconds=i) for i in range(450)])
    mariadb.execute("CREATE TABLE other LIKE jdp_tb_trade", database=schema)
    config, other = (
        trades(schema, batch_size=100),
        trades(schema).model_copy(update={"table": f"{schema}.other"}),
    )
    budget = iter([900.0, 900.0])  # two pages, then the deadline is near (the reserve is 10 s)
    report = harness.run([config, other], remaining=lambda: next(budget, 3.0))
    stopped, not_run = report.tables
    assert (stopped.stopped, stopped.rows_sent, stopped.caught_up) == ("deadline", 200, False)
    assert not_run.stopped == "not_run" and harness.watermarks.load(other.table) is None
    assert harness.watermarks.load(config.table).watermark == Watermark(BASE + timedelta(seconds=199), (200,))

    resumed, other_report = harness.run([config, other]).tables
    assert resumed.caught_up and other_report.caught_up and other_report.rows_sent == 0
    all_sent = tids(harness.reader.changes())
    assert set(all_sent) == set(range(1, 451)) and all_sent.total() == 450 + resumed.rows_reread


class RacingWatermarks:
    """The real store, but a competing run completes between this run's read of the watermark
    and its first advance (two overlapping scheduled invocations)."""

    def __init__(self, real: DynamoWatermarkStore, competitor: Callable[[], object]) -> None:
        self._real = real
        self._competitor: Callable[[], object] | None = competitor

    def load(self, table: str) -> StoredWatermark | None:
        stored = self._real.load(table)
        if self._competitor is not None:
            competitor, self._competitor = self._competitor, None
            competitor()
        return stored

    def advance(self, table: str, watermark: Watermark, expected_version: int) -> int:
        return self._real.advance(table, watermark, expected_version)


def test_of_two_overlapping_runs_the_one_that_loses_the_watermark_race_stops(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE + timedelta(seconds=i) for i in range(30)])
    config = trades(schema, batch_size=10)
    competing: list[PullReport] = []
    racing = RacingWatermarks(harness.watermarks, lambda: competing.append(harness.run([config])))
    loser, skipped = harness.run(
        [config, trades(schema).model_copy(update={"table": "x.y"})], watermarks=racing
    ).tables
    assert loser.stopped == "conflict" and "another pull is running" in str(loser.error)
    assert skipped.stopped == "not_run"
    assert competing[0].tables[0].caught_up
    stored = harness.watermarks.load(config.table)
    assert stored is not None and stored.watermark == Watermark(BASE + timedelta(seconds=29), (30,))
    assert set(tids(harness.reader.changes())) == set(range(1, 31))  # the loser's page: duplicates


def test_watermark_store_advances_only_from_the_version_it_read(harness):
    store, table = harness.watermarks, "sys_info.jdp_tb_trade"
    assert store.load(table) is None
    first = Watermark(BASE, (1,))
    assert store.advance(table, first, 0) == 1
    with pytest.raises(WatermarkConflict):
        store.advance(table, Watermark(BASE, (2,)), 0)
    assert store.advance(table, Watermark(BASE, (3,)), 1) == 2
    assert store.load(table) == StoredWatermark(Watermark(BASE, (3,)), 2)
    item = harness.aws.clients("dynamodb").get_item(
        TableName=harness.aws.table("CheckpointsTable"), Key={"pk": {"S": "pull#sys_info.jdp_tb_trade"}}
    )["Item"]
    assert item["version"] == {"N": "2"}


def test_a_table_that_fails_does_not_stop_the_others(harness, mariadb, schema):
    insert_trades(mariadb, schema, [BASE])
    wrong = trades(schema, last_modified_column="jdp_modifed")
    missing = PullTable.model_validate({"table": f"{schema}.no_such_table", "last_modified_column": "m"})
    report = harness.run([wrong, missing, trades(schema)])
    assert [t.stopped for t in report.tables] == ["error", "error", "caught_up"]
    assert report.tables[0].error == "OperationalError (1054)"  # unknown column; no SQL, no values
    assert report.tables[1].error == "ProgrammingError (1146)"
    assert [t.table for t in report.failed] == [wrong.table, missing.table]
    assert tids(harness.reader.changes()) == Counter([1])


def test_connection_from_the_rds_secret_and_column_values_survive(harness, mariadb, schema):
    secrets = harness.aws.clients("secretsmanager")
    secret_arn = harness.aws.table("MysqlSourceSecret")
    secrets.put_secret_value(
        SecretId=secret_arn,
        SecretString=json.dumps(
            {
                "engine": "mysql",
                "host": mariadb.host,
                "port": mariadb.port,
                "username": mariadb.user,
                "password": "",
                "dbname": schema,
            }
        ),
    )
    mariadb.execute(
        "CREATE TABLE members (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32), balance DECIMAL(10,2), "
        "opens TIME, birthday DATE, prefs JSON, note TEXT, updated_at TIMESTAMP(3) NOT NULL) "
        "DEFAULT CHARSET=utf8mb4",
        database=schema,
    )
    with contextlib.closing(mariadb.connect(schema)) as conn, conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+08:00'")  # the writer's session zone: TIMESTAMPs are stored in UTC
        cursor.execute(
            "INSERT INTO members (name, balance, opens, birthday, prefs, note, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, NULL, %s)",
            ("王小明😀", "12.30", "08:30:00", "1990-02-03", '{"vip": true}', "2026-05-01 08:00:00.250"),
        )
    settings_from_secret = MySqlSourceSecret(secret_arn, 0, SecretsProvider(boto3_client=secrets))
    assert settings_from_secret().dbname == schema
    config = PullTable.model_validate({"table": f"{schema}.members", "last_modified_column": "updated_at"})
    pull = IncrementalPull(MySqlRowSource(settings_from_secret), harness.stream(), harness.watermarks)
    (report,) = pull.run([config], lambda: 900.0).tables
    assert report.caught_up
    (change,) = harness.reader.changes()
    assert change.row == {
        "id": 1,
        "name": "王小明😀",
        "balance": "12.30",
        "opens": "08:30:00",
        "birthday": "1990-02-03",
        "prefs": '{"vip": true}',
        "note": None,
        "updated_at": "2026-05-01T00:00:00.250000",  # read in UTC whatever the server's zone
    }
    assert change.committed_at == datetime(2026, 5, 1, 0, 0, 0, 250000, tzinfo=UTC)


def test_connection_settings_from_a_url_or_the_rds_secret_format():
    from_url = MySqlConnectionSettings.parse(
        "mysql://pull%40user:p%3Ass@db.internal:3307/sys_info?ssl_ca=/opt/ca.pem"
    )
    assert (from_url.username, from_url.password, from_url.host, from_url.port) == (
        "pull@user",
        "p:ss",
        "db.internal",
        3307,
    )
    assert (from_url.dbname, from_url.ssl_ca) == ("sys_info", "/opt/ca.pem")
    rds = MySqlConnectionSettings.parse(
        '{"engine": "mysql", "host": "h", "username": "u", "password": "secret"}'
    )
    assert (rds.port, rds.dbname) == (3306, None)
    assert "secret" not in repr(rds)
    with pytest.raises(ValueError) as refused:
        MySqlConnectionSettings.parse('{"username": "u", "password": "hunter2"}')
    assert "hunter2" not in str(refused.value)


# -- property: paging through MariaDB visits every row exactly once ----------------------------


class ListStream:
    def __init__(self) -> None:
        self.records: list[StreamRecord] = []

    def put(self, records: Sequence[StreamRecord]) -> None:
        self.records.extend(records)


class MemoryWatermarks:
    def __init__(self) -> None:
        self.stored: dict[str, StoredWatermark] = {}

    def load(self, table: str) -> StoredWatermark | None:
        return self.stored.get(table)

    def advance(self, table: str, watermark: Watermark, expected_version: int) -> int:
        current = self.stored.get(table)
        if (current.version if current else 0) != expected_version:
            raise WatermarkConflict(table)
        self.stored[table] = StoredWatermark(watermark, expected_version + 1)
        return expected_version + 1


@st.composite
def keyed_rows(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    keys = draw(st.sets(st.tuples(st.sampled_from("abcd"), st.integers(0, 5)), max_size=40))
    return [(draw(st.sampled_from([s, s.upper()])), n, draw(st.integers(0, 3))) for s, n in sorted(keys)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=keyed_rows(), batch_size=st.integers(1, 9), max_rows=st.integers(1, 50))
def test_paging_through_mariadb_visits_every_row_exactly_once(mariadb, schema, rows, batch_size, max_rows):
    mariadb.execute(
        "CREATE TABLE IF NOT EXISTS ties (store CHAR(1) NOT NULL, n INT NOT NULL, m DATETIME NOT NULL, "
        "PRIMARY KEY (store, n)) DEFAULT CHARSET=utf8mb4",
        database=schema,
    )
    mariadb.execute("TRUNCATE TABLE ties", database=schema)
    with contextlib.closing(mariadb.connect(schema)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ties VALUES (%s, %s, %s)", [(s, n, BASE + timedelta(seconds=t)) for s, n, t in rows]
        )
    config = PullTable.model_validate(
        {
            "table": f"{schema}.ties",
            "primary_key": ["store", "n"],
            "last_modified_column": "m",
            "batch_size": batch_size,
            "max_rows_per_run": max_rows,
            "overlap_seconds": 0,
        }
    )
    stream = ListStream()
    pull = IncrementalPull(MySqlRowSource.from_url(mariadb.url(schema)), stream, MemoryWatermarks())
    for _ in range(len(rows) // max_rows + 2):
        (report,) = pull.run([config], lambda: 900.0).tables
        if report.caught_up:
            break
    assert report.caught_up
    sent = Counter()
    for record in stream.records:
        change = decode_dms(record.data, "")
        assert isinstance(change, RowChange)
        sent[(change.row["store"], change.row["n"])] += 1
    assert sent == Counter((s, n) for s, n, _ in rows)


def test_stream_write_failed_is_what_a_broken_stream_raises(harness):
    with pytest.raises(StreamWriteFailed, match="exceeds the Kinesis limit"):
        harness.stream().put([StreamRecord("k", b"x" * (1024 * 1024 + 1))])
