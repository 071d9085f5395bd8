"""AlarmForwarder with in-memory fakes: the robot's 20-per-minute budget is shared by every
forwarder, bursts are grouped into a summary that names every alarm, and whatever cannot be
posted is reported failed (so the queue brings it back, then its DLQ keeps it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from scrm_sync.adapters.memory import InMemorySendCounts
from scrm_sync.domain.alerts import MAX_MARKDOWN_BYTES
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.send_window import SendWindow
from scrm_sync.services.alarms import (
    AlarmForwarder,
    BudgetUnavailable,
    Notification,
    RobotRateLimited,
    RobotRejected,
    RobotUnavailable,
    SendBudget,
    robot_scope,
)

from tests.alarm_factories import alarm_message

ROBOT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=unit-test-robot-key"
T0 = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)


@dataclass
class FakeRobot:
    posts: list[str] = field(default_factory=list)
    failures: dict[int, Exception] = field(default_factory=dict)  # call number (from 1) -> error
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post_markdown(self, content: str) -> None:
        with self.lock:
            self.calls += 1
            if self.calls in self.failures:
                raise self.failures[self.calls]
            assert len(content.encode("utf-8")) <= MAX_MARKDOWN_BYTES
            self.posts.append(content)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    robot: FakeRobot
    counts: InMemorySendCounts
    clock: Clock
    forwarder: AlarmForwarder
    robot_urls: list[str]
    posted_at: list[datetime] = field(default_factory=list)


def make_world(document: dict | None = None, counts: InMemorySendCounts | None = None) -> World:
    robot, clock, urls = FakeRobot(), Clock(), []
    counts = counts or InMemorySendCounts()
    credentials = load_credentials(
        document if document is not None else {"wecom_robot": {"webhook_url": ROBOT_URL}}
    )

    def robot_for(url: str) -> FakeRobot:
        urls.append(url)
        return robot

    forwarder = AlarmForwarder(lambda: credentials, robot_for, SendBudget(counts), clock=clock)
    return World(robot, counts, clock, forwarder, urls)


def use_budget(world: World, sends: int) -> None:
    """Sends other forwarders took in this window."""
    budget = SendBudget(world.counts)
    for _ in range(sends):
        assert budget.claim(robot_scope(ROBOT_URL), world.clock()) is not None


def burst(count: int, prefix: str = "alarm", state: str = "ALARM") -> list[Notification]:
    return [
        Notification(f"{prefix}-{i:03d}", alarm_message(f"{prefix}-{i:03d}", state)) for i in range(count)
    ]


def names_in(posts: list[str], count: int, prefix: str = "alarm") -> set[str]:
    return {f"{prefix}-{i:03d}" for i in range(count) if any(f"{prefix}-{i:03d}" in p for p in posts)}


def test_one_alarm_is_one_message_with_its_details():
    world = make_world()
    report = world.forwarder.forward([Notification("m1", alarm_message("scrm-sync-dev-SyncSuccessRate"))])
    assert report.posts == 1 and report.individual == ["m1"] and report.failed == []
    (text,) = world.robot.posts
    assert "scrm-sync-dev-SyncSuccessRate" in text and "100 * ok / (ok + bad)" in text
    assert "< 99.9" in text and "(Asia/Shanghai)" in text and "console.amazonaws.cn" in text
    assert world.robot_urls == [ROBOT_URL]


def test_fifty_alarms_in_one_batch_become_seventeen_messages_and_one_summary_naming_the_rest():
    world = make_world()
    report = world.forwarder.forward(burst(50))
    assert report.posts == 18 and len(world.robot.posts) == 18  # 2 sends kept for other batches
    assert len(report.individual) == 17 and len(report.grouped) == 33 and report.failed == []
    assert names_in(world.robot.posts, 50) == {f"alarm-{i:03d}" for i in range(50)}
    assert world.robot.posts[-1].startswith("### 33 条告警状态变化")


def test_without_a_reserve_a_batch_uses_the_whole_window():
    world = make_world()
    credentials = load_credentials({"wecom_robot": {"webhook_url": ROBOT_URL}})
    forwarder = AlarmForwarder(
        lambda: credentials, lambda url: world.robot, SendBudget(world.counts), world.clock, reserve_sends=0
    )
    report = forwarder.forward(burst(50))
    assert report.posts == 20 and len(report.individual) == 19 and len(report.grouped) == 31


def test_a_burst_in_batches_posts_at_most_twenty_a_minute_and_the_rest_comes_back_grouped():
    world = make_world()
    notifications = burst(50)
    deferred: list[Notification] = []
    for start in range(0, 50, 10):  # five SQS batches arriving within the same seconds
        report = world.forwarder.forward(notifications[start : start + 10])
        deferred += [n for n in notifications if n.message_id in report.failed]
        assert not report.undelivered
    # batch 1: 10 messages; batch 2: 7 messages and a summary of 3; batches 3 and 4: one summary
    # each (the reserve); batch 5: nothing left in the window
    assert len(world.robot.posts) == 20 and len(deferred) == 10
    world.clock.advance(120)  # the queue's visibility timeout: the deferred records come back
    report = world.forwarder.forward(deferred)
    assert report.failed == [] and report.posts == 10
    assert names_in(world.robot.posts, 50) == {f"alarm-{i:03d}" for i in range(50)}


def test_concurrent_forwarders_share_one_budget():
    world = make_world()
    notifications = burst(100)
    reports = []

    def run(chunk: list[Notification]) -> None:
        reports.append(world.forwarder.forward(chunk))

    threads = [threading.Thread(target=run, args=(notifications[i : i + 10],)) for i in range(0, 100, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.robot.posts) <= 20
    delivered = {i for r in reports for i in (*r.individual, *r.grouped)}
    failed = {i for r in reports for i in r.failed}
    assert delivered | failed == {n.message_id for n in notifications} and not delivered & failed
    assert names_in(world.robot.posts, 100) == delivered  # every delivered alarm is named


def test_near_the_end_of_the_window_a_batch_is_one_summary():
    world = make_world()
    use_budget(world, 18)
    report = world.forwarder.forward(burst(5, prefix="late"))
    assert report.posts == 1 and len(report.grouped) == 5
    assert names_in(world.robot.posts, 5, prefix="late") == {f"late-{i:03d}" for i in range(5)}
    world.clock.advance(30)  # same window: the last send
    assert world.forwarder.forward(burst(3, prefix="later")).posts == 1
    assert len(world.forwarder.forward(burst(3, prefix="last")).deferred) == 3


def test_with_no_budget_left_everything_is_deferred_without_posting():
    world = make_world()
    use_budget(world, 20)
    report = world.forwarder.forward(burst(3))
    assert report.posts == 0 and world.robot.calls == 0 and len(report.deferred) == 3
    assert "budget" in report.problem


def test_the_window_slides_so_a_new_calendar_minute_does_not_double_the_rate():
    world = make_world()
    world.clock.now = datetime(2026, 11, 25, 2, 0, 55, tzinfo=UTC)
    use_budget(world, 20)
    world.clock.now = datetime(2026, 11, 25, 2, 1, 5, tzinfo=UTC)  # a new UTC minute, 10 s later
    assert world.forwarder.forward(burst(1, prefix="b")).deferred == ["b-000"]
    world.clock.now = datetime(2026, 11, 25, 2, 1, 50, tzinfo=UTC)  # 55 s after the sends
    assert world.forwarder.forward(burst(1, prefix="b")).deferred == ["b-000"]
    world.clock.now = datetime(2026, 11, 25, 2, 2, 0, tzinfo=UTC)  # 60 s after the last bucket
    assert world.forwarder.forward(burst(1, prefix="c")).individual == ["c-000"]


def test_alarm_transitions_get_their_own_messages_first_recoveries_are_summarized():
    world = make_world()
    use_budget(world, 16)
    batch = [*burst(3, prefix="ok", state="OK"), *burst(1, prefix="fire")]
    report = world.forwarder.forward(batch)
    assert report.individual == ["fire-000"] and sorted(report.grouped) == ["ok-000", "ok-001", "ok-002"]
    assert "fire-000" in world.robot.posts[0] and "3 条告警状态变化" in world.robot.posts[1]


def test_robot_failures_after_the_adapters_retries_fail_the_rest_of_the_batch():
    world = make_world()
    world.robot.failures = {1: RobotUnavailable("robot answered HTTP 503")}
    report = world.forwarder.forward(burst(3))
    assert report.posts == 0 and world.robot.calls == 1  # no budget wasted on a robot that is down
    assert sorted(report.undelivered) == ["alarm-000", "alarm-001", "alarm-002"]
    assert "HTTP 503" in report.problem
    world.clock.advance(120)  # redelivered: the robot is back
    assert world.forwarder.forward(burst(3)).posts == 3


def test_already_posted_alarms_of_a_batch_are_not_failed_when_a_later_post_fails():
    world = make_world()
    world.robot.failures = {3: RobotUnavailable("robot unreachable: TimeoutError")}
    report = world.forwarder.forward(burst(4))
    assert report.individual == ["alarm-000", "alarm-001"]
    assert report.undelivered == ["alarm-002", "alarm-003"]


def test_a_permanent_rejection_is_reported_with_its_errcode():
    world = make_world()
    world.robot.failures = {1: RobotRejected(93000, "invalid webhook url")}
    report = world.forwarder.forward(burst(2))
    assert sorted(report.failed) == ["alarm-000", "alarm-001"] and "93000" in report.problem


def test_the_robots_own_rate_limit_fills_the_shared_window():
    world = make_world()
    world.robot.failures = {1: RobotRateLimited("robot errcode 45009: too many messages")}
    report = world.forwarder.forward(burst(2))
    assert sorted(report.deferred) == ["alarm-000", "alarm-001"]
    other = AlarmForwarder(
        lambda: load_credentials({"wecom_robot": {"webhook_url": ROBOT_URL}}),
        lambda url: world.robot,
        SendBudget(world.counts),
        clock=world.clock,
    )
    assert other.forward(burst(1, prefix="x")).deferred == ["x-000"]  # no one posts in this window
    assert world.robot.calls == 1


def test_without_a_robot_in_the_secret_alarms_wait_in_the_queue():
    world = make_world(document={})
    report = world.forwarder.forward(burst(2))
    assert sorted(report.undelivered) == ["alarm-000", "alarm-001"] and "wecom_robot" in report.problem
    assert world.robot.calls == 0


def test_messages_that_are_not_alarms_are_reported_and_the_others_posted():
    world = make_world()
    report = world.forwarder.forward([Notification("junk", "hello"), *burst(1)])
    assert report.not_alarms == ["junk"] and report.individual == ["alarm-000"]
    assert report.failed == ["junk"]


def test_near_the_timeout_the_rest_is_deferred():
    world = make_world()
    left = iter([30.0, 30.0, 5.0])
    report = world.forwarder.forward(burst(5), time_left=lambda: next(left))
    assert report.posts == 2 and len(report.deferred) == 3 and "time" in report.problem


class BrokenCounts(InMemorySendCounts):
    def counts(self, keys):
        raise BudgetUnavailable("ProvisionedThroughputExceededException")


def test_an_unreachable_budget_store_defers_instead_of_posting_blindly():
    world = make_world(counts=BrokenCounts())
    report = world.forwarder.forward(burst(2))
    assert report.posts == 0 and len(report.deferred) == 2 and "Throughput" in report.problem


def test_the_budget_is_keyed_by_a_hash_of_the_url_never_the_key_itself():
    world = make_world()
    world.forwarder.forward(burst(1))
    (key,) = world.counts.sent
    assert key.startswith(robot_scope(ROBOT_URL) + "#2026-11-25T02:00:00Z")
    assert "unit-test-robot-key" not in key
    assert robot_scope(ROBOT_URL) != robot_scope(ROBOT_URL.replace("unit", "other"))


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_smaller_budgets_still_name_every_alarm(limit: int):
    counts = InMemorySendCounts()
    world = make_world(counts=counts)
    world.forwarder = AlarmForwarder(
        lambda: load_credentials({"wecom_robot": {"webhook_url": ROBOT_URL}}),
        lambda url: world.robot,
        SendBudget(counts, SendWindow(limit=limit)),
        clock=world.clock,
    )
    report = world.forwarder.forward(burst(12))
    assert 1 <= report.posts <= limit and report.failed == []
    assert names_in(world.robot.posts, 12) == {f"alarm-{i:03d}" for i in range(12)}
