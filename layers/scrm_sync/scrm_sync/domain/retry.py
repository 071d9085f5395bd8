"""How long a message waits before its next attempt: exponential, capped, with jitter.

Used for queue messages whose destination is down (WeCom's API, a webhook receiver): the message's
visibility is pushed out by this many seconds, so retries thin out instead of hammering, and the
jitter keeps the retries of many messages that failed together from arriving together again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MAX_BACKOFF_SECONDS = 900  # SQS's longest useful wait before a message is retried (15 minutes)


def backoff_seconds(
    receive_count: int, base: int = 10, cap: int = MAX_BACKOFF_SECONDS, jitter: random.Random | None = None
) -> int:
    """`base`, 2x, 4x ... up to `cap`, then drawn uniformly from the upper half of that (full
    attempts stay ordered, neighbours spread)."""
    ceiling = min(base * 2 ** max(receive_count - 1, 0), cap)
    draw = (jitter or random).uniform(0.5, 1.0)
    return max(1, round(ceiling * draw))


@dataclass(frozen=True, slots=True)
class Backoff:
    """The backoff of one deployment: `base` is the template's RetryBackoffBaseSeconds."""

    base: int = 10
    cap: int = MAX_BACKOFF_SECONDS

    def seconds(self, receive_count: int, jitter: random.Random | None = None) -> int:
        return backoff_seconds(receive_count, self.base, self.cap, jitter)
