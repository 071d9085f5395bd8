"""The virtual clock: time jumps only when every thread using it sleeps, to the earliest wake-up."""

from __future__ import annotations

import threading
import time

from scrm_edge.runtime.clock import SystemClock, VirtualClock


def run(clock: VirtualClock, *targets: object) -> None:
    threads = [threading.Thread(target=target) for target in targets]  # type: ignore[arg-type]
    for thread in threads:
        clock.attach(thread)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_sleepers_wake_in_time_order_and_time_jumps() -> None:
    clock = VirtualClock(1000.0)
    events: list[tuple[str, float]] = []
    lock = threading.Lock()

    def sleeper(name: str, step: float, count: int) -> None:
        for _ in range(count):
            assert clock.sleep(step)
            with lock:
                events.append((name, clock.now()))

    began = time.monotonic()
    run(clock, lambda: sleeper("window", 10, 6), lambda: sleeper("backoff", 25, 2))
    assert time.monotonic() - began < 5
    # Each thread saw its own wake-up time; ties (1050) may land in either order.
    assert sorted(events, key=lambda e: (e[1], e[0])) == [
        ("window", 1010),
        ("window", 1020),
        ("backoff", 1025),
        ("window", 1030),
        ("window", 1040),
        ("backoff", 1050),
        ("window", 1050),
        ("window", 1060),
    ]
    assert clock.now() == 1060


def test_time_stands_still_while_a_user_is_busy() -> None:
    clock = VirtualClock(0.0)
    busy = threading.Event()
    release = threading.Event()
    seen_while_busy: list[float] = []

    def worker() -> None:
        clock.sleep(1)  # now a user of the clock
        busy.set()
        release.wait(5)  # busy outside the clock (an HTTP request, say)

    def ticker() -> None:
        busy.wait(5)
        for _ in range(3):
            clock.sleep(1)
            seen_while_busy.append(clock.now())

    threads = [threading.Thread(target=worker), threading.Thread(target=ticker)]
    for thread in threads:
        thread.start()
    busy.wait(5)
    time.sleep(0.2)
    assert seen_while_busy == []  # the ticker waits: the worker has not slept again
    release.set()  # the worker ends, so it no longer holds time back
    for thread in threads:
        thread.join(timeout=5)
    assert seen_while_busy == [2, 3, 4]


def test_an_interrupted_sleep_returns_false_without_moving_time() -> None:
    clock = VirtualClock(0.0)
    interrupt = threading.Event()
    interrupt.set()
    assert clock.sleep(60, interrupt) is False
    assert clock.now() == 0.0

    other = threading.Event()
    outcome: list[bool] = []
    user = threading.Thread(target=lambda: outcome.append(clock.sleep(60, other)))
    blocker_ready = threading.Event()
    stop_blocker = threading.Event()

    def blocker() -> None:
        clock.sleep(0.5)
        blocker_ready.set()
        stop_blocker.wait(5)  # busy: time cannot reach 60 while this runs

    blocking = threading.Thread(target=blocker)
    blocking.start()
    blocker_ready.wait(5)
    user.start()
    time.sleep(0.05)
    other.set()
    user.join(timeout=5)
    stop_blocker.set()
    blocking.join(timeout=5)
    assert outcome == [False]
    assert clock.now() == 0.5


def test_advance_moves_time_by_hand() -> None:
    clock = VirtualClock(5.0)
    clock.advance(2.5)
    assert clock.now() == 7.5


def test_the_system_clock_sleep_can_be_interrupted() -> None:
    clock = SystemClock()
    interrupt = threading.Event()
    threading.Timer(0.05, interrupt.set).start()
    began = time.monotonic()
    assert clock.sleep(30, interrupt) is False
    assert time.monotonic() - began < 5
    assert clock.sleep(0.01, threading.Event()) is True
    assert abs(clock.now() - time.time()) < 1
