"""`scrm local run` as a process, `scrm invoke` / `scrm schedule` against it, SIGTERM shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.local_stack.support import PROJECT, TEMPLATE, free_port, get_json, port_in_use, wait_for

SCRM = [os.environ.get("PYTHON", __import__("sys").executable), "-m", "scrm_local"]


def stack_env(moto_port: int, http_port: int, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SCRM_"))}
    env.update(
        {
            "SCRM_TEMPLATE": str(TEMPLATE),
            "SCRM_PROJECT_ROOT": str(PROJECT),
            "SCRM_STACK_NAME": "cli-stack",
            "MOTO_PORT": str(moto_port),
            "PORT": str(http_port),
            "SCRM_CHANNELS_FILE": str(config / "channels.json"),
            "SCRM_RULES_FILE": str(config / "rules.json"),
        }
    )
    return env


@pytest.fixture(scope="module")
def running(config_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    moto_port, http_port = free_port(), free_port()
    env = stack_env(moto_port, http_port, config_dir)
    process = subprocess.Popen(
        [*SCRM, "local", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read() if process.stderr else "stack exited")
            try:
                return get_json(http_port, "/healthz")[0] == 200
            except OSError:
                return False

        wait_for(healthy, timeout=30, interval=0.1)
        yield process, env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def scrm(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCRM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_invoke_against_the_running_stack(
    running: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    _, env = running
    event = {"pathParameters": {"action": "secret"}}
    (tmp_path / "event.json").write_text(json.dumps(event))
    done = scrm(env, "invoke", "EchoFunction", "--event", str(tmp_path / "event.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"api": {"keys": {"test": "fixture-key"}}}  # read from the stack's moto
    printed = scrm(
        env, "invoke", "EchoFunction", "--event", "-", stdin='{"pathParameters": {"action": "print"}}'
    )
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == {"printed": True}  # print() went to stderr
    assert "this goes to the log" in printed.stderr


def test_schedule_against_the_running_stack(running: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    _, env = running
    done = scrm(env, "schedule", "ScheduledFunction", "--event-name", "Nightly")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["received"]["detail-type"] == "Scheduled Event"
    assert result["function"] == "cli-stack-ScheduledFunction"
    several = scrm(env, "schedule", "ScheduledFunction")
    assert several.returncode == 1 and "--event-name" in several.stderr


def test_clear_errors(running: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    _, env = running
    not_a_function = scrm(env, "invoke", "WorkQueue")
    assert not_a_function.returncode == 1 and "WorkQueue is not a function" in not_a_function.stderr
    failing = scrm(
        env, "invoke", "EchoFunction", "--event", "-", stdin='{"pathParameters": {"action": "boom"}}'
    )
    assert failing.returncode == 1
    assert json.loads(failing.stdout)["errorType"] == "RuntimeError"
    no_stack = scrm({**env, "MOTO_PORT": str(free_port())}, "invoke", "EchoFunction")
    assert no_stack.returncode == 1 and "no local stack is running" in no_stack.stderr


def test_sigterm_stops_cleanly(running: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    process, env = running
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "is ready" in stdout and "/healthz" in stdout
    deadline = time.monotonic() + 5
    while port_in_use(int(env["PORT"])) or port_in_use(int(env["MOTO_PORT"])):
        assert time.monotonic() < deadline, "ports still in use"
        time.sleep(0.05)
