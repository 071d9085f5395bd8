"""Hot and cold orders through the use cases (sync core -> orders table -> archive -> restore) on
the in-memory fakes, with faults injected at every step of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from scrm_sync.adapters.memory import (
    InMemoryArchiveCheckpoints,
    InMemoryArchiveStore,
    InMemoryOrderStore,
    InMemoryProfileRepository,
)
from scrm_sync.domain.archive import DATA_PREFIX, decode_rows, row_key
from scrm_sync.domain.orders import archive_cutoff, order_key
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.archive import ArchivedOrders, ArchiveOrders, RestoreOrders
from scrm_sync.services.ports import StoredObject
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

from tests.archive_support import (
    TODAY,
    Clock,
    archived_rows,
    assert_archive_consistent,
    assert_nothing_lost,
    days_ago,
    order_event,
)

RULES = load_rules({})
CUTOFF = archive_cutoff(TODAY.date(), 90)
FOREVER = lambda: 900.0  # noqa: E731 - remaining seconds of a run that never nears its deadline


@dataclass
class World:
    orders: InMemoryOrderStore = field(default_factory=InMemoryOrderStore)
    store: InMemoryArchiveStore = field(default_factory=InMemoryArchiveStore)
    clock: Clock = field(default_factory=Clock)
    repo: InMemoryProfileRepository = field(default_factory=InMemoryProfileRepository)

    def __post_init__(self) -> None:
        self.checkpoints = InMemoryArchiveCheckpoints(self.clock)
        self.sync = ProfileSync(self.repo, lambda: RULES, orders=self.orders)

    def archiver(self, batch_orders: int = 3, **overrides: Any) -> ArchiveOrders:
        parts: dict[str, Any] = {"orders": self.orders, "store": self.store, "checkpoints": self.checkpoints}
        parts.update(overrides)
        return ArchiveOrders(
            parts["orders"],
            parts["store"],
            parts["checkpoints"],
            batch_orders=batch_orders,
            clock=lambda: TODAY,
        )

    def restorer(self) -> RestoreOrders:
        return RestoreOrders(self.orders, self.store, timedelta(days=30), clock=lambda: TODAY)

    def order_keys(self) -> list[str]:
        return sorted(self.orders.items)


def seed(world: World, old: int = 7, recent: int = 2) -> tuple[list[str], list[str]]:
    """`old` orders spread over three days before the cutoff, `recent` ones after it."""
    old_keys, recent_keys = [], []
    for i in range(old):
        world.sync.apply(order_event(f"T{i:03d}", created=days_ago(200 + i % 3), phone=f"1380013{i:04d}"))
        old_keys.append(order_key("youzan", f"T{i:03d}"))
    for i in range(recent):
        world.sync.apply(order_event(f"R{i:03d}", created=days_ago(10), phone=f"1390013{i:04d}"))
        recent_keys.append(order_key("youzan", f"R{i:03d}"))
    return old_keys, recent_keys


# -- the orders table, written by the sync core --------------------------------------------------
def test_order_events_keep_the_latest_state_per_order_whatever_the_arrival_order():
    world = World()
    created = days_ago(5)
    shipped = order_event("T1", created=created, at=created + timedelta(hours=2), status="shipped")
    paid = order_event("T1", created=created, at=created + timedelta(hours=1), status="paid")
    world.sync.apply(shipped)
    world.sync.apply(paid)  # older: must not win
    world.sync.apply(shipped)  # redelivered: nothing changes
    stored = world.orders.load([order_key("youzan", "T1")])[order_key("youzan", "T1")]
    assert stored.state is not None and stored.state.status == "shipped"
    assert stored.order_date == created.date().isoformat()
    assert world.orders.upsert(stored.state) == "duplicate"


def test_an_order_keeps_its_day_when_events_carry_no_created_at():
    world = World()
    first = order_event("T1", created=days_ago(100), with_created_at=False)
    later = order_event("T1", created=days_ago(100), at=days_ago(3), status="refunded", with_created_at=False)
    world.sync.apply(first)
    world.sync.apply(later)
    stored = world.orders.load([order_key("youzan", "T1")])[order_key("youzan", "T1")]
    assert stored.order_date == days_ago(100).date().isoformat()
    assert stored.state is not None and stored.state.status == "refunded"


# -- archiving -------------------------------------------------------------------------------
def test_old_orders_move_to_the_archive_and_recent_ones_stay_hot():
    world = World()
    old, recent = seed(world)
    report = world.archiver().run(CUTOFF, FOREVER)

    assert (report.stopped, report.orders_archived, report.failures) == ("done", 7, 0)
    location = assert_archive_consistent(world.orders, world.store, world.order_keys())
    assert sorted(location) == old
    assert all(world.orders.items[k].live for k in recent)
    assert all(not world.orders.items[k].live for k in old)
    # one day per object, under its Hive partition
    for data_key, rows in archived_rows(world.store).items():
        assert {f"{DATA_PREFIX}dt={r['order_date']}/" for r in rows} == {data_key.rsplit("/", 1)[0] + "/"}
    # batches fill across the shards: 3 + 2 + 2 orders of three days -> three objects
    assert report.batches == len(archived_rows(world.store)) == 3


def test_running_again_changes_nothing():
    world = World()
    seed(world)
    world.archiver().run(CUTOFF, FOREVER)
    objects = dict(world.store.objects)
    items = dict(world.orders.items)
    requests = sum(world.store.requests.values())

    report = world.archiver().run(CUTOFF, FOREVER)

    assert (report.orders_archived, report.batches, report.stopped) == (0, 0, "done")
    assert world.store.objects == objects
    assert world.orders.items == items
    assert sum(world.store.requests.values()) == requests  # not even a read


def test_archived_rows_carry_the_order_exactly():
    world = World()
    world.sync.apply(order_event("T1", created=days_ago(200), total="12345678901.23"))
    world.archiver().run(CUTOFF, FOREVER)
    [rows] = archived_rows(world.store).values()
    assert rows[0]["total"] == Decimal("12345678901.23")
    assert rows[0]["lines"][0]["name"] == "保温杯 500ml"
    assert rows[0]["profile_id"] == world.orders.items[order_key("youzan", "T1")].profile_id


def test_an_order_that_changes_while_it_is_archived_stays_hot_and_leaves_the_object():
    world = World()
    old, _ = seed(world, old=3, recent=0)
    changing = old[1]

    refund = order_event(
        "T001", created=days_ago(201), at=days_ago(1), status="refunded", phone="13800130001"
    )

    class ChangesDuringTheRun(InMemoryOrderStore):
        def mark_archived(self, entries):
            world.sync.apply(refund)  # arrives between the upload and the stubs (once: a replay is a no-op)
            return InMemoryOrderStore.mark_archived(self, entries)

    racing = ChangesDuringTheRun()
    racing.items = world.orders.items
    report = world.archiver(batch_orders=10, orders=racing).run(CUTOFF, FOREVER)

    assert (report.orders_archived, report.orders_changed) == (2, 1)
    location = assert_archive_consistent(world.orders, world.store, old)
    assert changing not in location and world.orders.items[changing].live

    again = world.archiver(batch_orders=10).run(CUTOFF, FOREVER)  # the next run takes its new state
    assert again.orders_archived == 1
    location = assert_archive_consistent(world.orders, world.store, old)
    [row] = [r for r in archived_rows(world.store)[location[changing]] if row_key(r) == changing]
    assert row["status"] == "refunded"


def test_an_archived_order_that_comes_back_to_life_is_archived_once_with_its_new_state():
    world = World()
    old, _ = seed(world, old=4, recent=0)
    world.archiver(batch_orders=10).run(CUTOFF, FOREVER)
    first_object = assert_archive_consistent(world.orders, world.store, old)[old[2]]

    # an event older than the archived state cannot revive the stub; an after-sales refund can
    too_old = days_ago(202) - timedelta(hours=1)
    world.sync.apply(order_event("T002", created=days_ago(202), at=too_old, status="x", phone="13800130002"))
    assert not world.orders.items[old[2]].live
    refund = order_event(
        "T002", created=days_ago(202), at=days_ago(52), status="refunded", phone="13800130002"
    )
    world.sync.apply(refund)
    revived = world.orders.items[old[2]]
    assert revived.live and revived.state is not None and revived.state.status == "refunded"

    report = world.archiver(batch_orders=10).run(CUTOFF, FOREVER)

    assert (report.orders_superseded, report.orders_archived) == (1, 1)
    location = assert_archive_consistent(world.orders, world.store, old)
    assert location[old[2]] != first_object
    assert old[2] not in {row_key(r) for r in archived_rows(world.store).get(first_object, [])}


def test_batches_stay_within_their_size_and_a_day():
    world = World()
    for i in range(25):
        world.sync.apply(order_event(f"T{i:03d}", created=days_ago(120 + i % 2)))
    report = world.archiver(batch_orders=4).run(CUTOFF, FOREVER)
    objects = archived_rows(world.store)
    assert report.orders_archived == 25 == sum(len(rows) for rows in objects.values())
    assert all(len(rows) <= 4 and len({r["order_date"] for r in rows}) == 1 for rows in objects.values())
    assert len(objects) == 7  # 12 + 13 orders of two days: 3 + 4 objects


# -- restore and the timeline notice -----------------------------------------------------------
def test_restore_by_id_brings_the_order_back_and_keeps_the_archive_copy():
    world = World()
    old, _ = seed(world)
    world.archiver().run(CUTOFF, FOREVER)
    before = archived_rows(world.store)

    report = world.restorer().by_order("T004")  # no source: found through its stub

    assert report.restored == [old[4]] and not report.unreadable
    restored = world.orders.items[old[4]]
    assert restored.live and restored.state is not None and restored.state.status == "paid"
    assert restored.state.total == Decimal("99.50") and restored.state.lines[0]["price"] == Decimal("49.75")
    assert archived_rows(world.store) == before
    assert world.restorer().by_order("T004").already_hot == [old[4]]
    assert world.restorer().by_order("NOPE").not_found == ["NOPE"]
    assert_archive_consistent(world.orders, world.store, world.order_keys())


def test_a_restored_order_stays_hot_during_its_hold_then_goes_back_without_an_upload():
    world = World()
    old, _ = seed(world)
    world.archiver().run(CUTOFF, FOREVER)
    world.restorer().by_order("T004", source="youzan")

    held = world.archiver().run(CUTOFF, FOREVER)
    assert held.orders_held == 1 and world.orders.items[old[4]].live

    puts = world.store.requests["PutObject"]
    later = TODAY + timedelta(days=31)
    after_hold = ArchiveOrders(
        world.orders, world.store, world.checkpoints, batch_orders=3, clock=lambda: later
    ).run(archive_cutoff(later.date(), 90), FOREVER)
    assert after_hold.orders_restubbed == 1 and after_hold.orders_archived == 0
    assert world.store.requests["PutObject"] == puts
    assert not world.orders.items[old[4]].live
    assert_archive_consistent(world.orders, world.store, world.order_keys())


def test_restore_by_date_restores_that_day_only():
    world = World()
    old, _ = seed(world)
    world.archiver().run(CUTOFF, FOREVER)
    day = days_ago(201).date().isoformat()

    report = world.restorer().by_date(day)

    expected = sorted(k for k in old if world.orders.items[k].order_date == day)
    assert sorted(report.restored) == expected and expected
    assert all(world.orders.items[k].live == (k in expected) for k in old)
    again = world.restorer().by_date(day)
    assert again.restored == [] and sorted(again.already_hot) == expected


def test_restore_by_id_and_date_finds_an_order_in_that_days_manifests():
    world = World()
    old, _ = seed(world)
    world.archiver().run(CUTOFF, FOREVER)
    day = world.orders.items[old[3]].order_date
    assert world.restorer().by_order("T003", dt=day).restored == [old[3]]
    wrong_day = days_ago(150).date().isoformat()
    assert world.restorer().by_order("T005", dt=wrong_day).not_found == ["T005"]


def test_a_corrupt_archive_object_is_reported_not_restored():
    world = World()
    old, _ = seed(world, old=1, recent=0)
    world.archiver().run(CUTOFF, FOREVER)
    [data_key] = [k for k in world.store.objects if k.startswith(DATA_PREFIX)]
    body = world.store.objects[data_key]
    world.store.objects[data_key] = body[:-9] + bytes([body[-9] ^ 1]) + body[-8:]

    report = world.restorer().by_order("T000")

    assert report.unreadable == [data_key] and report.restored == []
    assert not world.orders.items[old[0]].live


def test_the_timeline_says_when_older_orders_are_archived():
    world = World()
    seed(world, old=2, recent=1)
    queries = ProfileQueries(world.repo, ArchivedOrders(world.orders))
    archived_profile = world.orders.items[order_key("youzan", "T000")].profile_id
    recent_profile = world.orders.items[order_key("youzan", "R000")].profile_id
    assert queries.timeline(archived_profile, 10)["archived_orders"] is None

    world.archiver().run(CUTOFF, FOREVER)

    notice = queries.timeline(archived_profile, 10)["archived_orders"]
    assert notice == {
        "older_orders_archived": True,
        "newest_archived_order_date": days_ago(200).date().isoformat(),
    }
    assert queries.timeline(recent_profile, 10)["archived_orders"] is None


# -- faults ----------------------------------------------------------------------------------
class Killed(BaseException):
    """The Lambda runtime killed the invocation: no except clause, no finally completes."""


class Fault:
    """Counts calls across the wrapped ports and fails from call `at` on: `kill` raises Killed
    on that call and every later one (the process is gone), otherwise one call raises."""

    def __init__(self, at: int, kill: bool) -> None:
        self.at, self.kill, self.calls, self.fired = at, kill, 0, False

    def wrap(self, target: Any) -> Any:
        fault = self

        class Wrapped:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(target, name)
                if not callable(attr):
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    fault.calls += 1
                    if fault.kill and fault.fired:
                        raise Killed(name)
                    if fault.calls == fault.at:
                        fault.fired = True
                        raise Killed(name) if fault.kill else RuntimeError(f"injected failure in {name}")
                    return attr(*args, **kwargs)

                return call

        return Wrapped()


@pytest.mark.parametrize("kill", [False, True], ids=["error", "killed"])
def test_whatever_call_fails_nothing_is_lost_or_archived_twice_and_the_next_run_completes(kill):
    at = 1
    while True:
        world = World()
        old, recent = seed(world, old=8, recent=2)
        # an archived, revived order and a restored one: the rewrite and restub paths fail too
        world.archiver().run(CUTOFF, FOREVER)
        world.sync.apply(
            order_event(
                "T002", created=days_ago(202), at=days_ago(40), status="refunded", phone="13800130002"
            )
        )
        RestoreOrders(world.orders, world.store, timedelta(0), clock=lambda: TODAY).by_order(
            "T005"
        )  # no hold
        world.sync.apply(order_event("T100", created=days_ago(150), phone="13700000000"))
        keys = world.order_keys()

        fault = Fault(at, kill)
        archiver = ArchiveOrders(
            fault.wrap(world.orders),
            fault.wrap(world.store),
            fault.wrap(world.checkpoints),
            batch_orders=2,
            clock=lambda: TODAY,
        )
        try:
            report = archiver.run(CUTOFF, FOREVER)
        except Killed:
            report = None
        if not fault.fired:
            break  # `at` is past the last call: every step has been failed once
        assert report is None or report.failures == 1 or report.error is not None  # a failed release
        assert_nothing_lost(world.orders, world.store, keys)

        world.clock.now += 961  # the killed run's lease has expired
        final = world.archiver(batch_orders=2).run(CUTOFF, FOREVER)

        assert final.failures == 0, (at, final.error)
        location = assert_archive_consistent(world.orders, world.store, keys)
        assert sorted(location) == sorted([*old, order_key("youzan", "T100")]), at
        assert all(world.orders.items[k].live for k in recent)
        statuses = {row_key(r): r["status"] for rows in archived_rows(world.store).values() for r in rows}
        assert statuses[old[2]] == "refunded"
        at += 1
    assert at > 30  # the scenario exercised many distinct steps


def test_an_s3_failure_in_the_middle_of_a_run_deletes_nothing_unarchived():
    class PutFailsOnTheThirdBatch(InMemoryArchiveStore):
        down = True

        def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
            if self.down and key.startswith(DATA_PREFIX) and key.endswith("00003.jsonl.gz"):
                raise ConnectionError("S3 unreachable")
            super().put(key, body, sha256, content_type)

    world = World(store=PutFailsOnTheThirdBatch())
    old, _ = seed(world, old=9, recent=0)
    report = world.archiver().run(CUTOFF, FOREVER)

    assert report.failures == 1 and report.stopped == "failed" and report.batches == 2
    assert "ConnectionError" in (report.error or "")
    assert world.checkpoints.inflight is not None
    location = assert_archive_consistent(world.orders, world.store, old)
    assert len(location) == 6 and sum(not world.orders.items[k].live for k in old) == 6

    world.store.down = False  # type: ignore[attr-defined]
    final = world.archiver().run(CUTOFF, FOREVER)
    assert final.failures == 0 and final.batches_recovered == 1 and final.orders_archived == 3
    assert sorted(assert_archive_consistent(world.orders, world.store, old)) == old


def test_a_corrupted_upload_is_caught_by_the_manifest_check_and_nothing_is_deleted():
    world = World()
    old, _ = seed(world, old=4, recent=0)

    class FlipsAByte(InMemoryArchiveStore):
        def head(self, key: str) -> StoredObject | None:
            stored = super().head(key)
            if key.startswith(DATA_PREFIX) and stored is not None:
                return StoredObject(stored.size, "0" * 64)  # what S3 holds is not what was sent
            return stored

    corrupting = FlipsAByte()
    report = world.archiver(store=corrupting).run(CUTOFF, FOREVER)

    assert report.failures == 1 and "ArchiveObjectCorrupt" in (report.error or "")
    assert all(world.orders.items[k].live for k in old)
    assert corrupting.objects == {}  # the unverified object and its manifest were removed
    assert world.checkpoints.inflight is None

    assert world.archiver().run(CUTOFF, FOREVER).orders_archived == 4


def test_a_run_stopped_by_the_deadline_is_continued_by_the_next():
    world = World()
    seed(world, old=7, recent=0)
    world.sync.apply(order_event("T900", created=days_ago(300)))
    for i in range(300):
        world.sync.apply(order_event(f"B{i:03d}", created=days_ago(100 + i % 5), phone="13600000000"))
    everything = [k for k in world.order_keys() if not k.startswith(order_key("youzan", "R"))]

    budget = iter([900.0, 900.0] + [5.0] * 1000)  # two chunks, then the deadline is near
    report = world.archiver(batch_orders=50).run(CUTOFF, lambda: next(budget))

    assert report.stopped == "deadline" and report.failures == 0
    assert 0 < report.orders_archived < len(everything)
    assert world.checkpoints.inflight is None and world.checkpoints.owner is None
    first = assert_archive_consistent(world.orders, world.store, everything)
    assert order_key("youzan", "T900") in first  # oldest first

    final = world.archiver(batch_orders=50).run(CUTOFF, FOREVER)
    assert final.stopped == "done" and final.orders_archived == len(everything) - len(first)
    assert sorted(assert_archive_consistent(world.orders, world.store, everything)) == sorted(everything)


def test_a_second_run_while_one_holds_the_lease_does_nothing():
    world = World()
    seed(world)
    world.checkpoints.acquire("other-run", 960)
    report = world.archiver().run(CUTOFF, FOREVER)
    assert report.stopped == "busy" and report.failures == 0 and world.store.objects == {}


def test_a_batch_is_finished_from_the_checkpoint_when_the_object_is_intact():
    """Killed right after the uploads: the next run verifies the object and stubs its orders
    instead of uploading them again."""
    world = World()
    for i in range(3):
        world.sync.apply(order_event(f"T{i}", created=days_ago(200)))
    old = world.order_keys()

    class KilledAfterVerify(InMemoryOrderStore):
        def mark_archived(self, entries):
            raise Killed("mark_archived")

    dying = KilledAfterVerify()
    dying.items = world.orders.items
    with pytest.raises(Killed):
        world.archiver(batch_orders=10, orders=dying).run(CUTOFF, FOREVER)
    assert world.checkpoints.inflight is not None
    puts = world.store.requests["PutObject"]

    world.clock.now += 961
    report = world.archiver(batch_orders=10).run(CUTOFF, FOREVER)

    assert report.batches_recovered == 1 and report.orders_archived == 3
    assert world.store.requests["PutObject"] == puts  # intact: no re-upload
    assert sorted(assert_archive_consistent(world.orders, world.store, old)) == old


def test_an_unreadable_unfinished_batch_is_discarded_when_no_order_points_to_it():
    world = World()
    old, _ = seed(world, old=3, recent=0)

    class Dies(InMemoryOrderStore):
        def mark_archived(self, entries):
            raise Killed("mark_archived")

    dying = Dies()
    dying.items = world.orders.items
    with pytest.raises(Killed):
        world.archiver(batch_orders=10, orders=dying).run(CUTOFF, FOREVER)
    [data_key] = [k for k in world.store.objects if k.startswith(DATA_PREFIX)]
    world.store.objects[data_key] = b"not gzip"
    world.clock.now += 961

    report = world.archiver(batch_orders=10).run(CUTOFF, FOREVER)

    assert report.failures == 0 and report.orders_archived == 3
    assert data_key not in world.store.objects
    assert sorted(assert_archive_consistent(world.orders, world.store, old)) == old
    assert all(
        len(decode_rows(world.store.objects[k])) for k in world.store.objects if k.startswith(DATA_PREFIX)
    )


def test_remaining_seconds_callback_is_consulted_before_each_chunk():
    world = World()
    seed(world, old=3, recent=0)
    calls: list[float] = []

    def remaining() -> float:
        calls.append(1.0)
        return 1.0

    report = world.archiver().run(CUTOFF, remaining)
    assert report.stopped == "deadline" and report.orders_archived == 0 and calls
