"""The sender: oldest first, bounded batches, stop at the first failure, capped backoff with jitter."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from scrm_edge.runtime.outbox import Outbox
from scrm_edge.runtime.sender import Sender, SenderSettings
from scrm_edge.runtime.uplinks import UplinkRejected, UplinkUnavailable
from scrm_edge.score import format_time

from tests.unit.edge.runtime.support import make_score, window


class RecordingUplink:
    """Records each batch; `outcomes` scripts what each call does (None: stored)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.batches: list[list[str]] = []  # window_start of each score sent

    def send(self, batch: Sequence[bytes]) -> None:
        self.batches.append([json.loads(document)["window_start"] for document in batch])
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome

    def close(self) -> None:
        return None

    def describe(self) -> str:
        return "recording"


class RecordingClock:
    """Single-threaded fake time: sleeping moves time on and is recorded."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        self.time += seconds
        return True

    def attach(self, thread: threading.Thread) -> None:
        return None


def stamps(*indexes: int) -> list[str]:
    return [format_time(window(index)) for index in indexes]


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite")
    for index in range(5):
        box.put(make_score(window_start=window(index)))
    return box


def test_batches_are_bounded_by_count_and_sent_oldest_first(outbox: Outbox) -> None:
    uplink = RecordingUplink()
    sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_scores=2))
    assert sender.drain() is True
    assert uplink.batches == [stamps(0, 1), stamps(2, 3), stamps(4)]
    assert len(outbox) == 0
    assert sender.counts.sent == 5


def test_batches_are_bounded_by_bytes_and_a_large_score_goes_alone(outbox: Outbox) -> None:
    size = len(make_score().to_json())
    uplink = RecordingUplink()
    sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_bytes=2 * size + 1))
    sender.drain()
    assert uplink.batches == [stamps(0, 1), stamps(2, 3), stamps(4)]

    outbox.put(make_score(window_start=window(5)))
    tiny = Sender(outbox, RecordingUplink(), settings=SenderSettings(max_batch_bytes=10))
    assert [entry.window_start for entry in tiny.next_batch()] == stamps(5)


def test_the_first_failed_batch_stops_the_drain_so_nothing_newer_goes_first(outbox: Outbox) -> None:
    uplink = RecordingUplink(None, UplinkUnavailable("down"))
    sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_scores=2))
    assert sender.drain() is False
    assert uplink.batches == [stamps(0, 1), stamps(2, 3)]
    assert [entry.window_start for entry in outbox.pending(10)] == stamps(2, 3, 4)
    assert sender.counts.consecutive_failures == 1
    assert sender.drain() is True  # the network is back: the same batch goes again, then the rest
    assert uplink.batches[2:] == [stamps(2, 3), stamps(4)]
    assert sender.counts.consecutive_failures == 0


def test_the_delivered_prefix_of_a_failed_batch_is_acknowledged(outbox: Outbox) -> None:
    uplink = RecordingUplink(UplinkUnavailable("PUBACK missing", delivered=2))
    sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_scores=3))
    assert sender.drain() is False
    assert [entry.window_start for entry in outbox.pending(10)] == stamps(2, 3, 4)
    assert sender.counts.sent == 2


def test_rejected_scores_move_aside_and_the_rest_of_the_batch_counts_as_sent(outbox: Outbox) -> None:
    uplink = RecordingUplink(UplinkRejected({1: "machine_class: unknown"}))
    sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_scores=3))
    assert sender.drain() is True
    assert uplink.batches == [stamps(0, 1, 2), stamps(3, 4)]
    assert [(entry.window_start, entry.reason) for entry in outbox.rejected()] == [
        (stamps(1)[0], "machine_class: unknown")
    ]
    assert sender.counts.sent == 4
    assert sender.counts.rejected == 1


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter(outbox: Outbox) -> None:
    settings = SenderSettings(initial_backoff_seconds=1, max_backoff_seconds=60)
    low = Sender(outbox, RecordingUplink(), settings=settings, jitter=lambda: 0.0)
    high = Sender(outbox, RecordingUplink(), settings=settings, jitter=lambda: 0.999999)
    ceilings = []
    for failures in range(1, 10):
        low.counts.consecutive_failures = high.counts.consecutive_failures = failures
        assert low.backoff_seconds() == pytest.approx(high.backoff_seconds() / 2, rel=1e-5)
        ceilings.append(round(high.backoff_seconds()))
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_retry_after_from_the_server_is_honoured(outbox: Outbox) -> None:
    sender = Sender(outbox, RecordingUplink(UplinkUnavailable("429", retry_after=45)), jitter=lambda: 0.0)
    sender.drain()
    assert sender.backoff_seconds() == 45


def test_run_backs_off_between_failures_and_returns_once_everything_is_sent(outbox: Outbox) -> None:
    uplink = RecordingUplink(*[UplinkUnavailable("down")] * 8)
    clock = RecordingClock()
    sender = Sender(outbox, uplink, clock=clock, jitter=lambda: 0.5)
    sender.run(threading.Event(), threading.Event(), finished=lambda: True)
    # 0.75 × (1, 2, 4, 8, 16, 32, 60, 60): equal jitter at its midpoint, capped at 60 s.
    assert clock.sleeps == [0.75, 1.5, 3.0, 6.0, 12.0, 24.0, 45.0, 45.0]
    assert len(outbox) == 0
    assert [stamp for batch in uplink.batches[8:] for stamp in batch] == stamps(0, 1, 2, 3, 4)


def test_run_returns_when_stopping(outbox: Outbox) -> None:
    stopping = threading.Event()

    class StopDuringSend(RecordingUplink):
        def send(self, batch: Sequence[bytes]) -> None:
            stopping.set()
            raise UplinkUnavailable("down")

    clock = RecordingClock()
    Sender(outbox, StopDuringSend(), clock=clock).run(stopping, threading.Event(), finished=lambda: False)
    assert clock.sleeps == []  # no backoff wait once stopping
    assert len(outbox) == 5


def test_a_new_sender_resumes_from_the_outbox_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as first:
        for index in range(4):
            first.put(make_score(window_start=window(index)))
        Sender(
            first,
            RecordingUplink(None, UplinkUnavailable("down")),
            settings=SenderSettings(max_batch_scores=2),
        ).drain()
    uplink = RecordingUplink()
    with Outbox(path) as reopened:
        Sender(reopened, uplink).drain()
    assert uplink.batches == [stamps(2, 3)]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="backoff"):
        SenderSettings(initial_backoff_seconds=120, max_backoff_seconds=60)
    with pytest.raises(ValueError, match="batch"):
        SenderSettings(max_batch_scores=0)
