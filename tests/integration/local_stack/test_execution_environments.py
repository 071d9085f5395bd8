"""The local runtime behaves like Lambda: one invocation per execution environment at a time,
more environments for concurrent requests (up to a cap), warm reuse, timeouts that end the
environment, and each function's own environment variables only."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import request, settings


def sleep(stack: LocalStack, seconds: float) -> tuple[int, Any]:
    status, _, body = request(stack.settings.http_port, "GET", f"/sleep/{seconds}")
    return status, json.loads(body)


def concurrently(stack: LocalStack, count: int, seconds: float) -> list[tuple[int, Any]]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: sleep(stack, seconds), range(count)))


def test_concurrent_invocations_get_environments_of_their_own(stack: LocalStack) -> None:
    answers = concurrently(stack, 6, 0.5)
    assert all(status == 200 for status, _ in answers)
    assert all(body["most_in_flight"] == 1 for _, body in answers)  # never two at once in one
    assert len({body["pid"] for _, body in answers}) >= 2
    assert len({body["request_id"] for _, body in answers}) == 6


def test_a_warm_environment_is_reused(stack: LocalStack) -> None:
    first = sleep(stack, 0)[1]
    second = sleep(stack, 0)[1]
    assert second["pid"] == first["pid"] and second["invocations"] == first["invocations"] + 1


def test_each_function_sees_only_its_own_variables(stack: LocalStack) -> None:
    body = sleep(stack, 0)[1]
    assert body["has_echo_only"] is False  # EchoFunction's own variable
    assert body["function_name"] == f"{stack.settings.stack_name}-SleeperFunction"
    status, _, raw = request(stack.settings.http_port, "GET", "/act/env")
    assert status == 200 and json.loads(raw)["env"]["ECHO_ONLY"] == "yes"


def test_a_timed_out_invocation_ends_its_environment(stack: LocalStack) -> None:
    assert stack.runtime is not None
    pool = stack.runtime.pool("SleeperFunction")
    warm = sleep(stack, 0)[1]["pid"]  # the most recently used environment runs the next call
    environments = pool.size
    status, body = sleep(stack, 5)  # Timeout: 2
    assert status == 500 and body == {"message": "Internal Server Error"}
    assert pool.size == environments - 1
    assert not Path(f"/proc/{warm}").exists()  # stopped, as Lambda stops a timed-out sandbox
    assert sleep(stack, 0)[0] == 200


def test_the_cap_makes_requests_wait_for_an_environment(stack: LocalStack) -> None:
    capped = LocalStack(replace(settings(), max_environments=2)).start()
    try:
        answers = concurrently(capped, 6, 0.3)
        assert all(status == 200 for status, _ in answers)
        assert len({body["pid"] for _, body in answers}) <= 2
        assert all(body["most_in_flight"] == 1 for _, body in answers)
        assert capped.runtime is not None and capped.runtime.pool("SleeperFunction").size <= 2
    finally:
        capped.stop()
