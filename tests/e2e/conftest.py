"""`scrm local run` as a subprocess on free ports, exactly as a user starts it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "dev-api-key-not-secret"  # the dev-only key in config/channels.dev.json


@dataclass
class RunningStack:
    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        api_key: str | None = API_KEY,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if api_key:
            request.add_header("X-Api-Key", api_key)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def wait_drained(self, timeout: float = 120.0) -> None:
        """Poll /healthz until nothing is waiting in the local queues and streams."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            status, health = self.call("GET", "/healthz", api_key=None)
            quiet = quiet + 1 if status == 200 and health["backlog"] == 0 else 0
            if quiet >= 3:  # stable for a moment: stream pollers may pick up late records
                return
            time.sleep(0.2)
        raise AssertionError(f"backlog did not drain within {timeout} s")

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's moto (tests that look behind the API)."""
        import boto3  # only the tests that look into moto need it

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=f"http://127.0.0.1:{self.env['MOTO_PORT']}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def dead_letters(self) -> dict[str, int]:
        """Messages waiting in each dead-letter or failure queue of the stack."""
        sqs = self.client("sqs")
        depths = {}
        for url in sqs.list_queues(QueueNamePrefix=self.env["SCRM_STACK_NAME"]).get("QueueUrls", []):
            if "DeadLetter" in url or "Failure" in url:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                depths[url.rsplit("/", 1)[-1]] = int(attributes["ApproximateNumberOfMessages"])
        return depths

    def scrm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scrm_local", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@contextlib.contextmanager
def start_local_stack(extra_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """`scrm local run` in a subprocess on free ports; stopped with SIGTERM, which must exit 0."""
    env = dict(os.environ)
    for key in ("SCRM_CHANNELS_FILE", "SCRM_RULES_FILE", "SCRM_TEMPLATE", "AWS_PROFILE"):
        env.pop(key, None)  # the embedded defaults, as `make run` uses them, unless overridden
    env.update(
        {
            "PORT": str(free_port()),
            "MOTO_PORT": str(free_port()),
            "SCRM_STACK_NAME": f"e2e{uuid.uuid4().hex[:6]}",
            "SCRM_LOG_LEVEL": os.environ.get("E2E_STACK_LOG_LEVEL", "WARNING"),
            **(extra_env or {}),
        }
    )
    log_path = Path(os.environ.get("E2E_STACK_LOG", os.devnull))
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrm_local", "local", "run"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        stack = RunningStack(f"http://127.0.0.1:{env['PORT']}", env, process)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        f"scrm local run exited with {process.returncode} (set E2E_STACK_LOG)"
                    )
                with contextlib.suppress(OSError):
                    if stack.call("GET", "/healthz", api_key=None)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError("local stack not ready within 90 s")
                time.sleep(0.2)
            yield stack
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0, "scrm local run did not stop cleanly"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    with start_local_stack() as stack:
        yield stack
