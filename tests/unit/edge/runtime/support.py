"""Helpers for the edge runtime tests: scores, a fake scorer, a sine signal and a fake cloud receiver.

The fake receiver answers POST /devices/health the way the cloud does (202, 207 with the refused
indexes, 422 when all are refused) and keeps one score per (device_id, window_start), as the
cloud's stream consumer does. Its `mode` decides, per request, whether the network works:
  "up"        process and answer;
  "drop"      close the connection without reading or processing the request (network down);
  "503"       answer 503 without processing (the API is unavailable);
  "lost_ack"  process the batch, then reset the connection before answering (the ack is lost).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from scrm_edge.score import HealthScore

from tests.ports import free_port as free_port  # the tests import it from here

START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
API_KEY = "test-api-key-5f0c2b"  # a test value, checked by the receiver and looked for in logs


def make_score(
    device_id: str = "pump-0042", window_start: datetime = START, *, score: int = 96
) -> HealthScore:
    return HealthScore(
        device_id=device_id,
        window_start=window_start,
        window_seconds=10.0,
        sample_rate_hz=1000.0,
        readings=10_000,
        machine_class="group2_rigid",
        zone="A",
        score=score,
        features={"velocity_rms_mm_s": 0.7},
    )


def window(index: int, seconds: float = 10.0) -> datetime:
    return START + timedelta(seconds=index * seconds)


def fake_scorer(device_id: str = "pump-0042") -> Callable[[np.ndarray, float, datetime], HealthScore]:
    """Stands in for scrm_edge.health.assess: the r.m.s. of the window as its only feature."""

    def score(readings: np.ndarray, sample_rate_hz: float, window_start: datetime) -> HealthScore:
        rms = float(np.sqrt(np.mean(readings**2)))
        return HealthScore(
            device_id=device_id,
            window_start=window_start,
            window_seconds=readings.size / sample_rate_hz,
            sample_rate_hz=sample_rate_hz,
            readings=int(readings.size),
            machine_class="group2_rigid",
            zone="A",
            score=90,
            features={"velocity_rms_mm_s": rms},
        )

    return score


def fake_scorer_factory(config: Any) -> Callable[[np.ndarray, float, datetime], HealthScore]:
    return fake_scorer(config.device_id)


def sine(index: int, samples: int, sample_rate_hz: float) -> np.ndarray:
    """A 25 Hz tone whose amplitude tells the window index (1 + index/1000 m/s²)."""
    t = (index * samples + np.arange(samples)) / sample_rate_hz
    return (1 + index / 1000) * np.sin(2 * np.pi * 25 * t)


@dataclass
class Request:
    status: int | str  # what the receiver answered, or "drop" / "lost_ack"
    keys: list[tuple[str, str]]
    api_key: str | None


@dataclass
class ScoreReceiver:
    mode: Callable[[], str] = lambda: "up"
    refuse: Callable[[dict[str, Any]], str | None] = lambda doc: None  # a reason to refuse a score
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    processed: list[tuple[str, str]] = field(default_factory=list)  # every score processed, repeats too
    stored: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # kept once per key
    stored_order: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def process(self, body: bytes, api_key: str | None) -> tuple[int, dict[str, Any]]:
        documents = json.loads(body)["scores"]
        accepted, rejected = 0, []
        with self.lock:
            for index, document in enumerate(documents):
                reason = self.refuse(document)
                if reason is not None:
                    rejected.append({"index": index, "field": "machine_class", "message": reason})
                    continue
                key = (document["device_id"], document["window_start"])
                self.processed.append(key)
                accepted += 1
                if key not in self.stored:
                    self.stored[key] = document
                    self.stored_order.append(key)
        status = 202 if not rejected else (207 if accepted else 422)
        return status, {"accepted": accepted, "rejected": rejected}

    @property
    def duplicates(self) -> int:
        return len(self.processed) - len(self.stored)


@contextmanager
def running_receiver(
    mode: Callable[[], str] = lambda: "up",
    refuse: Callable[[dict[str, Any]], str | None] = lambda doc: None,
) -> Iterator[ScoreReceiver]:
    receiver = ScoreReceiver(mode=mode, refuse=refuse)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            api_key = self.headers.get("x-api-key")
            current = receiver.mode()
            if current == "drop":
                receiver.requests.append(Request("drop", [], api_key))
                self._reset()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            keys = [(d["device_id"], d["window_start"]) for d in json.loads(body)["scores"]]
            if current == "503":
                receiver.requests.append(Request(503, keys, api_key))
                self._answer(503, {"message": "Service Unavailable"})
                return
            if api_key != API_KEY:
                receiver.requests.append(Request(401, keys, api_key))
                self._answer(401, {"message": "Unauthorized"})
                return
            status, answer = receiver.process(body, api_key)
            if current == "lost_ack":
                receiver.requests.append(Request("lost_ack", keys, api_key))
                self._reset()
                return
            receiver.requests.append(Request(status, keys, api_key))
            self._answer(status, answer)

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reset(self) -> None:
            # SO_LINGER 0: closing sends a TCP reset, as a dropped network path would look.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/devices/health"
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
