"""Sensor sources: windows of `window_seconds` of acceleration readings (m/s²) at `sample_rate_hz`.

Every source yields `(window_start, readings)` from `windows(stop)`, in time order, where
`window_start` is the (aware, UTC) time of the window's first reading and `readings` a float64
array of exactly `samples_per_window` values, already multiplied by the source's `scale` (for a
sensor that reports in g, scale = 9.80665). A source ends when its data does (a file, a simulated
run of N windows) or when `stop` is set; a partial window at the end is dropped, never scored.

pyserial and paho-mqtt are imported only by the sources that use them.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scrm_edge.runtime.clock import Clock

log = logging.getLogger(__name__)

Window = tuple[datetime, np.ndarray]
# (window index from the start, number of readings, sample rate) -> acceleration in m/s²
SignalGenerator = Callable[[int, int, float], np.ndarray]
_SEPARATORS = re.compile(r"[,;\s]+")


class SensorSource(Protocol):
    window_seconds: float
    sample_rate_hz: float

    def windows(self, stop: threading.Event) -> Iterator[Window]: ...

    def close(self) -> None: ...


def samples_per_window(window_seconds: float, sample_rate_hz: float) -> int:
    """How many readings a window holds; the window must hold a whole number of them."""
    if window_seconds <= 0 or sample_rate_hz <= 0:
        raise ValueError("window_seconds and sample_rate_hz must be positive")
    exact = window_seconds * sample_rate_hz
    count = round(exact)
    if count < 1 or abs(exact - count) > 1e-6 * max(exact, 1.0):
        raise ValueError(
            f"window_seconds × sample_rate_hz must be a whole number of readings (got {exact:g})"
        )
    return count


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("window start times must be timezone-aware")
    return moment.astimezone(UTC)


class SimulatedSensor:
    """Windows from a signal generator on a virtual timeline.

    Window k starts exactly at `start + k × window_seconds`; nothing reads the wall clock, so
    keys are reproducible. With `clock=None` windows come as fast as they can be generated; with
    a clock each window is yielded once the clock reaches its end (SystemClock: real time, and a
    start in the past catches up at full speed; VirtualClock: simulated time, faster than real).
    `first_window` resumes a run after a restart.
    """

    def __init__(
        self,
        generate: SignalGenerator,
        *,
        start: datetime,
        window_seconds: float,
        sample_rate_hz: float,
        windows: int | None = None,
        first_window: int = 0,
        clock: Clock | None = None,
        scale: float = 1.0,
    ) -> None:
        self.generate = generate
        self.start = _utc(start)
        self.window_seconds = window_seconds
        self.sample_rate_hz = sample_rate_hz
        self.samples = samples_per_window(window_seconds, sample_rate_hz)
        self.window_count = windows
        self.first_window = first_window
        self.clock = clock
        self.scale = scale

    def windows(self, stop: threading.Event) -> Iterator[Window]:
        index = self.first_window
        while not stop.is_set() and (self.window_count is None or index < self.window_count):
            window_start = self.start + timedelta(seconds=index * self.window_seconds)
            if self.clock is not None:
                window_end = window_start.timestamp() + self.window_seconds
                # Never more than one window's wait: a wall clock stepped backwards must not stall us.
                wait = min(window_end - self.clock.now(), self.window_seconds)
                if wait > 0 and not self.clock.sleep(wait, stop):
                    return
            readings = np.asarray(self.generate(index, self.samples, self.sample_rate_hz), dtype=np.float64)
            if readings.shape != (self.samples,):
                raise ValueError(
                    f"the signal generator returned {readings.shape}, expected ({self.samples},)"
                )
            yield window_start, readings * self.scale
            index += 1

    def close(self) -> None:
        return None


class FileSensor:
    """Windows cut in order from a recording: raw little-endian float32 or int16, or CSV.

    Raw formats are multiplied by `scale` (int16 counts -> m/s²); CSV holds one reading per line
    (blank lines and lines starting with `#` are skipped). Window k starts at
    `start + k × samples_per_window / sample_rate_hz`.
    """

    FORMATS = ("float32le", "int16le", "csv")

    def __init__(
        self,
        path: str | Path,
        *,
        format: str,
        start: datetime,
        window_seconds: float,
        sample_rate_hz: float,
        scale: float = 1.0,
    ) -> None:
        if format not in self.FORMATS:
            raise ValueError(f"format must be one of {', '.join(self.FORMATS)}")
        self.path = Path(path)
        self.format = format
        self.start = _utc(start)
        self.window_seconds = window_seconds
        self.sample_rate_hz = sample_rate_hz
        self.samples = samples_per_window(window_seconds, sample_rate_hz)
        self.scale = scale

    def windows(self, stop: threading.Event) -> Iterator[Window]:
        chunks = self._csv_chunks() if self.format == "csv" else self._raw_chunks()
        for index, readings in enumerate(chunks):
            if stop.is_set():
                return
            offset = index * self.samples / self.sample_rate_hz
            yield self.start + timedelta(seconds=offset), readings * self.scale

    def _raw_chunks(self) -> Iterator[np.ndarray]:
        dtype = np.dtype("<f4") if self.format == "float32le" else np.dtype("<i2")
        size = self.samples * dtype.itemsize
        with self.path.open("rb") as stream:
            while True:
                data = stream.read(size)
                if len(data) < size:
                    if data:
                        log.info("file source: %d trailing bytes (less than a window) not scored", len(data))
                    return
                yield np.frombuffer(data, dtype=dtype).astype(np.float64)

    def _csv_chunks(self) -> Iterator[np.ndarray]:
        buffer: list[float] = []
        with self.path.open("r", encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    buffer.append(float(text))
                except ValueError:
                    raise ValueError(f"{self.path}:{number}: not a reading: {text[:40]!r}") from None
                if len(buffer) == self.samples:
                    yield np.asarray(buffer, dtype=np.float64)
                    buffer = []
        if buffer:
            log.info("file source: %d trailing readings (less than a window) not scored", len(buffer))

    def close(self) -> None:
        return None


class StreamWindower:
    """Cuts a live stream of reading chunks into windows and dates them.

    Live sources carry no timestamps, so the first window of a stream starts when its first chunk
    arrived, less the time that chunk's readings took to sample; later windows follow on the
    sample grid (window k+1 starts window_seconds after window k), which keeps keys unique and
    evenly spaced. After a stall (`reset()`) the partial window is dropped and the next chunk
    starts a new grid; if the grid drifts more than one window from arrival times (the sensor's
    real rate differs from the configured one), it is re-anchored, never before the previous end.
    """

    def __init__(self, window_seconds: float, sample_rate_hz: float) -> None:
        self.window_seconds = window_seconds
        self.sample_rate_hz = sample_rate_hz
        self.samples = samples_per_window(window_seconds, sample_rate_hz)
        self._buffer = np.empty(0, dtype=np.float64)
        self._next_start: datetime | None = None
        self._previous_end: datetime | None = None

    def reset(self) -> None:
        if self._buffer.size:
            log.info("stream stalled: %d readings of a partial window not scored", self._buffer.size)
        self._buffer = np.empty(0, dtype=np.float64)
        self._next_start = None

    def feed(self, readings: np.ndarray, arrived: datetime) -> list[Window]:
        if readings.size == 0:
            return []
        if self._next_start is None:
            start = arrived - timedelta(seconds=readings.size / self.sample_rate_hz)
            if self._previous_end is not None and start < self._previous_end:
                start = self._previous_end
            self._next_start = start
        self._buffer = np.concatenate([self._buffer, readings.astype(np.float64)])
        windows: list[Window] = []
        while self._buffer.size >= self.samples:
            window_start = self._next_start
            # Where arrival times say this window started; far off the grid means the rate drifted.
            arrival_start = arrived - timedelta(seconds=self._buffer.size / self.sample_rate_hz)
            if abs((arrival_start - window_start).total_seconds()) > self.window_seconds:
                previous_end = self._previous_end or arrival_start
                window_start = max(arrival_start, previous_end)
            windows.append((window_start, self._buffer[: self.samples].copy()))
            self._buffer = self._buffer[self.samples :]
            self._previous_end = window_start + timedelta(seconds=self.window_seconds)
            self._next_start = self._previous_end
        return windows


def parse_text_readings(line: str) -> np.ndarray:
    """One or more ASCII readings on a line, separated by commas, semicolons or spaces."""
    fields = [field for field in _SEPARATORS.split(line.strip()) if field]
    return np.asarray([float(field) for field in fields], dtype=np.float64)


class SerialSensor:
    """Lines of ASCII readings from a serial port (any pyserial URL: /dev/ttyUSB0, rfc2217://, loop://).

    The first line after the port opens is discarded: the device was already talking, so it is
    likely the tail of a line (a "7" that was "0.17"). Other lines that are not readings (boot
    messages) are skipped and counted in `malformed_lines`. A port that fails is reopened after
    `reconnect_seconds`.
    """

    def __init__(
        self,
        url: str,
        *,
        window_seconds: float,
        sample_rate_hz: float,
        baudrate: int = 115_200,
        scale: float = 1.0,
        stall_seconds: float = 2.0,
        reconnect_seconds: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = url
        self.window_seconds = window_seconds
        self.sample_rate_hz = sample_rate_hz
        self.baudrate = baudrate
        self.scale = scale
        self.stall_seconds = stall_seconds
        self.reconnect_seconds = reconnect_seconds
        self.now = now
        self.malformed_lines = 0
        self.port: Any = None
        self._windower = StreamWindower(window_seconds, sample_rate_hz)

    def open(self) -> None:
        import serial  # pyserial, only for this source

        if self.port is None:
            self.port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2)

    def windows(self, stop: threading.Event) -> Iterator[Window]:
        import serial

        pending = b""
        at_line_start = False  # until the first newline after opening, we may be mid-line
        last_data = time.monotonic()
        while not stop.is_set():
            try:
                if self.port is None:
                    self.open()
                    at_line_start = False
                data = self.port.read(max(1, self.port.in_waiting))
            except serial.SerialException as error:
                log.warning(
                    "serial source %s failed (%s); reopening in %.0f s",
                    self.url,
                    error,
                    self.reconnect_seconds,
                )
                self.close()
                self._windower.reset()
                pending = b""
                stop.wait(self.reconnect_seconds)
                continue
            if not data:
                if time.monotonic() - last_data > self.stall_seconds:
                    self._windower.reset()
                    pending = b""
                    last_data = time.monotonic()
                continue
            last_data = time.monotonic()
            lines = (pending + data).split(b"\n")
            pending = lines.pop()  # an unfinished line waits for the rest
            if not at_line_start and lines:
                lines.pop(0)
                at_line_start = True
            elif not at_line_start:
                continue
            readings = self._parse(lines)
            if readings.size:
                for window_start, window in self._windower.feed(readings, self.now()):
                    yield window_start, window * self.scale

    def _parse(self, lines: list[bytes]) -> np.ndarray:
        values: list[np.ndarray] = []
        for raw in lines:
            text = raw.decode("ascii", errors="replace").strip()
            if not text:
                continue
            try:
                values.append(parse_text_readings(text))
            except ValueError:
                self.malformed_lines += 1
        return np.concatenate(values) if values else np.empty(0)

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            finally:
                self.port = None


class MqttSensor:
    """Reading chunks from an MQTT topic: little-endian float32 payloads, or JSON arrays of numbers.

    Payloads that cannot be read are skipped and counted in `malformed_payloads`. paho-mqtt
    reconnects by itself and resubscribes on every connect.
    """

    PAYLOAD_FORMATS = ("float32le", "json")

    def __init__(
        self,
        topic: str,
        *,
        window_seconds: float,
        sample_rate_hz: float,
        host: str = "127.0.0.1",
        port: int = 1883,
        payload_format: str = "float32le",
        scale: float = 1.0,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        stall_seconds: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if payload_format not in self.PAYLOAD_FORMATS:
            raise ValueError(f"payload_format must be one of {', '.join(self.PAYLOAD_FORMATS)}")
        self.topic = topic
        self.window_seconds = window_seconds
        self.sample_rate_hz = sample_rate_hz
        self.host = host
        self.port = port
        self.payload_format = payload_format
        self.scale = scale
        self.client_id = client_id
        self.username = username
        self._password = password
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.stall_seconds = stall_seconds
        self.now = now
        self.malformed_payloads = 0
        self.subscribed = threading.Event()
        self._chunks: queue.Queue[tuple[bytes, datetime]] = queue.Queue()
        self._client: Any = None
        self._windower = StreamWindower(window_seconds, sample_rate_hz)

    def open(self) -> None:
        import paho.mqtt.client as mqtt  # only for this source

        if self._client is not None:
            return
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username is not None:
            client.username_pw_set(self.username, self._password)
        if self.ca_file or self.cert_file:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)

        def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
            if reason_code.is_failure:
                log.warning("MQTT source: connection refused (%s)", reason_code)
                return
            client.subscribe(self.topic, qos=1)

        def on_subscribe(client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
            self.subscribed.set()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            self._chunks.put((bytes(message.payload), self.now()))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        self._client = client

    def windows(self, stop: threading.Event) -> Iterator[Window]:
        self.open()
        last_data = time.monotonic()
        while not stop.is_set():
            try:
                payload, arrived = self._chunks.get(timeout=0.2)
            except queue.Empty:
                if time.monotonic() - last_data > self.stall_seconds:
                    self._windower.reset()
                    last_data = time.monotonic()
                continue
            last_data = time.monotonic()
            readings = self._parse(payload)
            if readings is None:
                continue
            for window_start, window in self._windower.feed(readings, arrived):
                yield window_start, window * self.scale

    def _parse(self, payload: bytes) -> np.ndarray | None:
        try:
            if self.payload_format == "json":
                values = json.loads(payload)
                if not isinstance(values, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in values
                ):
                    raise ValueError("not a JSON array of numbers")
                return np.asarray(values, dtype=np.float64)
            if len(payload) % 4:
                raise ValueError("float32 payload length is not a multiple of 4")
            return np.frombuffer(payload, dtype="<f4").astype(np.float64)
        except ValueError as error:
            self.malformed_payloads += 1
            log.warning("MQTT source: payload skipped (%s)", error)
            return None

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
