"""Edge device health end to end: the edge component (`python -m scrm_edge`, a simulated sensor
on an imbalanced pump) posts its scores through a network link that goes down for over ten
minutes of sensor time, with the component restarted in the middle of the outage, to `scrm local
run`. After the gap every window's score reaches the stack once and in window order, the device's
history holds each window once, and the owner's timeline shows the device entering zone C and the
service request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scrm_edge.runtime.outbox import Outbox

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.mqtt_broker import SKIP_REASON, mqtt_broker
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEVICE = "pump-e2e-7"
PHONE = "13700137007"
WINDOWS_BEFORE_GAP, WINDOWS = 15, 90  # 75 windows of 10 s (12.5 minutes) produced while the link is down


class Link:
    """The gateway's network: relays POST /devices/health to the stack, or answers 503 when down.
    Records the window starts of every request the stack accepted, in the order it accepted them."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = False
        self.refused = 0
        self.delivered: list[str] = []
        self.lock = threading.Lock()
        link = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if link.down:
                    with link.lock:
                        link.refused += 1
                    self._answer(503, b'{"message": "network down"}')
                    return
                request = urllib.request.Request(
                    link.target + self.path,
                    data=body,
                    method="POST",
                    headers={
                        k: v for k, v in self.headers.items() if k.lower() in {"content-type", "x-api-key"}
                    },
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                if status < 300:
                    with link.lock:
                        link.delivered += [score["window_start"] for score in json.loads(body)["scores"]]
                self._answer(status, payload)

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with start_local_stack() as running:
        yield running


@pytest.fixture
def link(stack: RunningStack) -> Iterator[Link]:
    relay = Link(stack.base_url)
    yield relay
    relay.server.shutdown()


def edge_config(tmp_path: Path, link: Link, windows: int) -> Path:
    config = {
        "machine": {"device_id": DEVICE, "machine_class": "group2_rigid", "rpm": 1480},
        "window_seconds": 10,
        "sample_rate_hz": 10000,
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
        "source": {
            "kind": "simulated",
            "signal": {"name": "imbalance", "velocity_1x_mm_s": 3.6},  # zone C for group 2, rigid
            "start": "2026-12-03T08:00:00Z",
            "windows": windows,
            "pacing": "none",
        },
        "uplink": {"kind": "http", "url": f"{link.url}/devices/health", "api_key_env": "SCRM_API_KEY"},
        "sender": {"max_batch_scores": 20, "initial_backoff_seconds": 0.2, "max_backoff_seconds": 1},
        "flush_seconds": 1,
        "log_every_seconds": 5,
    }
    path = tmp_path / f"edge-{windows}.json"
    path.write_text(json.dumps(config))
    return path


def start_edge(config: Path) -> subprocess.Popen[bytes]:
    env = {"SCRM_API_KEY": "dev-api-key-not-secret", "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "scrm_edge", "--config", str(config)],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT / "edge")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def pending(tmp_path: Path) -> int:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    try:
        return len(outbox)
    finally:
        outbox.close()


def scores_kept(stack: RunningStack, device: str = DEVICE) -> list[str]:
    table = f"{stack.env['SCRM_STACK_NAME']}-DeviceHealthTable"
    items = stack.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="device_id = :d AND begins_with(sk, :s)",
        ExpressionAttributeValues={":d": {"S": device}, ":s": {"S": "score#"}},
    )["Items"]
    return [item["window_start"]["S"] for item in items]


def test_a_ten_minute_gap_with_a_restart_delivers_every_score_once_in_order(stack, link, tmp_path):
    registration = {
        "event_id": f"registry-{DEVICE}",
        "source": "device_registry",
        "type": "interaction",
        "occurred_at": "2026-12-01T10:00:00+08:00",
        "identifiers": [{"type": "device_id", "value": DEVICE}, {"type": "phone", "value": PHONE}],
        "interaction": {
            "kind": "device_registered",
            "content": "Pump P-200 installed",
            "channel_ref": DEVICE,
        },
    }
    assert stack.call("POST", "/events", registration)[0] == 202

    # online: the first windows go straight through, and the edge exits once they are sent
    first = start_edge(edge_config(tmp_path, link, WINDOWS_BEFORE_GAP))
    assert first.wait(timeout=120) == 0, first.stdout.read().decode() if first.stdout else ""
    assert len(link.delivered) == WINDOWS_BEFORE_GAP

    # the link goes down; the edge keeps scoring into its outbox, is restarted halfway, and resumes
    link.down = True
    second = start_edge(edge_config(tmp_path, link, WINDOWS))
    wait_for(lambda: pending(tmp_path) >= 30, timeout=120, interval=0.2)
    second.terminate()  # SIGTERM, as Greengrass stops a component
    assert second.wait(timeout=60) == 0
    held = pending(tmp_path)
    third = start_edge(edge_config(tmp_path, link, WINDOWS))
    wait_for(lambda: pending(tmp_path) == WINDOWS - WINDOWS_BEFORE_GAP, timeout=180, interval=0.2)
    assert held >= 30 and link.refused > 0 and len(link.delivered) == WINDOWS_BEFORE_GAP

    # the link is back: everything held arrives, once, oldest first
    link.down = False
    assert third.wait(timeout=180) == 0, third.stdout.read().decode() if third.stdout else ""
    expected = [f"2026-12-03T08:{10 * i // 60:02d}:{10 * i % 60:02d}.000Z" for i in range(WINDOWS)]
    assert link.delivered == expected  # each window once, in window order, none lost
    kept = wait_for(lambda: (found := scores_kept(stack)) and len(found) >= WINDOWS and found, timeout=120)
    assert sorted(kept) == expected

    # the owner's timeline: the first score (zone C) and the service team's request
    def device_entries() -> list[str]:
        status, found = stack.call("GET", f"/profiles?type=phone&value={PHONE}")
        if status != 200:
            return []
        _, page = stack.call("GET", f"/profiles/{found['profile_id']}/timeline?limit=50")
        kinds = [entry.get("data", {}).get("kind") for entry in page["entries"]]
        return sorted(kind for kind in kinds if kind and kind.startswith("device_"))

    assert wait_for(
        lambda: device_entries() == ["device_health", "device_registered", "device_service_needed"],
        timeout=90,
    )


def test_scores_published_over_mqtt_take_the_topic_rule_into_the_stack(tmp_path):
    """IoT Core's topic rule, run by the local stack on a real broker (SCRM_LOCAL_MQTT_URL): the
    edge's MQTT uplink publishes, the rule writes to DeviceHealthStream by device."""
    with mqtt_broker(tmp_path) as broker:
        if broker is None:
            pytest.skip(SKIP_REASON)
        device = f"fan-{uuid.uuid4().hex[:8]}"
        with start_local_stack({"SCRM_LOCAL_MQTT_URL": broker.url}) as stack:
            config = {
                "machine": {"device_id": device, "machine_class": "group1_rigid", "rpm": 990},
                "window_seconds": 5,
                "sample_rate_hz": 5000,
                "outbox": {"path": str(tmp_path / "outbox.sqlite")},
                "source": {
                    "kind": "simulated",
                    "signal": {"name": "healthy"},
                    "start": "2026-12-03T08:00:00Z",
                    "windows": 12,
                    "pacing": "none",
                },
                "uplink": {"kind": "mqtt", "host": broker.host, "port": broker.port, "client_id": device},
            }
            path = tmp_path / "edge.json"
            path.write_text(json.dumps(config))
            edge = start_edge(path)
            assert edge.wait(timeout=120) == 0, edge.stdout.read().decode() if edge.stdout else ""
            kept = wait_for(lambda: len(found := scores_kept(stack, device)) == 12 and found, timeout=120)
            assert kept == sorted(kept) and len(set(kept)) == 12
