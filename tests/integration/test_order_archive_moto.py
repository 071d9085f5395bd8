"""Hot and cold orders on moto: the orders table with its sparse indexes, the checkpoint item and
the archive bucket, through the real adapters, with S3 failing, corrupting and a run cut short.

The orders table and the bucket are created here with the schema template.yaml declares
(tests/archive_support.py create_orders_table); the sync core writes orders from order events."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from scrm_sync.adapters.archive_store import S3ArchiveStore
from scrm_sync.adapters.dynamodb_orders import DynamoArchiveCheckpoints, DynamoOrderStore
from scrm_sync.adapters.memory import InMemoryOrderStore, InMemoryProfileRepository
from scrm_sync.domain.archive import DATA_PREFIX, MANIFEST_PREFIX, InFlightBatch
from scrm_sync.domain.orders import archive_cutoff, order_key, order_state
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.archive import ArchivedOrders, ArchiveOrders, RestoreOrders
from scrm_sync.services.ports import ArchivedEntry, ArchiveLeaseHeld, ArchiveLeaseLost, OrderStore
from scrm_sync.services.sync import ProfileSync

from tests.archive_support import (
    TODAY,
    Clock,
    archived_rows,
    assert_archive_consistent,
    create_checkpoints_table,
    create_orders_table,
    days_ago,
    order_event,
)

RULES = load_rules({})
CUTOFF = archive_cutoff(TODAY.date(), 90)
ORDERS_TABLE, CHECKPOINTS_TABLE, BUCKET = (
    "scrm-test-OrdersTable",
    "scrm-test-CheckpointsTable",
    "scrm-test-archive",
)
FOREVER = lambda: 900.0  # noqa: E731


@pytest.fixture
def aws(in_process_aws: None) -> None:
    """The in-process moto mock (tests/integration/conftest.py)."""


@dataclass
class Stack:
    dynamodb: Any
    s3: Any
    orders: DynamoOrderStore
    store: S3ArchiveStore
    clock: Clock

    def __post_init__(self) -> None:
        self.checkpoints = DynamoArchiveCheckpoints(self.dynamodb, CHECKPOINTS_TABLE, self.clock)
        self.sync = ProfileSync(InMemoryProfileRepository(), lambda: RULES, orders=self.orders)

    def archiver(self, batch_orders: int = 3, **overrides: Any) -> ArchiveOrders:
        return ArchiveOrders(
            overrides.get("orders", self.orders),
            overrides.get("store", self.store),
            self.checkpoints,
            batch_orders=batch_orders,
            clock=lambda: TODAY,
        )

    def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        objects = {o["Key"]: o["ETag"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
        items = sorted(self.dynamodb.scan(TableName=ORDERS_TABLE)["Items"], key=lambda i: i["pk"]["S"])
        return objects, [{k: v for k, v in i.items() if k != "updated_at"} for i in items]


@pytest.fixture
def stack(aws: None) -> Stack:
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    create_orders_table(dynamodb, ORDERS_TABLE)
    create_checkpoints_table(dynamodb, CHECKPOINTS_TABLE)
    s3.create_bucket(Bucket=BUCKET)
    return Stack(
        dynamodb,
        s3,
        DynamoOrderStore(dynamodb, ORDERS_TABLE, page_size=4),
        S3ArchiveStore(s3, BUCKET),
        Clock(),
    )


def seed(stack: Stack, old: int = 7, recent: int = 3) -> tuple[list[str], list[str]]:
    """Orders 200 to 202 days old (before the cutoff) and 10 days old (after it)."""
    for i in range(old):
        stack.sync.apply(order_event(f"T{i:03d}", created=days_ago(200 + i % 3), phone=f"1380013{i:04d}"))
    for i in range(recent):
        stack.sync.apply(order_event(f"R{i:03d}", created=days_ago(10), phone=f"1390013{i:04d}"))
    return (
        [order_key("youzan", f"T{i:03d}") for i in range(old)],
        [order_key("youzan", f"R{i:03d}") for i in range(recent)],
    )


# -- the OrderStore contract: the in-memory fake used by the unit tests is the adapter's twin ----
@pytest.fixture(params=["memory", "dynamodb"])
def orders(request: pytest.FixtureRequest) -> OrderStore:
    if request.param == "memory":
        return InMemoryOrderStore()
    request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    create_orders_table(client, ORDERS_TABLE)
    return DynamoOrderStore(client, ORDERS_TABLE, page_size=3)


def state(order_id: str, created_days_ago: float, at_days_ago: float | None = None, status: str = "paid"):
    event = order_event(
        order_id,
        created=days_ago(created_days_ago),
        at=days_ago(at_days_ago) if at_days_ago is not None else None,
        status=status,
    )
    order = order_state(event, "p-1")
    assert order is not None
    return order


def test_upsert_keeps_the_newest_state(orders: OrderStore):
    paid, shipped = state("T1", 5, 4, "paid"), state("T1", 5, 3, "shipped")
    assert orders.upsert(shipped) == "applied"
    assert orders.upsert(paid) == "stale"
    assert orders.upsert(shipped) == "duplicate"
    stored = orders.load([shipped.key])[shipped.key]
    assert stored.state == shipped and stored.version == shipped.version and stored.live


def test_the_age_index_lists_live_orders_before_a_day_oldest_first(orders: OrderStore):
    for i in range(40):
        orders.upsert(state(f"T{i}", 100 + i % 7))
    orders.upsert(state("NEW", 10))
    before = CUTOFF.isoformat()
    listed = [a for shard in map(str, range(16)) for a in orders.aged(shard, before)]
    assert sorted(a.key for a in listed) == sorted(order_key("youzan", f"T{i}") for i in range(40))
    for shard in map(str, range(16)):
        days = [a.order_date for a in orders.aged(shard, before)]
        assert days == sorted(days)


def test_mark_archived_replaces_only_unchanged_orders_by_stubs(orders: OrderStore):
    states = [state(f"T{i}", 200) for i in range(130)]  # more than one transaction
    for order in states:
        orders.upsert(order)
    newer = state("T7", 200, 1, "refunded")
    orders.upsert(newer)
    entries = [
        ArchivedEntry(o.key, o.version, "orders/dt=x/part.jsonl.gz", "p-1", o.order_id, "t") for o in states
    ]

    assert orders.mark_archived(entries) == {newer.key}

    stored = orders.load([o.key for o in states])
    assert stored[newer.key].live and stored[newer.key].state == newer
    stub = stored[states[0].key]
    assert not stub.live and stub.archived_object == "orders/dt=x/part.jsonl.gz"
    assert stub.archived_version == stub.version == states[0].version
    listed = {a.key for shard in map(str, range(16)) for a in orders.aged(shard, CUTOFF.isoformat())}
    assert listed == {newer.key}  # stubs leave the age index
    assert orders.mark_archived(entries[:3]) == {e.key for e in entries[:3]}  # a stub is not live
    assert orders.archived_keys("T0") == [states[0].key]
    assert orders.newest_archived_order_date("p-1") == states[0].order_date
    assert orders.newest_archived_order_date("p-2") is None


def test_a_stub_refuses_older_events_and_put_back_never_overwrites_a_live_order(orders: OrderStore):
    original = state("T1", 200)
    orders.upsert(original)
    orders.mark_archived(
        [ArchivedEntry(original.key, original.version, "orders/dt=x/a.jsonl.gz", "p-1", "T1", "t")]
    )
    assert orders.upsert(original) == "duplicate"
    assert not orders.load([original.key])[original.key].live

    assert orders.put_back(original, "orders/dt=x/a.jsonl.gz", "2026-12-25")
    restored = orders.load([original.key])[original.key]
    assert restored.live and restored.hold_until == "2026-12-25" and restored.archive_is_current
    assert not orders.put_back(original, "orders/dt=x/a.jsonl.gz", "2026-12-25")  # already hot

    refund = state("T1", 200, 1, "refunded")
    assert orders.upsert(refund) == "applied"
    after = orders.load([original.key])[original.key]
    assert after.state == refund and not after.archive_is_current and after.archived_object is not None


# -- archiving through the real adapters ---------------------------------------------------------
def test_old_orders_are_archived_recent_ones_stay_and_a_rerun_changes_nothing(stack: Stack):
    old, recent = seed(stack)
    report = stack.archiver().run(CUTOFF, FOREVER)

    assert (report.stopped, report.orders_archived, report.failures) == ("done", 7, 0)
    location = assert_archive_consistent(stack.orders, stack.store, old + recent)
    assert sorted(location) == old
    stored = stack.orders.load(old + recent)
    assert all(stored[k].live for k in recent) and not any(stored[k].live for k in old)
    head = stack.s3.head_object(Bucket=BUCKET, Key=next(iter(location.values())), ChecksumMode="ENABLED")
    assert head["ServerSideEncryption"] == "AES256" and head["ChecksumSHA256"]
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(k.startswith((f"{DATA_PREFIX}dt=", f"{MANIFEST_PREFIX}dt=")) for k in keys)

    before = stack.snapshot()
    again = stack.archiver().run(CUTOFF, FOREVER)
    assert (again.orders_archived, again.batches, again.failures) == (0, 0, 0)
    assert stack.snapshot() == before


def test_restore_round_trip_and_the_timeline_notice(stack: Stack):
    old, _ = seed(stack)
    stack.archiver().run(CUTOFF, FOREVER)
    profile_id = stack.orders.load([old[4]])[old[4]].profile_id
    notice = ArchivedOrders(stack.orders).notice([profile_id])
    assert notice == {
        "older_orders_archived": True,
        "newest_archived_order_date": days_ago(201).date().isoformat(),
    }
    objects = stack.snapshot()[0]

    restore = RestoreOrders(stack.orders, stack.store, timedelta(days=30), clock=lambda: TODAY)
    report = restore.by_order("T004")

    assert report.restored == [old[4]] and not report.not_found and not report.unreadable
    back = stack.orders.load([old[4]])[old[4]]
    assert back.live and back.state is not None and back.state.status == "paid"
    assert back.state.total == Decimal("99.50") and back.state.lines[0]["name"] == "保温杯 500ml"
    assert back.hold_until == (TODAY.date() + timedelta(days=30)).isoformat()
    assert stack.snapshot()[0] == objects  # the archive keeps its copy

    day = days_ago(200).date().isoformat()
    by_day = restore.by_date(day)
    assert sorted(by_day.restored) == sorted(k for k in old if k.endswith(("T000", "T003", "T006")))
    assert_archive_consistent(stack.orders, stack.store, old)


def test_an_s3_put_failing_mid_run_deletes_nothing_unarchived_and_the_next_run_completes(stack: Stack):
    old, recent = seed(stack, old=9)

    class S3Outage:
        """The bucket's client, failing every PutObject after the first four (two batches)."""

        def __init__(self, client: Any) -> None:
            self._client, self.puts, self.down = client, 0, True

        def put_object(self, **kwargs: Any) -> Any:
            self.puts += 1
            if self.down and self.puts > 4:
                raise stack.s3.exceptions.ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "Please reduce your request rate."}},
                    "PutObject",
                )
            return self._client.put_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

    outage = S3Outage(stack.s3)
    report = stack.archiver(store=S3ArchiveStore(outage, BUCKET)).run(CUTOFF, FOREVER)

    assert report.failures == 1 and report.batches == 2 and "ServiceUnavailable" in (report.error or "")
    location = assert_archive_consistent(stack.orders, stack.store, old + recent)
    assert len(location) == 6
    stored = stack.orders.load(old)
    assert sorted(k for k in old if stored[k].live) == sorted(set(old) - set(location))

    outage.down = False
    final = stack.archiver(store=S3ArchiveStore(outage, BUCKET)).run(CUTOFF, FOREVER)

    assert final.failures == 0 and final.batches_recovered == 1 and final.orders_archived == 3
    assert sorted(assert_archive_consistent(stack.orders, stack.store, old + recent)) == old


def test_a_run_cut_short_by_the_deadline_is_continued_by_the_next(stack: Stack):
    for i in range(250):
        stack.sync.apply(order_event(f"B{i:03d}", created=days_ago(95 + i % 4), phone="13600000000"))
    keys = [order_key("youzan", f"B{i:03d}") for i in range(250)]
    budget = iter([900.0] + [1.0] * 100)

    first = stack.archiver(batch_orders=40).run(CUTOFF, lambda: next(budget))

    assert first.stopped == "deadline" and first.failures == 0 and first.orders_archived == 100
    assert len(assert_archive_consistent(stack.orders, stack.store, keys)) == 100
    second = stack.archiver(batch_orders=40).run(CUTOFF, FOREVER)
    assert second.stopped == "done" and second.orders_archived == 150
    assert sorted(assert_archive_consistent(stack.orders, stack.store, keys)) == sorted(keys)


def test_a_corrupted_object_fails_the_manifest_check_and_nothing_is_deleted(stack: Stack):
    old, _ = seed(stack, old=4, recent=0)

    class CorruptingStore(S3ArchiveStore):
        """What lands in the bucket is not what was sent (a faulty proxy, a concurrent writer)."""

        def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
            super().put(key, body, sha256, content_type)
            if key.startswith(DATA_PREFIX):
                damaged = body[:-1] + bytes([body[-1] ^ 1])
                stack.s3.put_object(
                    Bucket=BUCKET,
                    Key=key,
                    Body=damaged,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(hashlib.sha256(damaged).digest()).decode(),
                )

    report = stack.archiver(store=CorruptingStore(stack.s3, BUCKET)).run(CUTOFF, FOREVER)

    assert report.failures == 1 and report.orders_archived == 0
    assert "ArchiveObjectCorrupt" in (report.error or "")
    assert all(item.live for item in stack.orders.load(old).values())
    assert stack.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # discarded
    assert stack.archiver().run(CUTOFF, FOREVER).orders_archived == 4


def test_an_order_changing_during_the_run_stays_hot_and_out_of_the_archive(stack: Stack):
    old, _ = seed(stack, old=3, recent=0)
    refund = order_event(
        "T001", created=days_ago(201), at=days_ago(2), status="refunded", phone="13800130001"
    )

    class RefundArrives(DynamoOrderStore):
        def mark_archived(self, entries):
            stack.sync.apply(refund)  # between upload and stubs; a redelivery is a no-op
            return super().mark_archived(entries)

    racing = RefundArrives(stack.dynamodb, ORDERS_TABLE)
    report = stack.archiver(batch_orders=10, orders=racing).run(CUTOFF, FOREVER)

    assert (report.orders_archived, report.orders_changed, report.failures) == (2, 1, 0)
    location = assert_archive_consistent(stack.orders, stack.store, old)
    assert old[1] not in location and stack.orders.load([old[1]])[old[1]].live
    stack.archiver().run(CUTOFF, FOREVER)
    rows = archived_rows(stack.store)[assert_archive_consistent(stack.orders, stack.store, old)[old[1]]]
    assert [r["status"] for r in rows if r["order_id"] == "T001"] == ["refunded"]


# -- the checkpoint's lease ------------------------------------------------------------------------
def test_the_lease_serializes_runs_and_expires_with_a_dead_run(stack: Stack):
    checkpoints = stack.checkpoints
    batch = InFlightBatch("orders/dt=2026-05-01/part-a-00001.jsonl.gz", "2026-05-01")
    assert checkpoints.acquire("run-a", 960) is None
    checkpoints.begin("run-a", batch, 960)
    with pytest.raises(ArchiveLeaseHeld):
        checkpoints.acquire("run-b", 960)
    assert stack.archiver().run(CUTOFF, FOREVER).stopped == "busy"

    stack.clock.now += 961  # run-a died without releasing
    assert checkpoints.acquire("run-b", 960) == batch
    with pytest.raises(ArchiveLeaseLost):
        checkpoints.finish("run-a", 960)
    checkpoints.finish("run-b", 960)
    checkpoints.release("run-a")  # not the holder: nothing happens
    with pytest.raises(ArchiveLeaseHeld):
        checkpoints.acquire("run-c", 960)
    checkpoints.release("run-b")
    assert checkpoints.acquire("run-c", 960) is None


def test_archived_stubs_expire_with_their_archived_copy_and_a_revived_order_does_not(aws: None):
    """ArchiveRetentionDays: a stub carries the table's TTL attribute (archived_at + retention);
    a newer event makes the order live again, and a live order never expires."""
    client = boto3.client("dynamodb")
    create_orders_table(client, ORDERS_TABLE)
    orders = DynamoOrderStore(client, ORDERS_TABLE, archive_retention_days=30)
    old, revived = state("R1", 200), state("R2", 200)
    for order in (old, revived):
        orders.upsert(order)
    archived_at = "2026-12-03T03:30:00+00:00"
    entries = [
        ArchivedEntry(o.key, o.version, "orders/dt=x/p.jsonl.gz", "p-1", o.order_id, archived_at)
        for o in (old, revived)
    ]
    assert orders.mark_archived(entries) == set()
    item = client.get_item(TableName=ORDERS_TABLE, Key={"pk": {"S": old.key}})["Item"]
    assert int(item["expire_at"]["N"]) == int(datetime.fromisoformat(archived_at).timestamp()) + 30 * 86400
    assert orders.upsert(state("R2", 200, 1, "refunded")) == "applied"
    item = client.get_item(TableName=ORDERS_TABLE, Key={"pk": {"S": revived.key}})["Item"]
    assert "expire_at" not in item
