"""The WeCom group robot adapter against a local HTTP server standing in for the robot
(tests/fake_robot.py; never the internet): the JSON it posts, which answers are retried with
backoff and which fail at once, the bounded total time, and that errors never carry the key."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from scrm_sync.adapters.wecom_robot import WeComRobot
from scrm_sync.services.alarms import RobotRateLimited, RobotRejected, RobotUnavailable

from tests.fake_robot import INVALID_KEY, RATE_LIMITED, ROBOT_KEY, UNAVAILABLE, FakeRobot, running_fake_robot

TEXT = '### <font color="warning">ALARM</font> 同步成功率 sync success rate\n> 时间 Time: 10:00:30'


@pytest.fixture
def fake() -> Iterator[FakeRobot]:
    with running_fake_robot() as robot:
        yield robot


class Pauses:
    """A sleep that only records, on a clock that it advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def robot(url: str, pauses: Pauses | None = None, **options: float) -> WeComRobot:
    pauses = pauses or Pauses()
    return WeComRobot(url, sleep=pauses.sleep, clock=pauses.clock, **options)


def test_posts_one_markdown_message_as_utf8_json(fake: FakeRobot):
    robot(fake.url).post_markdown(TEXT)
    assert fake.delivered == [TEXT]
    assert len(fake.attempts) == 1


def test_sends_the_documented_body(fake: FakeRobot):
    seen: list[dict] = []
    original = fake.answer

    def spy(key: str, body: bytes):
        seen.append(json.loads(body))
        return original(key, body)

    fake.answer = spy  # type: ignore[method-assign]
    robot(fake.url).post_markdown("hello")
    assert seen == [{"msgtype": "markdown", "markdown": {"content": "hello"}}]


def test_server_errors_are_retried_with_growing_backoff_then_succeed(fake: FakeRobot):
    fake.script = [UNAVAILABLE, UNAVAILABLE]
    pauses = Pauses()
    robot(fake.url, pauses).post_markdown(TEXT)
    assert [a.status for a in fake.attempts] == [503, 503, 200] and fake.delivered == [TEXT]
    first, second = pauses.pauses
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0  # 0.5 s doubling, with jitter


def test_a_robot_that_stays_down_raises_unavailable_after_the_attempts(fake: FakeRobot):
    fake.default = UNAVAILABLE
    with pytest.raises(RobotUnavailable, match="HTTP 503") as caught:
        robot(fake.url).post_markdown(TEXT)
    assert len(fake.attempts) == 3
    assert ROBOT_KEY not in str(caught.value) and caught.value.__cause__ is None


def test_the_rate_limit_errcode_is_retried_then_raised_as_rate_limited(fake: FakeRobot):
    fake.default = RATE_LIMITED
    with pytest.raises(RobotRateLimited, match="45009"):
        robot(fake.url).post_markdown(TEXT)
    assert len(fake.attempts) == 3


def test_system_busy_is_transient(fake: FakeRobot):
    fake.script = [(200, {"errcode": -1, "errmsg": "system busy"})]
    robot(fake.url).post_markdown(TEXT)
    assert fake.delivered == [TEXT] and len(fake.attempts) == 2


def test_an_invalid_key_is_rejected_at_once_and_the_key_is_redacted(fake: FakeRobot):
    fake.default = INVALID_KEY
    with pytest.raises(RobotRejected) as caught:
        robot(fake.url).post_markdown(TEXT)
    assert caught.value.errcode == 93000 and len(fake.attempts) == 1
    assert ROBOT_KEY not in str(caught.value) and "invalid webhook url" in str(caught.value)


def test_a_wrong_path_is_a_permanent_http_error(fake: FakeRobot):
    with pytest.raises(RobotRejected, match="HTTP 404"):
        robot(fake.url.replace("/webhook/send", "/webhook/nope")).post_markdown(TEXT)


def test_an_unreachable_robot_is_transient_and_the_error_names_no_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key={ROBOT_KEY}"
    with pytest.raises(RobotUnavailable, match="unreachable") as caught:
        robot(url, first_backoff=0.01).post_markdown(TEXT)
    assert ROBOT_KEY not in str(caught.value) and "127.0.0.1" not in str(caught.value)


def test_a_hanging_robot_times_out():
    with socket.socket() as server:  # accepts the connection, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key={ROBOT_KEY}"
        with pytest.raises(RobotUnavailable, match=r"[Tt]imeout"):
            WeComRobot(url, timeout=0.2, attempts=1).post_markdown(TEXT)
        thread.join(1)
        for connection in accepted:
            connection.close()


def test_retries_stop_when_the_total_time_is_spent(fake: FakeRobot):
    fake.default = UNAVAILABLE
    pauses = Pauses()
    with pytest.raises(RobotUnavailable):
        robot(fake.url, pauses, attempts=10, first_backoff=1.0, max_seconds=1.5).post_markdown(TEXT)
    assert len(fake.attempts) == 2 and sum(pauses.pauses) < 1.5


def test_a_non_http_url_is_rejected_without_a_request():
    with pytest.raises(RobotRejected, match="not an http"):
        robot(f"file:///etc/passwd?key={ROBOT_KEY}").post_markdown(TEXT)


def test_the_fake_refuses_oversized_markdown_like_the_robot(fake: FakeRobot):
    with pytest.raises(RobotRejected) as caught:
        robot(fake.url).post_markdown("x" * 5000)
    assert caught.value.errcode == 40058
