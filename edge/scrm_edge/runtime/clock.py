"""Time for the runtime's threads: the system clock, or a virtual one that runs faster than real time.

Both answer `now()` in POSIX seconds and `sleep(seconds, interrupt)`, which returns False when the
interrupt event was set before the time passed (a stop request, or new work for an idle sender).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the POSIX epoch (virtual for VirtualClock)."""
        ...

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Wait `seconds`; False if `interrupt` was set first."""
        ...

    def attach(self, thread: threading.Thread) -> None:
        """Count `thread` (started or about to be) as a user of this clock until it ends."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        if interrupt is None:
            time.sleep(max(seconds, 0.0))
            return True
        if seconds <= 0:
            return not interrupt.is_set()
        return not interrupt.wait(seconds)

    def attach(self, thread: threading.Thread) -> None:
        return None


class VirtualClock:
    """Simulated seconds: a discrete-event scheduler for the runtime's threads.

    A thread that sleeps on this clock waits until every thread using the clock is asleep too;
    then time jumps to the earliest wake-up. Ten virtual minutes of sensor windows and sender
    backoff pass in milliseconds, in the order they would happen in real time, and time stands
    still while any user is busy (scoring a window, waiting for an HTTP answer). A thread counts
    as a user from `attach` (or its first sleep) until it ends; attach threads before starting
    them, or the first to start may run ahead alone. Threads that never sleep on it (a test's main
    thread, an HTTP server) only read it.
    """

    def __init__(self, start: float = 0.0, *, poll_seconds: float = 0.002) -> None:
        self._now = float(start)
        self._poll_seconds = poll_seconds
        self._condition = threading.Condition()
        self._users: set[threading.Thread] = set()
        self._sleepers: dict[threading.Thread, tuple[float, threading.Event | None]] = {}

    def now(self) -> float:
        with self._condition:
            return self._now

    def attach(self, thread: threading.Thread) -> None:
        with self._condition:
            self._users.add(thread)

    def detach(self, thread: threading.Thread) -> None:
        """Stop counting a thread that is still alive (a test's thread that held time still)."""
        with self._condition:
            self._users.discard(thread)
            self._condition.notify_all()

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (for a test that drives the clock itself)."""
        with self._condition:
            self._now += max(seconds, 0.0)
            self._condition.notify_all()

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        if interrupt is not None and interrupt.is_set():
            return False
        me = threading.current_thread()
        with self._condition:
            target = self._now + max(seconds, 0.0)
            self._users.add(me)
            self._sleepers[me] = (target, interrupt)
            try:
                while True:
                    if interrupt is not None and interrupt.is_set():
                        return False
                    if self._now >= target:
                        return True
                    self._advance_if_everyone_sleeps()
                    if self._now >= target:
                        return True
                    # Interrupt events are set without this condition: poll them.
                    self._condition.wait(self._poll_seconds)
            finally:
                del self._sleepers[me]
                self._condition.notify_all()

    def _advance_if_everyone_sleeps(self) -> None:
        # A thread attached before it started counts; one that has ended does not.
        self._users = {thread for thread in self._users if thread.ident is None or thread.is_alive()}
        if any(thread not in self._sleepers for thread in self._users):
            return
        if any(event is not None and event.is_set() for _, event in self._sleepers.values()):
            return  # that sleeper is about to wake: it may have work to do at the current time
        earliest = min(target for target, _ in self._sleepers.values())
        if earliest > self._now:
            self._now = earliest
            self._condition.notify_all()
