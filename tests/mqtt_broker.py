"""An MQTT broker for tests: the machine's Mosquitto on 127.0.0.1:1883 when one listens (anonymous
access), else a private `mosquitto` on a free port; None when neither is possible."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port
from tests.waiting import wait_for


@dataclass(frozen=True)
class Broker:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def mqtt_broker(workdir: Path) -> Iterator[Broker | None]:
    if listening("127.0.0.1", 1883):
        yield Broker("127.0.0.1", 1883)
        return
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if binary is None:
        yield None
        return
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: listening("127.0.0.1", port), timeout=10)
        yield Broker("127.0.0.1", port)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


SKIP_REASON = "needs an MQTT broker on 127.0.0.1:1883 or the mosquitto binary (apt-get install mosquitto)"
