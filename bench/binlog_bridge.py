"""The binlog bridge versus a bare python-mysql-replication read loop, on the same binlog.

One private MariaDB (ROW binlog, tests/mariadb.py) holds, for each shape (1 and 100 rows per
transaction), the same number of inserts into the POS schema's `orders` table
(config/pos_schema.sql: a VARCHAR key, DECIMAL, DATETIME(3) and a JSON column). Each shape's
GTID range is then read, interleaved over several rounds (alternating which goes first), by:

* the peer: a bare `BinLogStreamReader` from the range's start that touches every row's values
  (`for row in event.rows: row["values"]`) and stops after the range's last row;
* ours: `BinlogBridge` from a checkpoint at the range's start, end to end: row images to DMS
  records, the group commit's PutRecords calls through the local stack's real boto3 Kinesis client
  (its network replaced by a botocore `before-send` hook answering a canned PutRecords success, so
  serialization and signing count), and the checkpoint file written (fsync) as in production,
  until the range's last transaction is sent and checkpointed.

Wall time (both read from the same local server), medians of the rounds; rows per second and
ours/peer per shape. The hook also counts PutRecords calls, the bridge counts checkpoint writes.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from pymysql.constants import CLIENT
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent
from scrm_local.aws import Clients
from scrm_local.binlog import BinlogBridge
from scrm_local.binlog.checkpoint import BinlogPosition, CheckpointFile
from scrm_local.binlog.source import MySqlSource

from tests.mariadb import MariaDB, running_mariadb

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 0.8
SCHEMA = "pos"
# Rows per transaction -> rows written and read per shape (about a second of reading each here).
SHAPES = {1: 3_000, 100: 12_000}
STREAM = "bench-cdc"
STATEMENTS_PER_QUERY = 500  # single-row transactions sent as one multi-statement query


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class CannedKinesis:
    """A `before-send` hook: answers each PutRecords with every record accepted, and counts."""

    def __init__(self) -> None:
        self.calls = 0
        self.records = 0
        self._bodies: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        count = bytes(request.body).count(b'"PartitionKey"')
        with self._lock:
            self.calls += 1
            self.records += count
        body = self._bodies.get(count)
        if body is None:
            records = [
                {"SequenceNumber": f"4959{i:052d}", "ShardId": "shardId-000000000000"} for i in range(count)
            ]
            body = self._bodies[count] = json.dumps({"FailedRecordCount": 0, "Records": records}).encode()
        headers = HTTPHeaders()
        headers["x-amzn-requestid"] = "bench"
        headers["content-type"] = "application/x-amz-json-1.1"
        return AWSResponse(request.url, 200, headers, _Raw(body))

    def clear(self) -> None:
        with self._lock:
            self.calls = self.records = 0


class _BoundedBridge(BinlogBridge):
    """The bridge, stopped once it has read the transaction that ends at `end`; counts saves."""

    def __init__(self, *args: Any, end: BinlogPosition, stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.end = end
        self.end_stop = stop
        self.saves = 0

    def _commit(self, timestamp: int, reader: BinLogStreamReader) -> None:
        super()._commit(timestamp, reader)
        if self.position == self.end:
            self.end_stop.set()  # the loop ends after this event; closing sends the rest

    def _save(self, position: BinlogPosition) -> None:
        super()._save(position)
        self.saves += 1


def _gtid(db: MariaDB) -> str:
    with contextlib.closing(db.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        return str(cursor.fetchone()[0])


def _order(n: int) -> tuple[Any, ...]:
    lines = [
        {"sku": f"SKU-{n % 997:04d}", "name": "保湿面霜 50ml", "quantity": 1 + n % 3, "price": "199.00"},
        {"sku": f"SKU-{n % 89:04d}", "name": "洁面乳", "quantity": 1, "price": "89.00"},
    ]
    return (
        f"SO{n:012d}",
        f"M{n % 50_000:08d}",
        f"S{n % 300:03d}",
        "paid",
        f"{199 + 89 + n % 100}.00",
        json.dumps(lines, ensure_ascii=False),
        "2026-11-11 10:%02d:%02d.%03d" % (n // 60 % 60, n % 60, n % 1000),  # noqa: UP031
    )


_INSERT = (
    "INSERT INTO orders (order_no, member_no, store, status, total, `lines`, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def _write(db: MariaDB, rows: int, per_transaction: int, first: int) -> None:
    """`rows` orders in transactions of `per_transaction` rows (one multi-row INSERT each)."""
    with (
        contextlib.closing(db.connect(SCHEMA, client_flag=CLIENT.MULTI_STATEMENTS)) as connection,
        connection.cursor() as cursor,
    ):
        if per_transaction == 1:  # autocommit: each statement its own transaction
            for chunk in range(first, first + rows, STATEMENTS_PER_QUERY):
                numbers = range(chunk, min(chunk + STATEMENTS_PER_QUERY, first + rows))
                cursor.execute(";".join(cursor.mogrify(_INSERT, _order(n)) for n in numbers))
                while cursor.nextset():
                    pass
            return
        head, values = _INSERT.split("VALUES ")
        for chunk in range(first, first + rows, per_transaction):
            numbers = range(chunk, min(chunk + per_transaction, first + rows))
            cursor.execute(head + "VALUES " + ",".join(cursor.mogrify(values, _order(n)) for n in numbers))


def _bare(db: MariaDB, start: str, rows: int, server_id: int) -> tuple[float, float]:
    """The peer: wall and CPU seconds to read `rows` row images from GTID state `start`."""
    began, cpu = time.perf_counter(), time.process_time()
    reader = BinLogStreamReader(
        connection_settings=MySqlSource.from_url(db.url(SCHEMA)).connection_settings(),
        server_id=server_id,
        blocking=True,
        auto_position=start,
        is_mariadb=True,
        only_events=[WriteRowsEvent],
        only_schemas=[SCHEMA],
        enable_logging=False,
    )
    seen = columns = 0
    try:
        for event in reader:
            for row in event.rows:
                columns += len(row["values"])  # every row's values touched
                seen += 1
            if seen >= rows:
                break
    finally:
        reader.close()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert seen == rows and columns, (seen, rows)
    return elapsed, cpu


def _ours(
    db: MariaDB, kinesis: Any, canned: CannedKinesis, start: str, end: str, rows: int, directory: Path
) -> dict[str, float]:
    """Ours: wall and CPU seconds (both threads) for the bridge to send and checkpoint everything
    from `start` to `end`, its PutRecords calls and checkpoint writes."""
    checkpoint = directory / f"checkpoint-{time.monotonic_ns()}.json"
    url = db.url(SCHEMA)
    stop = threading.Event()
    bridge = _BoundedBridge(url, kinesis, STREAM, checkpoint, end=BinlogPosition(gtid=end), stop=stop)
    CheckpointFile(checkpoint).save(bridge.source.label, BinlogPosition(gtid=start))
    canned.clear()
    began, cpu = time.perf_counter(), time.process_time()
    bridge.run_forever(stop)  # on this thread; the group commit's sender has its own
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    saved = CheckpointFile(checkpoint).load(bridge.source.label)
    assert saved == BinlogPosition(gtid=end), (saved, end)
    assert canned.records == rows, (canned.records, rows)
    return {"seconds": elapsed, "cpu": cpu, "calls": canned.calls, "saves": bridge.saves}


def kinesis_client(canned: CannedKinesis) -> Any:
    """The local stack's Kinesis client (scrm_local.aws), its network replaced by `canned`."""
    client = Clients("http://127.0.0.1:9")("kinesis", validate_parameters=False)  # as bridge_for_stack
    client.meta.events.register("before-send.kinesis.PutRecords", canned, unique_id="bench-canned")
    return client


def run(shapes: dict[int, int] | None = None, rounds: int = 7) -> dict[str, Any]:
    shapes = shapes or SHAPES
    canned = CannedKinesis()
    kinesis = kinesis_client(canned)
    results: dict[str, Any] = {
        "rounds": rounds,
        "peer": f"mysql-replication {importlib.metadata.version('mysql-replication')}",
        "shapes": {},
    }
    with running_mariadb() as db, tempfile.TemporaryDirectory(prefix="bench-binlog-") as tmp:
        db.run_sql_file(ROOT / "config/pos_schema.sql")
        ranges: dict[int, tuple[str, str]] = {}
        first = 0
        for shape, rows in shapes.items():
            start = _gtid(db)
            _write(db, rows, shape, first)
            first += rows
            ranges[shape] = (start, _gtid(db))
        results["server"] = _server_version(db)
        timings: dict[int, dict[str, list[float]]] = {
            s: {k: [] for k in ("bare", "ours", "bare_cpu", "ours_cpu", "calls", "saves")} for s in shapes
        }
        server_ids = iter(range(2_000, 3_000))
        for round_no in range(rounds + 1):  # round 0 warms up both (imports, caches, the server)
            for shape, rows in shapes.items():
                start, end = ranges[shape]
                order = ("bare", "ours") if round_no % 2 else ("ours", "bare")
                for who in order:
                    if who == "bare":
                        seconds, cpu = _bare(db, start, rows, next(server_ids))
                    else:
                        measured = _ours(db, kinesis, canned, start, end, rows, Path(tmp))
                        seconds, cpu = measured["seconds"], measured["cpu"]
                        if round_no:
                            timings[shape]["calls"].append(measured["calls"])
                            timings[shape]["saves"].append(measured["saves"])
                    if round_no:
                        timings[shape][who].append(seconds)
                        timings[shape][f"{who}_cpu"].append(cpu)
        for shape, t in timings.items():
            rows = shapes[shape]
            bare, ours = statistics.median(t["bare"]), statistics.median(t["ours"])
            results["shapes"][shape] = {
                "rows": rows,
                "bare_rows_per_s": rows / bare,
                "ours_rows_per_s": rows / ours,
                "ratio": bare / ours,
                "ratios": sorted(b / o for b, o in zip(t["bare"], t["ours"], strict=True)),
                "bare_cpu_us_per_row": statistics.median(t["bare_cpu"]) / rows * 1e6,
                "ours_cpu_us_per_row": statistics.median(t["ours_cpu"]) / rows * 1e6,
                "cpu_ratio": statistics.median(t["bare_cpu"]) / statistics.median(t["ours_cpu"]),
                "put_records_per_1000_rows": statistics.median(t["calls"]) * 1000 / rows,
                "checkpoints_per_1000_rows": statistics.median(t["saves"]) * 1000 / rows,
            }
    results["load_average"] = os.getloadavg()
    results["cpus"] = os.cpu_count()
    return results


def _server_version(db: MariaDB) -> str:
    with contextlib.closing(db.connect()) as connection:
        return str(connection.get_server_info())


def render(results: dict[str, Any]) -> list[str]:
    load = ", ".join(f"{x:.1f}" for x in results["load_average"])
    lines = [
        f"Binlog bridge versus a bare {results['peer']} read loop (same process, the same `pos.orders` "
        f"inserts read by both, per shape, from one MariaDB {results['server']} binlog, interleaved, "
        f"alternating which goes first, medians of {results['rounds']} rounds). Ours = read + DMS "
        "records + PutRecords through the local stack's real boto3 Kinesis client (network replaced by "
        "an in-process canned success) + the checkpoint file. Goal: ours/peer ≥ "
        f"{GOAL_RATIO}x in rows per **wall** second; the CPU columns (this process, all threads) are "
        f"less sensitive to a busy machine (load average {load} on {results['cpus']} CPUs):",
        "",
        "| rows per transaction | rows read | bare loop rows/s | bridge rows/s | ours/peer (wall) | goal | "
        "CPU µs/row bare / bridge | ours/peer (CPU) | PutRecords per 1,000 rows | "
        "checkpoint writes per 1,000 rows |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, r in results["shapes"].items():
        verdict = "✅" if r["ratio"] >= GOAL_RATIO else "❌"
        lines.append(
            f"| {shape} | {r['rows']:,} | {r['bare_rows_per_s']:,.0f} | {r['ours_rows_per_s']:,.0f} | "
            f"{r['ratio']:.2f}x (rounds {r['ratios'][0]:.2f}-{r['ratios'][-1]:.2f}) | "
            f"≥ {GOAL_RATIO}x {verdict} | {r['bare_cpu_us_per_row']:.0f} / {r['ours_cpu_us_per_row']:.0f} | "
            f"{r['cpu_ratio']:.2f}x | {r['put_records_per_1000_rows']:.1f} | "
            f"{r['checkpoints_per_1000_rows']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
