"""The component: configuration, the runtime's threads, outages, lost acknowledgements and SIGTERM.

The outage tests run the real runtime (simulated source -> fake scorer -> outbox -> HttpUplink ->
a local receiver that dedupes like the cloud) on a VirtualClock: ten minutes of 10 s windows and
backoff pass in well under a second, in the order they would in real time.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scrm_edge.runtime.clock import VirtualClock
from scrm_edge.runtime.component import (
    EXIT_CONFIG,
    ConfigError,
    build_runtime,
    main,
    parse_config,
)
from scrm_edge.runtime.outbox import Outbox
from scrm_edge.runtime.sources import SimulatedSensor
from scrm_edge.score import format_time

from tests.unit.edge.runtime.support import API_KEY, START, fake_scorer_factory, running_receiver, window
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[4]
ENVIRONMENT = {"SCRM_API_KEY": API_KEY}


def example_config(tmp_path: Path, url: str, **changes: Any) -> dict[str, Any]:
    """A complete configuration: a simulated pump, the HTTP uplink, an outbox in tmp_path."""
    config: dict[str, Any] = {
        "machine": {"device_id": "pump-0042", "machine_class": "group2_rigid", "rpm": 1480},
        "window_seconds": 10,
        "sample_rate_hz": 1000,
        "outbox": {"path": str(tmp_path / "outbox.sqlite"), "max_pending": 100_000},
        "source": {
            "kind": "simulated",
            "signal": {"name": "healthy"},
            "start": format_time(START),
            "windows": 90,
            "pacing": "realtime",
        },
        "uplink": {"kind": "http", "url": url, "api_key_env": "SCRM_API_KEY", "timeout_seconds": 5},
        "sender": {"max_batch_scores": 50, "initial_backoff_seconds": 1, "max_backoff_seconds": 60},
        "flush_seconds": 2,
        "log_level": "INFO",
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = config
        for parent in parents:
            target = target[parent]
        target[last] = value
    return config


def keys(indexes: range, device_id: str = "pump-0042") -> list[tuple[str, str]]:
    return [(device_id, format_time(window(index))) for index in indexes]


# -- configuration -------------------------------------------------------------------------------


def test_a_full_configuration_parses(tmp_path: Path) -> None:
    config = parse_config(example_config(tmp_path, "https://api.example.com/devices/health"), ENVIRONMENT)
    assert config.device_id == "pump-0042"
    assert config.machine == {"device_id": "pump-0042", "machine_class": "group2_rigid", "rpm": 1480}
    assert (config.window_seconds, config.sample_rate_hz) == (10, 1000)
    assert config.uplink == {
        "kind": "http",
        "url": "https://api.example.com/devices/health",
        "api_key": API_KEY,
        "timeout": 5,
        "ca_file": None,
    }
    assert config.sender.max_backoff_seconds == 60
    assert config.source["start"] == START


def test_numbers_may_be_strings_and_the_device_id_may_come_from_greengrass(tmp_path: Path) -> None:
    document = example_config(tmp_path, "https://api.example.com/devices/health")
    document["window_seconds"] = "10"
    document["machine"] = {"machine_class": "group2_rigid", "rpm": "1480", "balls": 9.0}
    config = parse_config(document, {**ENVIRONMENT, "AWS_IOT_THING_NAME": "gateway-7"})
    assert config.window_seconds == 10
    assert config.machine == {
        "device_id": "gateway-7",
        "machine_class": "group2_rigid",
        "rpm": 1480.0,
        "balls": 9,
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"source__kind": "serial"}, "source.url", "required"),
        ({"source__kind": "camera"}, "source.kind", "must be one of"),
        ({"sample_rate_hz": "fast"}, "sample_rate_hz", "must be a number"),
        ({"window_seconds": 0.0001}, "window_seconds", "whole number of readings"),
        ({"uplink__url": None}, "uplink.url", "required"),
        ({"uplink__api_key": "inline"}, "uplink.api_key", "not both"),
        ({"uplink__api_key_env": "NOT_SET_ANYWHERE"}, "uplink.api_key_env", "is not set"),
        ({"sender__max_batch_scores": 501}, "sender.max_batch_scores", "at most 500"),
        ({"sender__initial_backoff_seconds": 90}, "sender.initial_backoff_seconds", "must not exceed"),
        ({"sample_rate": 1000}, "sample_rate", "unknown field"),
        ({"source__start": "yesterday"}, "source.start", "RFC 3339"),
        ({"source__start": "2026-12-03T08:00:00"}, "source.start", "time zone"),
        ({"machine__device_id": "pump/42"}, "machine.device_id", "not a device id"),
        ({"machine__rpm": "fast"}, "machine.rpm", "must be a number"),
        ({"outbox__max_pending": 0}, "outbox.max_pending", ">= 1"),
        ({"log_level": "LOUD"}, "log_level", "must be one of"),
    ],
)
def test_configuration_errors_name_their_field(
    tmp_path: Path, changes: dict, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(
            example_config(tmp_path, "https://api.example.com/devices/health", **changes), ENVIRONMENT
        )
    assert error.value.field == field
    assert message in str(error.value)


def test_a_missing_device_id_outside_greengrass_is_an_error(tmp_path: Path) -> None:
    document = example_config(tmp_path, "https://api.example.com/devices/health")
    del document["machine"]["device_id"]
    with pytest.raises(ConfigError, match=r"machine\.device_id"):
        parse_config(document, ENVIRONMENT)


@pytest.mark.parametrize(
    ("signal", "field"),
    [
        ({"name": "velocity_sine"}, "source.signal.name"),
        ({"name": "outer_race"}, "source.signal"),  # needs bpfo_hz
        ({"name": "outer_race", "bpfo_hz": 88.0}, "source.signal"),  # needs 10 kHz, not 1 kHz
        ({"name": "healthy", "rpm": "fast"}, "source.signal.rpm"),
    ],
)
def test_a_simulated_signal_is_checked_when_the_runtime_is_built(
    tmp_path: Path, signal: dict, field: str
) -> None:
    config = parse_config(
        example_config(tmp_path, "http://127.0.0.1:9/x", source__signal=signal), ENVIRONMENT
    )
    with pytest.raises(ConfigError) as error:
        build_runtime(config, fake_scorer_factory)
    assert error.value.field == field


def test_main_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(example_config(tmp_path, "http://127.0.0.1:9/x", source__kind="serial")))
    assert main(["--config", str(path)], scorer_factory=fake_scorer_factory) == EXIT_CONFIG
    assert "configuration error: source.url: required" in capsys.readouterr().err

    path.write_text("{not json")
    assert main(["--config", str(path)], scorer_factory=fake_scorer_factory) == EXIT_CONFIG
    assert "is not JSON" in capsys.readouterr().err
    assert (
        main(["--config", str(tmp_path / "missing.json")], scorer_factory=fake_scorer_factory) == EXIT_CONFIG
    )


def test_python_m_scrm_edge_exits_2_on_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(example_config(tmp_path, "http://127.0.0.1:9/x", uplink__kind="carrier-pigeon"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "scrm_edge", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "edge"), "SCRM_API_KEY": API_KEY},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "uplink.kind: must be one of http, mqtt, greengrass_ipc" in result.stderr


# -- the runtime ---------------------------------------------------------------------------------


def test_a_simulated_source_resumes_after_the_last_stored_window(tmp_path: Path) -> None:
    config = parse_config(example_config(tmp_path, "http://127.0.0.1:9/x"), ENVIRONMENT)
    with Outbox(config.outbox_path) as outbox:
        outbox.put(fake_scorer_factory(config)(np.zeros(10), 1000.0, window(41)))
    runtime = build_runtime(config, fake_scorer_factory)
    try:
        assert isinstance(runtime.source, SimulatedSensor)
        assert runtime.source.first_window == 42
    finally:
        runtime.stop()


def test_a_ten_minute_outage_with_a_restart_in_the_middle_loses_and_repeats_nothing(tmp_path: Path) -> None:
    clock = VirtualClock(START.timestamp())
    gap_start = START.timestamp() + 60  # windows 0-4 go through first
    gap_middle, gap_end = gap_start + 300, gap_start + 600  # ten virtual minutes
    attempts: list[float] = []  # virtual time of every request

    def network() -> str:
        now = clock.now()
        attempts.append(now)
        if gap_start <= now < gap_middle:
            return "drop"  # connections die before the request is read
        if gap_middle <= now < gap_end:
            return "503"  # the API answers but is unavailable
        return "up"

    me = threading.current_thread()
    with running_receiver(mode=network) as receiver:
        config = parse_config(example_config(tmp_path, receiver.url), ENVIRONMENT)
        first = build_runtime(config, fake_scorer_factory, clock=clock)
        clock.attach(me)  # this thread holds virtual time still whenever it is not sleeping on the clock
        first.start()
        clock.sleep(gap_middle - 5 - clock.now())  # wake halfway through the outage, between two windows
        pending_at_restart = len(first.outbox)
        first.stop()  # as SIGTERM would: the uplink is down, so the scores stay in the outbox
        second = build_runtime(config, fake_scorer_factory, clock=clock)
        first_window_after_restart = second.source.first_window  # type: ignore[attr-defined]
        second.start()
        clock.sleep(gap_end - 1 - clock.now())
        pending_at_gap_end = len(second.outbox)
        clock.detach(me)
        assert second.wait(timeout=30), "the runtime did not finish"
        counts = second.sender.counts
        second.stop()

    expected = keys(range(90))
    assert receiver.stored_order == expected  # every window, once, in window order
    assert receiver.processed == expected  # and the edge sent none twice: no acknowledgement was lost
    assert pending_at_restart == 30  # windows 5-34 (ending at 60-350 s) waited in the outbox
    assert first_window_after_restart == 35  # the restart picked up at the next window
    assert pending_at_gap_end == 60  # the whole outage's windows (5-64) were buffered
    failed = [request.status for request in receiver.requests if request.status in ("drop", 503)]
    assert {"drop", 503} <= set(failed)  # retried through both halves of the outage
    assert 8 <= len(failed) <= 40  # with backoff: not a tight loop, not a give-up
    during = [at for at in attempts if gap_start <= at < gap_end]
    after = [at for at in attempts if at >= gap_end]
    assert max(b - a for a, b in itertools.pairwise(during)) <= 60  # the backoff is capped at 60 s
    assert after[0] - gap_end <= 60  # so delivery resumes within a minute of the network's return
    assert counts.sent == 85  # the second runtime sent all but the five windows before the outage
    with Outbox(config.outbox_path) as outbox:
        assert len(outbox) == 0
        assert outbox.dropped == 0


def test_a_lost_acknowledgement_makes_the_edge_resend_and_the_receiver_keeps_one(tmp_path: Path) -> None:
    clock = VirtualClock(START.timestamp())
    answered = {"count": 0}

    def network() -> str:
        answered["count"] += 1
        return "lost_ack" if answered["count"] in (3, 4) else "up"  # two acknowledgements in a row lost

    with running_receiver(mode=network) as receiver:
        config = parse_config(
            example_config(tmp_path, receiver.url, source__windows=12, sender__max_batch_scores=3),
            ENVIRONMENT,
        )
        runtime = build_runtime(config, fake_scorer_factory, clock=clock)
        runtime.start()
        assert runtime.wait(timeout=30)
        runtime.stop()

    assert receiver.stored_order == keys(range(12))
    lost = [request.keys for request in receiver.requests if request.status == "lost_ack"]
    assert len(lost) == 2
    # Each score of a batch whose acknowledgement was lost was processed once more when resent.
    resent = [key for batch in lost for key in batch]
    assert resent
    assert receiver.duplicates == len(resent)
    assert all(receiver.processed.count(key) == 1 for key in keys(range(12)) if key not in resent)
    with Outbox(config.outbox_path) as outbox:
        assert len(outbox) == 0


def test_a_file_source_runs_to_its_end_and_main_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "recording.f32"
    recording.write_bytes(np.sin(np.arange(5 * 2000) / 7).astype("<f4").tobytes())
    source = {"kind": "file", "path": str(recording), "format": "float32le", "start": format_time(START)}
    with running_receiver() as receiver:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(example_config(tmp_path, receiver.url, window_seconds=2, source=source)))
        monkeypatch.setenv("SCRM_API_KEY", API_KEY)
        assert main(["--config", str(path)], scorer_factory=fake_scorer_factory) == 0
    assert receiver.stored_order == [("pump-0042", format_time(window(k, 2))) for k in range(5)]


_RUN_WITH_FAKE_SCORER = """
import sys
from scrm_edge.runtime.component import main
from tests.unit.edge.runtime.support import fake_scorer_factory
sys.exit(main(sys.argv[1:], scorer_factory=fake_scorer_factory))
"""


def test_sigterm_stops_the_component_cleanly_after_sending_what_is_pending(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        config = example_config(
            tmp_path,
            receiver.url,
            window_seconds=0.25,
            sample_rate_hz=1000,
            source={"kind": "simulated", "signal": {"name": "healthy"}, "start": "now", "pacing": "realtime"},
            log_every_seconds=0.5,
        )
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        process = subprocess.Popen(
            [sys.executable, "-c", _RUN_WITH_FAKE_SCORER, "--config", str(path)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "edge"), str(ROOT)]), **ENVIRONMENT},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: len(receiver.stored) >= 4, timeout=30)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        stored = list(receiver.stored_order)

    assert process.returncode == 0, stderr
    assert "received SIGTERM" in stderr
    assert "stopping: windows=" in stderr and "pending=0" in stderr
    assert "windows=" in stderr.split("received SIGTERM")[0]  # counts were logged while running
    assert API_KEY not in stderr
    starts = [window_start for _, window_start in stored]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert len(outbox) == 0  # every window produced before SIGTERM was sent


def test_the_runtime_with_the_real_assess_scores_an_imbalanced_pump(tmp_path: Path) -> None:
    """Integration: scrm_edge.health.assess as the scorer, scores the cloud's own validation accepts."""
    from scrm_edge.runtime.component import assess_scorer
    from scrm_edge.zones import ZoneTable
    from scrm_sync.services.device_health import report_errors

    zones = ZoneTable.load()

    def cloud_refuses(document: dict[str, Any]) -> str | None:
        report, errors = report_errors(document, zones)
        return None if report is not None else json.dumps(errors)

    clock = VirtualClock(START.timestamp())
    with running_receiver(refuse=cloud_refuses) as receiver:
        config = parse_config(
            example_config(
                tmp_path,
                receiver.url,
                window_seconds=1,
                sample_rate_hz=10_000,
                source__signal={"name": "imbalance"},
                source__windows=4,
            ),
            ENVIRONMENT,
        )
        runtime = build_runtime(config, assess_scorer, clock=clock)
        runtime.start()
        assert runtime.wait(timeout=60)
        runtime.stop()

    assert [request.status for request in receiver.requests if request.status != 202] == []
    documents = [receiver.stored[key] for key in receiver.stored_order]
    assert [d["window_start"] for d in documents] == [format_time(window(k, 1)) for k in range(4)]
    for document in documents:
        assert document["sample_rate_hz"] == 10_000 and document["readings"] == 10_000
        velocity = document["features"]["velocity_rms_mm_s"]
        assert 2.5 < velocity < 3.5  # the signal's 3 mm/s imbalance, scored from its readings
        assert document["zone"] == zones.zone("group2_rigid", velocity)
        assert "imbalance" in [hint["fault"] for hint in document["hints"]]


def test_wait_times_out_while_the_source_runs(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        config = parse_config(
            example_config(tmp_path, receiver.url, source__pacing="realtime", source__start="now"),
            ENVIRONMENT,
        )
        runtime = build_runtime(config, fake_scorer_factory)
        runtime.start()
        began = time.monotonic()
        assert runtime.wait(timeout=0.3) is False
        runtime.stop()
        assert time.monotonic() - began < 10  # stop interrupts the 10 s wait for the next window


def test_an_outbox_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    config = parse_config(
        example_config(
            tmp_path, "http://127.0.0.1:9/x", outbox={"path": str(tmp_path / "a-file" / "o.sqlite")}
        ),
        ENVIRONMENT,
    )
    with pytest.raises(ConfigError) as error:
        build_runtime(config, fake_scorer_factory)
    assert error.value.field == "outbox.path"


def test_a_failing_source_ends_the_component_with_1_after_what_it_scored_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "recording.csv"
    recording.write_text("\n".join(["0.5"] * 2000 + ["garbled"]) + "\n")
    source = {"kind": "file", "path": str(recording), "format": "csv", "start": format_time(START)}
    with running_receiver(mode=lambda: "503") as receiver:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(example_config(tmp_path, receiver.url, window_seconds=1, source=source)))
        monkeypatch.setenv("SCRM_API_KEY", API_KEY)
        assert main(["--config", str(path)], scorer_factory=fake_scorer_factory) == 1
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert [entry.window_start for entry in outbox.pending(10)] == [
            format_time(window(k, 1)) for k in (0, 1)
        ]


def test_a_window_the_scorer_cannot_score_is_counted_and_skipped(tmp_path: Path) -> None:
    def flaky_factory(config: Any) -> Any:
        scorer = fake_scorer_factory(config)

        def score(readings: np.ndarray, rate: float, window_start: Any) -> Any:
            if window_start == window(1):
                raise ValueError("readings hold 3 non-finite values")
            return scorer(readings, rate, window_start)

        return score

    with running_receiver() as receiver:
        config = parse_config(
            example_config(tmp_path, receiver.url, source__windows=3, source__pacing="none"), ENVIRONMENT
        )
        runtime = build_runtime(config, flaky_factory)
        runtime.start()
        assert runtime.wait(timeout=30)
        runtime.stop()
    assert runtime.counts.scoring_errors == 1
    assert receiver.stored_order == [keys(range(3))[0], keys(range(3))[2]]
