"""Drains the outbox through an uplink, oldest score first.

Batches hold at most `max_batch_scores` scores and `max_batch_bytes` bytes of documents (one
score larger than that goes alone). The sender stops at the first batch that fails, so nothing
newer is ever sent before something older, and waits with exponential backoff and jitter
(1 s, 2 s, 4 s ... capped at 60 s by default; a server's Retry-After is honoured) before trying
again. Its only state is the outbox, so a restarted sender resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from scrm_edge.runtime.clock import Clock, SystemClock
from scrm_edge.runtime.outbox import Outbox, OutboxEntry, ScoreKey
from scrm_edge.runtime.uplinks import Uplink, UplinkRejected, UplinkUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SenderSettings:
    max_batch_scores: int = 50
    max_batch_bytes: int = 256 * 1024
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    idle_poll_seconds: float = 5.0  # how often an idle sender looks at the outbox without being woken

    def __post_init__(self) -> None:
        if self.max_batch_scores < 1 or self.max_batch_bytes < 1:
            raise ValueError("batch limits must be positive")
        if not 0 < self.initial_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoff must satisfy 0 < initial <= max")
        if self.idle_poll_seconds <= 0:
            raise ValueError("idle_poll_seconds must be positive")


@dataclass
class SenderCounts:
    sent: int = 0  # scores the uplink confirmed
    rejected: int = 0  # scores moved to the outbox's rejected table
    batches: int = 0  # batches attempted
    failures: int = 0  # batches that failed (UplinkUnavailable)
    consecutive_failures: int = 0


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        uplink: Uplink,
        *,
        settings: SenderSettings | None = None,
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.uplink = uplink
        self.settings = settings or SenderSettings()
        self.clock = clock or SystemClock()
        self.jitter = jitter  # a value in [0, 1)
        self.counts = SenderCounts()
        self._retry_after: float | None = None

    def next_batch(self) -> list[OutboxEntry]:
        candidates = self.outbox.pending(self.settings.max_batch_scores)
        batch: list[OutboxEntry] = []
        size = 0
        for entry in candidates:
            if batch and size + len(entry.document) > self.settings.max_batch_bytes:
                break
            batch.append(entry)
            size += len(entry.document)
        return batch

    def send_batch(self) -> bool | None:
        """Send the oldest batch: True if it went, False if it failed, None if nothing was pending."""
        batch = self.next_batch()
        if not batch:
            return None
        self.counts.batches += 1
        documents = [entry.document for entry in batch]
        try:
            self.uplink.send(documents)
        except UplinkRejected as refusal:
            refused = {batch[i].key: reason for i, reason in refusal.reasons.items() if 0 <= i < len(batch)}
            for key, reason in refused.items():
                log.error("score %s/%s rejected for good: %s", key[0], key[1], reason)
            self.counts.rejected += self.outbox.reject(refused)
            self._acknowledge([entry.key for entry in batch if entry.key not in refused])
        except UplinkUnavailable as error:
            delivered = max(0, min(error.delivered, len(batch)))
            self._acknowledge([entry.key for entry in batch[:delivered]])
            self.counts.failures += 1
            self.counts.consecutive_failures += 1
            self._retry_after = error.retry_after
            log.warning(
                "uplink unavailable (%s); %d score(s) wait, attempt %d",
                error,
                len(self.outbox),
                self.counts.consecutive_failures,
            )
            return False
        else:
            self._acknowledge([entry.key for entry in batch])
        if self.counts.consecutive_failures:
            log.info("uplink back after %d failed attempt(s)", self.counts.consecutive_failures)
        self.counts.consecutive_failures = 0
        self._retry_after = None
        return True

    def drain(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Send batches until the outbox is empty (True) or a batch fails (False). Never sleeps."""
        while not should_stop():
            outcome = self.send_batch()
            if outcome is None:
                return True
            if outcome is False:
                return False
        return len(self.outbox) == 0

    def backoff_seconds(self) -> float:
        """The wait before the next attempt after `consecutive_failures` failures in a row."""
        failures = max(self.counts.consecutive_failures, 1)
        ceiling = min(
            self.settings.max_backoff_seconds, self.settings.initial_backoff_seconds * 2 ** (failures - 1)
        )
        # "Equal jitter": between half and all of the ceiling, so devices that lost the network
        # together do not all come back in the same second, and none retries in a tight loop.
        delay = ceiling * (0.5 + 0.5 * self.jitter())
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
        return delay

    def run(
        self, stopping: threading.Event, work_ready: threading.Event, finished: Callable[[], bool]
    ) -> None:
        """The sender thread: drain, back off after failures, idle until woken by new work.

        Returns when `stopping` is set, or when the outbox is empty and `finished()` says no
        more scores will come.
        """
        while not stopping.is_set():
            work_ready.clear()
            if self.drain(stopping.is_set):
                if finished() and len(self.outbox) == 0:
                    return
                self.clock.sleep(self.settings.idle_poll_seconds, work_ready)
            elif not stopping.is_set():
                self.clock.sleep(self.backoff_seconds(), stopping)

    def _acknowledge(self, keys: list[ScoreKey]) -> None:
        self.counts.sent += self.outbox.acknowledge(keys)
