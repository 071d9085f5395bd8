"""Sensor sources: windows of exactly window_seconds × sample_rate_hz readings, dated and in order."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scrm_edge.runtime.clock import VirtualClock
from scrm_edge.runtime.sources import (
    FileSensor,
    SerialSensor,
    SimulatedSensor,
    StreamWindower,
    parse_text_readings,
    samples_per_window,
)

from tests.unit.edge.runtime.support import START, sine


def collect(source: object, stop: threading.Event | None = None, limit: int = 1000) -> list:
    windows = []
    for item in source.windows(stop or threading.Event()):  # type: ignore[attr-defined]
        windows.append(item)
        if len(windows) >= limit:
            break
    return windows


def test_samples_per_window_must_be_whole() -> None:
    assert samples_per_window(10, 10_000) == 100_000
    assert samples_per_window(0.5, 25_600) == 12_800
    with pytest.raises(ValueError, match="whole number"):
        samples_per_window(0.25, 10)
    with pytest.raises(ValueError, match="positive"):
        samples_per_window(0, 10)


def test_simulated_windows_advance_exactly_window_seconds_from_the_start() -> None:
    source = SimulatedSensor(sine, start=START, window_seconds=10, sample_rate_hz=100, windows=4, scale=2.0)
    windows = collect(source)
    assert [start for start, _ in windows] == [START + timedelta(seconds=10 * k) for k in range(4)]
    for index, (_, readings) in enumerate(windows):
        assert readings.dtype == np.float64 and readings.shape == (1000,)
        np.testing.assert_allclose(readings, 2.0 * sine(index, 1000, 100))


def test_simulated_source_resumes_at_first_window() -> None:
    source = SimulatedSensor(
        sine, start=START, window_seconds=10, sample_rate_hz=100, windows=5, first_window=3
    )
    assert [start for start, _ in collect(source)] == [
        START + timedelta(seconds=30),
        START + timedelta(seconds=40),
    ]


def test_simulated_source_paced_by_a_virtual_clock_yields_each_window_at_its_end() -> None:
    clock = VirtualClock(START.timestamp())
    source = SimulatedSensor(
        sine, start=START, window_seconds=10, sample_rate_hz=100, windows=360, clock=clock
    )  # an hour of windows
    began = time.monotonic()
    seen = []
    for window_start, _ in source.windows(threading.Event()):
        seen.append((window_start, clock.now()))
    assert time.monotonic() - began < 5  # far faster than real time
    assert len(seen) == 360
    for window_start, now in seen:
        assert now == window_start.timestamp() + 10


def test_simulated_source_stops_when_asked_while_waiting() -> None:
    stop = threading.Event()
    source = SimulatedSensor(sine, start=datetime.now(UTC), window_seconds=60, sample_rate_hz=10, clock=None)
    iterator = source.windows(stop)
    next(iterator)
    stop.set()
    assert list(iterator) == []


def test_a_generator_of_the_wrong_length_is_an_error() -> None:
    source = SimulatedSensor(
        lambda i, n, rate: np.zeros(n - 1), start=START, window_seconds=1, sample_rate_hz=10, windows=1
    )
    with pytest.raises(ValueError, match="expected"):
        collect(source)


def test_naive_start_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SimulatedSensor(sine, start=datetime(2026, 1, 1), window_seconds=1, sample_rate_hz=10)


@pytest.mark.parametrize(("format", "dtype", "scale"), [("float32le", "<f4", 1.0), ("int16le", "<i2", 0.01)])
def test_raw_files_are_cut_in_order_and_scaled(tmp_path: Path, format: str, dtype: str, scale: float) -> None:
    values = np.arange(2 * 50 + 7)  # two windows and 7 readings short of a third
    path = tmp_path / "recording.raw"
    path.write_bytes(values.astype(dtype).tobytes())
    source = FileSensor(path, format=format, start=START, window_seconds=0.5, sample_rate_hz=100, scale=scale)
    windows = collect(source)
    assert [start for start, _ in windows] == [START, START + timedelta(seconds=0.5)]
    np.testing.assert_allclose(windows[0][1], values[:50] * scale)
    np.testing.assert_allclose(windows[1][1], values[50:100] * scale)


def test_csv_files_skip_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "recording.csv"
    path.write_text("# acceleration, m/s^2\n0.5\n\n-1.25\n2\n3e-1\n7\n", encoding="utf-8")
    source = FileSensor(path, format="csv", start=START, window_seconds=0.02, sample_rate_hz=100)
    windows = collect(source)
    assert len(windows) == 2  # the fifth reading starts a window that never fills
    np.testing.assert_allclose(windows[0][1], [0.5, -1.25])
    np.testing.assert_allclose(windows[1][1], [2.0, 0.3])
    assert windows[1][0] == START + timedelta(seconds=0.02)


def test_a_csv_line_that_is_not_a_reading_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "recording.csv"
    path.write_text("1\n2\nthree\n", encoding="utf-8")
    source = FileSensor(path, format="csv", start=START, window_seconds=0.01, sample_rate_hz=100)
    with pytest.raises(ValueError, match=r"recording\.csv:3"):
        collect(source)


def test_the_stream_windower_dates_the_first_window_from_arrival_and_then_follows_the_grid() -> None:
    windower = StreamWindower(window_seconds=1.0, sample_rate_hz=4)
    arrived = START + timedelta(seconds=10)
    assert windower.feed(np.arange(3.0), arrived) == []
    windows = windower.feed(np.arange(3.0, 9.0), arrived + timedelta(seconds=1.5))
    # The first chunk of 3 readings (0.75 s) arrived at START+10 s: the stream began at START+9.25 s.
    assert [start for start, _ in windows] == [
        START + timedelta(seconds=9.25),
        START + timedelta(seconds=10.25),
    ]
    np.testing.assert_array_equal(windows[0][1], [0, 1, 2, 3])
    np.testing.assert_array_equal(windows[1][1], [4, 5, 6, 7])


def test_after_a_stall_the_partial_window_is_dropped_and_the_grid_restarts_later() -> None:
    windower = StreamWindower(window_seconds=1.0, sample_rate_hz=4)
    [(first, _)] = windower.feed(np.arange(6.0), START + timedelta(seconds=1.5))
    windower.reset()
    [(second, readings)] = windower.feed(np.arange(4.0), START + timedelta(seconds=60))
    assert first == START
    assert second == START + timedelta(seconds=59)
    np.testing.assert_array_equal(readings, [0, 1, 2, 3])


def test_a_drifting_stream_is_reanchored_but_never_overlaps() -> None:
    windower = StreamWindower(window_seconds=1.0, sample_rate_hz=4)
    starts = [windower.feed(np.arange(4.0), START + timedelta(seconds=1 + 3 * k)) for k in range(3)]
    flat = [window_start for batch in starts for window_start, _ in batch]
    assert flat[0] == START
    assert all(later >= earlier + timedelta(seconds=1) for earlier, later in itertools.pairwise(flat))
    # Chunks of one window arrive every 3 s: the windows are dated by their arrival.
    assert flat == [START, START + timedelta(seconds=3), START + timedelta(seconds=6)]


def test_text_readings_accept_commas_semicolons_and_spaces() -> None:
    np.testing.assert_array_equal(parse_text_readings(" 1.5, -2;3  4e0\r"), [1.5, -2, 3, 4])
    with pytest.raises(ValueError):
        parse_text_readings("ready>")


def test_serial_sensor_reads_ascii_lines_over_a_pyserial_url() -> None:
    arrival = [START + timedelta(seconds=100)]
    sensor = SerialSensor(
        "loop://", window_seconds=1, sample_rate_hz=4, scale=9.80665, now=lambda: arrival[0]
    )
    sensor.open()
    stop = threading.Event()
    try:
        # The tail of a line sent before we connected ("0.17"), a boot message, then readings.
        sensor.port.write(b"7\nBOOT v1.2 ready\n0.1\n0.2,0.3\n0.4 0.5\n0.6\n0.7\n0.8\n0.9\n")
        iterator = sensor.windows(stop)
        first_start, first = next(iterator)
        second_start, second = next(iterator)
    finally:
        stop.set()
        sensor.close()
    np.testing.assert_allclose(first, np.array([0.1, 0.2, 0.3, 0.4]) * 9.80665)
    np.testing.assert_allclose(second, np.array([0.5, 0.6, 0.7, 0.8]) * 9.80665)
    assert second_start - first_start == timedelta(seconds=1)
    assert sensor.malformed_lines == 1


def test_serial_sensor_keeps_an_unfinished_line_for_the_next_read() -> None:
    sensor = SerialSensor("loop://", window_seconds=1, sample_rate_hz=2, now=lambda: START)
    sensor.open()
    stop = threading.Event()
    results: list = []

    def read() -> None:
        results.append(next(sensor.windows(stop)))

    reader = threading.Thread(target=read)
    try:
        sensor.port.write(b"...\n1.2")
        reader.start()
        time.sleep(0.3)
        sensor.port.write(b"5\n2.5\n")
        reader.join(timeout=5)
    finally:
        stop.set()
        sensor.close()
    [(_, readings)] = results
    np.testing.assert_allclose(readings, [1.25, 2.5])
