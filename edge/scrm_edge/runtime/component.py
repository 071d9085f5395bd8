"""The edge component: source -> scorer -> outbox (producer thread), outbox -> uplink (sender thread).

`python -m scrm_edge --config config.json` runs it (on a gateway, or as the Greengrass component
com.scrm.DeviceHealth). SIGTERM (how Greengrass stops a component) or SIGINT stops the source,
makes one last attempt to send what is pending (unless the uplink is known to be down: the
outbox keeps it for the next start) and exits 0. A configuration error exits 2 with a message
naming the field; a source or runtime failure exits 1 (Greengrass restarts the component).

Configuration (JSON; numbers may be given as strings, as Greengrass recommends):

    {"machine": {"device_id": "pump-0042", "machine_class": "group2_rigid", "rpm": 1480, ...},
     "window_seconds": 10, "sample_rate_hz": 10000,
     "outbox": {"path": "/greengrass/v2/work/com.scrm.DeviceHealth/outbox.sqlite",
                "max_pending": 100000, "keep_sent": 10000},
     "source": {"kind": "serial", "url": "/dev/ttyUSB0", "baudrate": 921600, "scale": 9.80665},
     "uplink": {"kind": "http", "url": "https://API/devices/health", "api_key_env": "SCRM_API_KEY"},
     "sender": {"max_batch_scores": 50, "max_batch_bytes": 262144,
                "initial_backoff_seconds": 1, "max_backoff_seconds": 60, "idle_poll_seconds": 5},
     "flush_seconds": 5, "log_every_seconds": 60, "log_level": "INFO"}

`machine` goes to scrm_edge.health.MachineProfile.from_dict; its device_id defaults to the
AWS_IOT_THING_NAME that Greengrass gives its components. Source kinds: simulated, file, serial,
mqtt; uplink kinds: http, mqtt, greengrass_ipc (see build_source and build_uplink).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from scrm_edge.runtime.clock import Clock, SystemClock
from scrm_edge.runtime.outbox import Outbox
from scrm_edge.runtime.sender import Sender, SenderSettings
from scrm_edge.runtime.sources import (
    FileSensor,
    MqttSensor,
    SensorSource,
    SerialSensor,
    SignalGenerator,
    SimulatedSensor,
    samples_per_window,
)
from scrm_edge.runtime.uplinks import GreengrassIpcUplink, HttpUplink, MqttUplink, Uplink
from scrm_edge.score import DEVICE_ID, HealthScore

log = logging.getLogger("scrm_edge")

Scorer = Callable[[np.ndarray, float, datetime], HealthScore]
DEFAULT_OUTBOX = "outbox.sqlite"  # relative to the working directory: Greengrass runs us in our work folder
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class ConfigError(ValueError):
    """A configuration value that cannot be used; `field` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- reading the configuration -------------------------------------------------------------------

_REQUIRED: Any = object()


class _Section:
    """A JSON object of the configuration, read field by field with errors naming the field."""

    def __init__(self, data: Any, path: str, environ: Mapping[str, str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path or "config", "must be a JSON object")
        self.data = data
        self.path = path
        self.environ = environ  # where `*_env` fields look their secrets up
        self.read: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any) -> tuple[Any, bool]:
        """The field's value and True, or `default` and False when it is absent (or null)."""
        self.read.add(key)
        value = self.data.get(key)
        if value is None:
            if default is _REQUIRED:
                raise ConfigError(self.name(key), "required")
            return default, False
        return value, True

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value, given = self._get(key, default)
        if given and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(self.name(key), "must be a non-empty string")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, positive: bool = True) -> Any:
        value, given = self._get(key, default)
        if not given:
            return value
        try:
            number = (
                float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else None
            )
        except ValueError:
            number = None
        if number is None or number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(self.name(key), f"must be a number (got {value!r})")
        if positive and number <= 0:
            raise ConfigError(self.name(key), f"must be positive (got {value!r})")
        return number

    def integer(self, key: str, default: Any = _REQUIRED, *, minimum: int = 1) -> Any:
        given = self.data.get(key) is not None
        number = self.number(key, default, positive=False)
        if not given:
            return number
        if number != int(number) or number < minimum:
            raise ConfigError(self.name(key), f"must be a whole number >= {minimum}")
        return int(number)

    def choice(self, key: str, options: tuple[str, ...], default: Any = _REQUIRED) -> Any:
        given = self.data.get(key) is not None
        value = self.text(key, default)
        if given and value not in options:
            raise ConfigError(self.name(key), f"must be one of {', '.join(options)} (got {value!r})")
        return value

    def time(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.text(key, default)
        if value is None:
            return None
        if value == "now":
            return datetime.now(UTC)
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                self.name(key), "must be an RFC 3339 time such as 2026-12-03T08:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise ConfigError(self.name(key), "needs a time zone (Z or +hh:mm)")
        return moment.astimezone(UTC)

    def secret(self, key: str) -> str | None:
        """`key` given inline, or `key_env` naming the environment variable that holds it."""
        inline = self.text(key, None)
        variable = self.text(f"{key}_env", None)
        if inline is not None and variable is not None:
            raise ConfigError(self.name(key), f"give {key} or {key}_env, not both")
        if variable is not None:
            value = self.environ.get(variable)
            if not value:
                raise ConfigError(self.name(f"{key}_env"), f"environment variable {variable} is not set")
            return value
        return inline

    def section(self, key: str, default: Any = _REQUIRED) -> _Section:
        value, _ = self._get(key, default)
        return _Section(value, self.name(key), self.environ)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise ConfigError(self.name(unknown[0]), "unknown field (a typo?)")


@dataclass(frozen=True)
class EdgeConfig:
    device_id: str
    machine: dict[str, Any]  # for MachineProfile.from_dict, device_id filled in
    window_seconds: float
    sample_rate_hz: float
    outbox_path: Path
    max_pending: int
    keep_sent: int
    source: dict[str, Any]  # validated settings, "kind" included
    uplink: dict[str, Any]
    sender: SenderSettings
    flush_seconds: float = 5.0
    log_every_seconds: float = 60.0
    log_level: str = "INFO"


def parse_config(document: Any, environ: Mapping[str, str] | None = None) -> EdgeConfig:
    environ = os.environ if environ is None else environ
    root = _Section(document, "", environ)
    machine = _machine_profile(root.section("machine"))
    device_id = machine.get("device_id") or environ.get("AWS_IOT_THING_NAME")
    if not device_id:
        raise ConfigError(
            "machine.device_id", "required (or run under Greengrass, which sets AWS_IOT_THING_NAME)"
        )
    if not isinstance(device_id, str) or not DEVICE_ID.match(device_id):
        raise ConfigError("machine.device_id", f"{device_id!r} is not a device id (letters, digits, _.:-)")
    machine["device_id"] = device_id

    window_seconds = root.number("window_seconds")
    sample_rate_hz = root.number("sample_rate_hz")
    try:
        samples_per_window(window_seconds, sample_rate_hz)
    except ValueError as error:
        raise ConfigError("window_seconds", str(error)) from None

    outbox = root.section("outbox", {})
    outbox_path = Path(outbox.text("path", DEFAULT_OUTBOX))
    max_pending = outbox.integer("max_pending", 100_000)
    keep_sent = outbox.integer("keep_sent", 10_000, minimum=0)
    outbox.reject_unknown()

    source = _parse_source(root.section("source"))
    uplink = _parse_uplink(root.section("uplink"), device_id)

    sender_section = root.section("sender", {})
    max_batch_scores = sender_section.integer("max_batch_scores", 50)
    if uplink["kind"] == "http" and max_batch_scores > HttpUplink.MAX_SCORES_PER_REQUEST:
        raise ConfigError(
            "sender.max_batch_scores",
            f"the HTTP API takes at most {HttpUplink.MAX_SCORES_PER_REQUEST} a request",
        )
    initial_backoff = sender_section.number("initial_backoff_seconds", 1.0)
    max_backoff = sender_section.number("max_backoff_seconds", 60.0)
    if initial_backoff > max_backoff:
        raise ConfigError("sender.initial_backoff_seconds", "must not exceed max_backoff_seconds")
    sender = SenderSettings(
        max_batch_scores=max_batch_scores,
        max_batch_bytes=sender_section.integer("max_batch_bytes", 256 * 1024),
        initial_backoff_seconds=initial_backoff,
        max_backoff_seconds=max_backoff,
        idle_poll_seconds=sender_section.number("idle_poll_seconds", 5.0),
    )
    sender_section.reject_unknown()

    config = EdgeConfig(
        device_id=device_id,
        machine=machine,
        window_seconds=window_seconds,
        sample_rate_hz=sample_rate_hz,
        outbox_path=outbox_path,
        max_pending=max_pending,
        keep_sent=keep_sent,
        source=source,
        uplink=uplink,
        sender=sender,
        flush_seconds=root.number("flush_seconds", 5.0, positive=False),
        log_every_seconds=root.number("log_every_seconds", 60.0),
        log_level=root.choice("log_level", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
    )
    root.reject_unknown()
    return config


_MACHINE_TEXT_FIELDS = ("device_id", "machine_class")
_MACHINE_WHOLE_FIELDS = ("balls",)


def _machine_profile(section: _Section) -> dict[str, Any]:
    """The machine profile as MachineProfile.from_dict takes it (it checks the fields itself).

    Greengrass may hand numbers over as strings or turn integers into floats (its configuration
    is JSON without an integer type), so numbers are given back their type here.
    """
    machine: dict[str, Any] = {}
    for key, value in section.data.items():
        if key not in _MACHINE_TEXT_FIELDS and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(section.name(key), f"must be a number (got {value!r})") from None
        if key in _MACHINE_WHOLE_FIELDS and isinstance(value, float) and value.is_integer():
            value = int(value)
        machine[key] = value
    return machine


def _parse_source(section: _Section) -> dict[str, Any]:
    kind = section.choice("kind", ("simulated", "file", "serial", "mqtt"))
    settings: dict[str, Any] = {"kind": kind, "scale": section.number("scale", 1.0)}
    if kind == "simulated":
        signal_section = section.section("signal")
        settings["signal"] = {"name": signal_section.text("name"), **dict(signal_section.data)}
        settings["start"] = section.time("start", "now")
        settings["windows"] = section.integer("windows", None)
        settings["pacing"] = section.choice("pacing", ("realtime", "none"), "realtime")
    elif kind == "file":
        path = Path(section.text("path"))
        if not path.is_file():
            raise ConfigError(section.name("path"), f"no such file: {path}")
        settings["path"] = path
        settings["format"] = section.choice("format", FileSensor.FORMATS)
        settings["start"] = section.time("start")
    elif kind == "serial":
        settings["url"] = section.text("url")
        settings["baudrate"] = section.integer("baudrate", 115_200)
        settings["stall_seconds"] = section.number("stall_seconds", 2.0)
    else:
        settings["host"] = section.text("host", "127.0.0.1")
        settings["port"] = section.integer("port", 1883)
        settings["topic"] = section.text("topic")
        settings["payload_format"] = section.choice("payload_format", MqttSensor.PAYLOAD_FORMATS, "float32le")
        settings["client_id"] = section.text("client_id", "")
        settings["username"] = section.text("username", None)
        settings["password"] = section.secret("password")
        for name in ("ca_file", "cert_file", "key_file"):
            settings[name] = section.text(name, None)
    section.reject_unknown()
    return settings


def _parse_uplink(section: _Section, device_id: str) -> dict[str, Any]:
    kind = section.choice("kind", ("http", "mqtt", "greengrass_ipc"))
    settings: dict[str, Any] = {"kind": kind}
    if kind == "http":
        settings["url"] = section.text("url")
        settings["api_key"] = section.secret("api_key")
        settings["timeout"] = section.number("timeout_seconds", 10.0)
        settings["ca_file"] = section.text("ca_file", None)
    elif kind == "mqtt":
        settings["host"] = section.text("host")
        settings["port"] = section.integer("port", 8883)
        settings["client_id"] = section.text("client_id", device_id)
        for name in ("ca_file", "cert_file", "key_file", "username"):
            settings[name] = section.text(name, None)
        settings["password"] = section.secret("password")
        settings["timeout"] = section.number("timeout_seconds", 10.0)
        if bool(settings["cert_file"]) != bool(settings["key_file"]):
            raise ConfigError(section.name("key_file"), "cert_file and key_file go together")
    section.reject_unknown()
    return settings


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> EdgeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("--config", f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ConfigError("--config", f"{path} is not JSON: {error}") from None
    return parse_config(document, environ)


# -- building the pieces -------------------------------------------------------------------------


SIGNALS = ("healthy", "imbalance", "misalignment", "looseness", "outer_race", "inner_race")


def signal_generator(settings: Mapping[str, Any], rpm: Any) -> SignalGenerator:
    """Windows of a scrm_edge.signals condition: {"name": "outer_race", "bpfo_hz": 87.2, ...}.

    The signal runs at the machine's rpm (unless the settings give one); window k is seeded
    with k, so a simulated run is reproducible and every window has its own noise.
    """
    from scrm_edge import signals

    parameters = {key: value for key, value in settings.items() if key != "name"}
    name = settings["name"]
    if name not in SIGNALS:
        raise ConfigError("source.signal.name", f"must be one of {', '.join(SIGNALS)} (got {name!r})")
    make = getattr(signals, name)
    speed = parameters.pop("rpm", rpm)
    if isinstance(speed, str):
        try:
            speed = float(speed)
        except ValueError:
            raise ConfigError("source.signal.rpm", f"must be a number (got {speed!r})") from None
    if not isinstance(speed, int | float) or isinstance(speed, bool) or speed <= 0:
        raise ConfigError("source.signal", "needs the machine's rpm (machine.rpm or source.signal.rpm)")
    try:
        inspect.signature(make).bind(1.0, 1.0, speed, seed=0, **parameters)
    except TypeError as error:
        raise ConfigError("source.signal", f"{name}: {error}") from None

    def generate(index: int, samples: int, sample_rate_hz: float) -> np.ndarray:
        readings = make(sample_rate_hz, samples / sample_rate_hz, speed, seed=index, **parameters)
        return np.asarray(readings, dtype=np.float64)

    return generate


def build_source(
    config: EdgeConfig, *, outbox: Outbox | None = None, clock: Clock | None = None
) -> SensorSource:
    settings = config.source
    window_seconds, sample_rate_hz = config.window_seconds, config.sample_rate_hz
    kind = settings["kind"]
    if kind == "simulated":
        start: datetime = settings["start"]
        first_window = 0
        latest = outbox.latest_window_start(config.device_id) if outbox is not None else None
        if latest is not None:
            # Resume after the last window this device stored, so a restart neither repeats nor skips one.
            elapsed = (datetime.fromisoformat(latest.replace("Z", "+00:00")) - start).total_seconds()
            if elapsed >= 0:
                first_window = round(elapsed / config.window_seconds) + 1
        generate = signal_generator(settings["signal"], config.machine.get("rpm"))
        samples = samples_per_window(window_seconds, sample_rate_hz)
        try:  # one window now, so a signal that cannot run at this rate fails as configuration
            generate(0, samples, sample_rate_hz)
        except ValueError as error:
            raise ConfigError("source.signal", str(error)) from None
        return SimulatedSensor(
            generate,
            start=start,
            windows=settings["windows"],
            first_window=first_window,
            clock=(clock or SystemClock()) if settings["pacing"] == "realtime" else None,
            scale=settings["scale"],
            window_seconds=window_seconds,
            sample_rate_hz=sample_rate_hz,
        )
    if kind == "file":
        return FileSensor(
            settings["path"],
            format=settings["format"],
            start=settings["start"],
            scale=settings["scale"],
            window_seconds=window_seconds,
            sample_rate_hz=sample_rate_hz,
        )
    if kind == "serial":
        return SerialSensor(
            settings["url"],
            baudrate=settings["baudrate"],
            scale=settings["scale"],
            stall_seconds=settings["stall_seconds"],
            window_seconds=window_seconds,
            sample_rate_hz=sample_rate_hz,
        )
    return MqttSensor(
        settings["topic"],
        host=settings["host"],
        port=settings["port"],
        payload_format=settings["payload_format"],
        scale=settings["scale"],
        client_id=settings["client_id"],
        username=settings["username"],
        password=settings["password"],
        ca_file=settings["ca_file"],
        cert_file=settings["cert_file"],
        key_file=settings["key_file"],
        window_seconds=window_seconds,
        sample_rate_hz=sample_rate_hz,
    )


def build_uplink(config: EdgeConfig) -> Uplink:
    settings = dict(config.uplink)
    kind = settings.pop("kind")
    try:
        if kind == "http":
            return HttpUplink(settings.pop("url"), **settings)
        if kind == "mqtt":
            return MqttUplink(settings.pop("host"), **settings)
    except ValueError as error:
        raise ConfigError(f"uplink.{'url' if kind == 'http' else 'host'}", str(error)) from None
    if importlib.util.find_spec("awsiot") is None:
        raise ConfigError(
            "uplink.kind", "greengrass_ipc needs the AWS IoT Device SDK (pip install awsiotsdk)"
        )
    return GreengrassIpcUplink()


def assess_scorer(config: EdgeConfig) -> Scorer:
    """The real scorer: scrm_edge.health.assess with the machine profile and the ISO zone table."""
    from scrm_edge.health import MachineProfile, assess
    from scrm_edge.zones import ZoneTable

    try:
        machine = MachineProfile.from_dict(config.machine)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError("machine", str(error)) from None
    zones = ZoneTable.load()

    def score(readings: np.ndarray, sample_rate_hz: float, window_start: datetime) -> HealthScore:
        return assess(readings, sample_rate_hz, window_start, machine, zones)

    return score


ScorerFactory = Callable[[EdgeConfig], Scorer]


# -- the runtime ---------------------------------------------------------------------------------


@dataclass
class ProducerCounts:
    windows: int = 0
    stored: int = 0
    duplicates: int = 0
    scoring_errors: int = 0


class EdgeRuntime:
    """The two threads of the component and their shutdown."""

    def __init__(
        self,
        *,
        source: SensorSource,
        scorer: Scorer,
        outbox: Outbox,
        sender: Sender,
        clock: Clock | None = None,
        flush_seconds: float = 5.0,
        log_every_seconds: float = 60.0,
    ) -> None:
        self.source = source
        self.scorer = scorer
        self.outbox = outbox
        self.sender = sender
        self.clock = clock or SystemClock()
        self.flush_seconds = flush_seconds
        self.log_every_seconds = log_every_seconds
        self.counts = ProducerCounts()
        self.failed = False
        self._stopping = threading.Event()
        self._work_ready = threading.Event()
        self._producer_done = threading.Event()
        self._finished = threading.Event()
        self._started = False
        self._stopped = False
        self._last_log = time.monotonic()
        self._producer = threading.Thread(target=self._produce, name="scrm-edge-producer", daemon=True)
        self._sender = threading.Thread(target=self._send, name="scrm-edge-sender", daemon=True)

    def start(self) -> None:
        for thread in (self._producer, self._sender):
            self.clock.attach(thread)  # a virtual clock must not run ahead of a thread not yet started
        self._producer.start()
        self._sender.start()
        self._started = True

    def wait(self, timeout: float | None = None) -> bool:
        """True once the source has ended and everything it produced was sent (or the runtime stopped)."""
        return self._finished.wait(timeout)

    def stop(self) -> None:
        """Stop the source, try once more to send what is pending, close everything. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._work_ready.set()
        if self._started:
            self._producer.join(timeout=30)
            self._sender.join(timeout=60)
        if self._producer.is_alive() or self._sender.is_alive():
            log.warning("a runtime thread did not stop in time")
        elif self._started and self.sender.counts.consecutive_failures == 0 and self.flush_seconds > 0:
            deadline = time.monotonic() + self.flush_seconds
            self._guarded(lambda: self.sender.drain(lambda: time.monotonic() > deadline), "final send")
        log.info("stopping: %s", self.status())
        for closing in (self.source.close, self.sender.uplink.close, self.outbox.close):
            self._guarded(closing, "closing")
        self._finished.set()

    def status(self) -> str:
        sent = self.sender.counts
        return (
            f"windows={self.counts.windows} stored={self.counts.stored} duplicates={self.counts.duplicates}"
            f" scoring_errors={self.counts.scoring_errors} sent={sent.sent} rejected={sent.rejected}"
            f" send_failures={sent.failures} pending={len(self.outbox)} dropped={self.outbox.dropped}"
        )

    def _produce(self) -> None:
        try:
            for window_start, readings in self.source.windows(self._stopping):
                self.counts.windows += 1
                try:
                    score = self.scorer(readings, self.source.sample_rate_hz, window_start)
                except Exception:
                    self.counts.scoring_errors += 1
                    # The first failure with its traceback, then every 100th: a scorer that fails on
                    # every window (a sample rate it cannot use) must not flood the log.
                    if self.counts.scoring_errors % 100 == 1:
                        log.exception(
                            "scoring the window at %s failed (%d windows so far)",
                            window_start.isoformat(),
                            self.counts.scoring_errors,
                        )
                    continue
                if self.outbox.put(score):
                    self.counts.stored += 1
                    self._work_ready.set()
                else:
                    self.counts.duplicates += 1
                self._log_periodically()
        except Exception:
            if not self._stopping.is_set():
                # End the component (exit 1) rather than send on without measuring: Greengrass
                # restarts it, and the outbox keeps what was not sent yet.
                self.failed = True
                log.exception("the sensor source failed")
                self._finished.set()
        finally:
            self._producer_done.set()
            self._work_ready.set()

    def _send(self) -> None:
        try:
            self.sender.run(self._stopping, self._work_ready, self._producer_done.is_set)
        except Exception:
            self.failed = True
            log.exception("the sender failed")
        finally:
            if not self._stopping.is_set():
                self._finished.set()

    def _log_periodically(self) -> None:
        if time.monotonic() - self._last_log >= self.log_every_seconds:
            self._last_log = time.monotonic()
            log.info("%s", self.status())

    @staticmethod
    def _guarded(action: Callable[[], object], what: str) -> None:
        try:
            action()
        except Exception:
            log.exception("%s failed", what)


def build_runtime(
    config: EdgeConfig, scorer_factory: ScorerFactory = assess_scorer, *, clock: Clock | None = None
) -> EdgeRuntime:
    scorer = scorer_factory(config)
    uplink = build_uplink(config)
    try:
        outbox = Outbox(config.outbox_path, max_pending=config.max_pending, keep_sent=config.keep_sent)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError("outbox.path", f"cannot open {config.outbox_path}: {error}") from None
    try:
        source = build_source(config, outbox=outbox, clock=clock)
    except BaseException:
        outbox.close()
        raise
    sender = Sender(outbox, uplink, settings=config.sender, clock=clock)
    return EdgeRuntime(
        source=source,
        scorer=scorer,
        outbox=outbox,
        sender=sender,
        clock=clock,
        flush_seconds=config.flush_seconds,
        log_every_seconds=config.log_every_seconds,
    )


def _describe_source(config: EdgeConfig) -> str:
    settings = config.source
    where = {
        "simulated": lambda: f"signal {settings['signal']['name']}",
        "file": lambda: f"{settings['path']} ({settings['format']})",
        "serial": lambda: str(settings["url"]),
        "mqtt": lambda: f"{settings['host']}:{settings['port']} topic {settings['topic']}",
    }[settings["kind"]]()
    return f"{settings['kind']} {where}, {config.sample_rate_hz:g} Hz, {config.window_seconds:g} s windows"


# -- the command ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None, *, scorer_factory: ScorerFactory = assess_scorer) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scrm_edge",
        description="Vibration windows -> health scores -> the cloud, through a durable outbox.",
    )
    parser.add_argument("--config", required=True, type=Path, help="the component's JSON configuration")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        logging.basicConfig(
            level=config.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        runtime = build_runtime(config, scorer_factory)
    except ConfigError as error:
        print(f"scrm_edge: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop_requested.set()

    previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous_handlers[signum] = signal.signal(signum, request_stop)

    log.info(
        "device %s: source %s; uplink %s; outbox %s (%d pending, %d dropped so far)",
        config.device_id,
        _describe_source(config),
        runtime.sender.uplink.describe(),
        config.outbox_path,
        len(runtime.outbox),
        runtime.outbox.dropped,
    )
    try:
        runtime.start()
        while not runtime.wait(0.2) and not stop_requested.is_set():
            pass
        runtime.stop()
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    return EXIT_FAILED if runtime.failed else EXIT_OK
