"""The outbox: durable, idempotent by (device_id, window_start), oldest first, bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from scrm_edge.runtime.outbox import Outbox
from scrm_edge.score import format_time

from tests.unit.edge.runtime.support import make_score, window

ROOT = Path(__file__).resolve().parents[4]


def test_pending_is_oldest_window_first_then_device(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        for index, device in [(2, "b"), (0, "b"), (1, "a"), (0, "a"), (2, "a")]:
            assert outbox.put(make_score(device, window(index)))
        keys = [entry.key for entry in outbox.pending(10)]
        assert keys == [
            ("a", format_time(window(0))),
            ("b", format_time(window(0))),
            ("a", format_time(window(1))),
            ("a", format_time(window(2))),
            ("b", format_time(window(2))),
        ]
        assert [entry.key for entry in outbox.pending(2)] == keys[:2]
        assert len(outbox) == 5


def test_a_second_put_of_the_same_key_is_ignored_even_after_it_was_sent(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert outbox.put(make_score(score=96))
        assert not outbox.put(make_score(score=12))  # same key, other content: the first stays
        [entry] = outbox.pending(10)
        assert json.loads(entry.document)["score"] == 96
        assert outbox.acknowledge([entry.key]) == 1
        assert len(outbox) == 0
        assert not outbox.put(make_score())  # produced again after a restart: not sent twice
        assert outbox.pending(10) == []


def test_acknowledge_removes_only_the_named_scores(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        for index in range(3):
            outbox.put(make_score(window_start=window(index)))
        first, second, third = outbox.pending(10)
        assert outbox.acknowledge([first.key, third.key]) == 2
        assert outbox.acknowledge([first.key]) == 0
        assert [entry.key for entry in outbox.pending(10)] == [second.key]


def test_rejected_scores_move_to_their_table_and_are_never_pending_again(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        outbox.put(make_score(window_start=window(0)))
        outbox.put(make_score(window_start=window(1)))
        first, second = outbox.pending(10)
        assert outbox.reject({first.key: "machine_class: unknown class"}) == 1
        assert [entry.key for entry in outbox.pending(10)] == [second.key]
        [kept] = outbox.rejected()
        assert (kept.device_id, kept.window_start) == first.key
        assert kept.document == first.document
        assert kept.reason == "machine_class: unknown class"
        assert not outbox.put(make_score(window_start=window(0)))  # a rejected key is known too


def test_when_full_the_oldest_pending_scores_are_dropped_and_counted(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", max_pending=3) as outbox:
        for index in range(5):
            assert outbox.put(make_score(window_start=window(index)))
        assert len(outbox) == 3
        assert outbox.dropped == 2
        assert [entry.window_start for entry in outbox.pending(10)] == [
            format_time(window(i)) for i in (2, 3, 4)
        ]
        outbox.put(make_score(window_start=window(-1)))  # older than everything kept: it is the one dropped
        assert outbox.dropped == 3
        assert [entry.window_start for entry in outbox.pending(10)] == [
            format_time(window(i)) for i in (2, 3, 4)
        ]
    with Outbox(tmp_path / "outbox.sqlite", max_pending=3) as reopened:
        assert reopened.dropped == 3


def test_sent_tombstones_are_bounded(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", keep_sent=2) as outbox:
        for index in range(5):
            outbox.put(make_score(window_start=window(index)))
            outbox.acknowledge([entry.key for entry in outbox.pending(10)])
        # The two newest keys are remembered; older ones were forgotten and could be stored again.
        assert not outbox.put(make_score(window_start=window(4)))
        assert not outbox.put(make_score(window_start=window(3)))
        assert outbox.put(make_score(window_start=window(0)))


def test_latest_window_start_covers_pending_sent_and_rejected(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert outbox.latest_window_start("pump-0042") is None
        outbox.put(make_score(window_start=window(0)))
        outbox.put(make_score(window_start=window(1)))
        outbox.put(make_score("other", window(9)))
        first, second = [e for e in outbox.pending(10) if e.device_id == "pump-0042"]
        outbox.acknowledge([first.key])
        outbox.reject({second.key: "refused"})
        assert outbox.latest_window_start("pump-0042") == format_time(window(1))
        assert outbox.latest_window_start("other") == format_time(window(9))


def test_one_producer_and_one_sender_thread_lose_nothing(tmp_path: Path) -> None:
    total = 300
    done = threading.Event()
    sent: list[tuple[str, str]] = []

    with Outbox(tmp_path / "outbox.sqlite") as outbox:

        def produce() -> None:
            for index in range(total):
                outbox.put(make_score(window_start=window(index)))
            done.set()

        def send() -> None:
            while not (done.is_set() and len(outbox) == 0):
                batch = outbox.pending(7)
                sent.extend(entry.key for entry in batch)
                outbox.acknowledge(entry.key for entry in batch)

        threads = [threading.Thread(target=produce), threading.Thread(target=send)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sent == [("pump-0042", format_time(window(i))) for i in range(total)]


_KILLED_WRITER = """
import os, signal, sys
from scrm_edge.runtime.outbox import Outbox
from tests.unit.edge.runtime.support import make_score, window
outbox = Outbox(sys.argv[1])
for index in range(20):
    outbox.put(make_score(window_start=window(index)))
outbox.acknowledge([entry.key for entry in outbox.pending(5)])
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: a crash
"""


def test_scores_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "edge"), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "written", result.stderr
    assert result.returncode == -signal.SIGKILL
    with Outbox(path) as reopened:
        assert len(reopened) == 15
        assert reopened.pending(1)[0].window_start == format_time(window(5))
        assert not reopened.put(make_score(window_start=window(0)))  # sent before the crash: still known


def test_limits_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_pending"):
        Outbox(tmp_path / "a.sqlite", max_pending=0)
