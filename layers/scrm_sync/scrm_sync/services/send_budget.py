"""A send budget shared by every concurrent sender of one rate-limited API (the alarm robot's 20
messages a minute, WeCom's 10,000 calls per API per corp a minute): a sliding window of counters
in a store (domain/send_window.py), claimed with conditional increments so concurrent senders can
never overshoot together.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ..domain.send_window import SendWindow


class BudgetUnavailable(RuntimeError):
    """The budget store could not be read or updated (throttled, unreachable)."""


class SendCounts(Protocol):
    """Send counters by key, shared by every sender (the API's rate-limit state)."""

    def counts(self, keys: Sequence[str]) -> dict[str, int]:
        """Current counts of the keys that exist (strongly consistent)."""
        ...

    def increment_below(self, key: str, ceiling: int, expires_at: int, amount: int = 1) -> int | None:
        """Add `amount` to the counter if the result stays within `ceiling`, atomically; the new
        count, or None."""
        ...

    def fill(self, key: str, limit: int, expires_at: int) -> None:
        """Raise the counter to `limit` (never lower it)."""
        ...


class SendBudget:
    """Claims sends from the sliding window of one scope."""

    def __init__(self, counts: SendCounts, window: SendWindow | None = None) -> None:
        self._counts = counts
        self.window = window or SendWindow()

    def claim(self, scope: str, now: datetime, amount: int = 1) -> int | None:
        """Take `amount` sends: how many are left in the window after them, or None when fewer
        than `amount` were left."""
        bucket = self.window.bucket(now)
        earlier = [self.window.key(scope, b) for b in self.window.earlier(bucket)]
        ceiling = self.window.ceiling(self._counts.counts(earlier).values())
        if ceiling < amount:
            return None
        sent = self._counts.increment_below(
            self.window.key(scope, bucket), ceiling, self.window.expires_at(bucket), amount
        )
        return None if sent is None else ceiling - sent

    def exhaust(self, scope: str, now: datetime) -> None:
        """Mark the window full (the API said so): nobody sends until it slides on."""
        bucket = self.window.bucket(now)
        self._counts.fill(self.window.key(scope, bucket), self.window.limit, self.window.expires_at(bucket))


class BlockAllowance:
    """Sends claimed from a SendBudget in blocks, so a busy sender pays one conditional write per
    `block` sends rather than per send. A block is spent within its window bucket; what is left
    when the bucket ends is given up (counted, never sent: the budget errs on the safe side)."""

    def __init__(self, budget: SendBudget, block: int = 20) -> None:
        self._budget = budget
        self._block = max(1, block)
        self._left: dict[str, tuple[int, int]] = {}  # scope -> (bucket, sends left in it)
        self._lock = threading.Lock()

    @property
    def window(self) -> SendWindow:
        return self._budget.window

    def take(self, scope: str, now: datetime) -> bool:
        """One send, from this process's block or a newly claimed one; False when the window is full."""
        bucket = self._budget.window.bucket(now)
        with self._lock:
            held_bucket, left = self._left.get(scope, (bucket, 0))
            if held_bucket == bucket and left > 0:
                self._left[scope] = (bucket, left - 1)
                return True
        for amount in (self._block, 1):
            if self._budget.claim(scope, now, amount) is not None:
                with self._lock:
                    self._left[scope] = (bucket, amount - 1)
                return True
        return False

    def exhaust(self, scope: str, now: datetime) -> None:
        with self._lock:
            self._left.pop(scope, None)
        self._budget.exhaust(scope, now)
