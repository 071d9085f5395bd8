"""What every event source poller shares: a thread, a stop signal, a batch-in-progress count,
and the backlog it reports to /healthz. See sqs_poller.py and stream_poller.py."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Invoke = Callable[[str, Any], Any]
IDLE_WAIT = 0.2


class Poller(ABC):
    """`concurrency` threads poll and invoke at once (Lambda runs several batches of one queue
    in parallel, each in an execution environment of its own); stream pollers keep one per shard
    set, since a shard's records must stay in order."""

    def __init__(self, name: str, function_id: str, invoke: Invoke, concurrency: int = 1) -> None:
        self.name = name
        self.function_id = function_id
        self.invoke = invoke
        self.concurrency = max(1, concurrency)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self._active = 0
        self._active_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"scrm-poller-{name}", daemon=True)]

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._threads[0].start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._threads):
            if thread.is_alive():
                thread.join(timeout)

    def _run(self) -> None:
        try:
            self.setup()
        except Exception:
            log.exception("%s: could not start polling", self.name)
            return
        for n in range(1, self.concurrency):
            more = threading.Thread(target=self._loop, name=f"scrm-poller-{self.name}-{n}", daemon=True)
            self._threads.append(more)
            more.start()
        self.ready.set()
        self._loop()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                worked = self.poll_once()
            except Exception:
                log.exception("%s: polling failed; retrying", self.name)
                worked = False
            if not worked:
                self.stop_event.wait(IDLE_WAIT)

    # --- batches --------------------------------------------------------------------------------
    def call(self, event: dict[str, Any]) -> Any:
        """Invoke the function with one batch, counted as in progress while it runs."""
        with self._active_lock:
            self._active += 1
        try:
            return self.invoke(self.function_id, event)
        finally:
            with self._active_lock:
                self._active -= 1

    @property
    def active_batches(self) -> int:
        return self._active

    # --- to implement ----------------------------------------------------------------------------
    def setup(self) -> None:
        """Look up what polling needs (queue URL, shards); runs in the poller thread."""
        return None

    @abstractmethod
    def poll_once(self) -> bool:
        """Receive and process at most one batch; False when there was nothing to do."""

    @abstractmethod
    def backlog(self) -> int:
        """Records or messages not yet successfully processed, including those in progress."""


def failed_identifiers(result: Any, known: list[str]) -> list[str] | None:
    """The itemIdentifiers of a ReportBatchItemFailures response, in batch order.

    [] means all succeeded; None means the response is invalid, which fails the whole batch
    (as Lambda treats a malformed or unknown itemIdentifier)."""
    if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
        return []
    if not isinstance(result, dict) or not isinstance(result["batchItemFailures"], list):
        return None
    failed: set[str] = set()
    for item in result["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return [k for k in known if k in failed]
