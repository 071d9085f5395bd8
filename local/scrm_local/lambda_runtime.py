"""Run the template's Python handlers the way the Lambda service does.

Each function has a pool of execution environments. An environment is a process of its own
(lambda_worker.py) with that function's environment variables only: it imports the handler
once (a cold start), then runs one invocation at a time and is reused warm. More concurrent
invocations get more environments, up to the function's ReservedConcurrentExecutions or the
stack's per-function cap; beyond that they wait for one to come free. An invocation that runs
past the function's Timeout is stopped and its environment discarded, as Lambda does.

Nothing a handler keeps at module level (Powertools' resolver's current event, Logger keys,
caches, clients) is ever seen by two invocations at once, exactly as in Lambda.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import IO, Any

from .aws import DUMMY_CREDENTIALS
from .settings import DEFAULT_MAX_ENVIRONMENTS, REGION
from .template import FunctionSpec, Template

log = logging.getLogger(__name__)

INIT_TIMEOUT = 60.0  # seconds for a cold start (imports) on a busy 2-core machine
_REMOVED_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")
# From the host, only what a process needs to run at all; the rest comes from the template.
_HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")


class EnvironmentConflict(RuntimeError):
    """Two functions set the same variable to different values (the `scrm` tools run the layer
    in their own process with the union of the functions' variables)."""


class HandlerNotFound(RuntimeError):
    pass


class InvocationFailed(RuntimeError):
    """The handler raised, timed out or its environment died; `payload` is Lambda's error JSON."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(str(payload.get("errorMessage", "")))
        self.payload = payload

    @property
    def error_type(self) -> str:
        return str(self.payload.get("errorType", ""))


def error_payload(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The JSON Lambda returns for an unhandled exception."""
    if isinstance(exc, InvocationFailed):
        payload = dict(exc.payload)
    else:
        payload = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
    if request_id:
        payload["requestId"] = request_id
    return payload


def merged_environment(functions: Mapping[str, FunctionSpec]) -> dict[str, str]:
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for fn in functions.values():
        for key, value in fn.environment.items():
            if key in merged and merged[key] != value:
                raise EnvironmentConflict(
                    f"environment variable {key} differs between functions: "
                    f"{owner[key]} sets {merged[key]!r}, "
                    f"{fn.logical_id} sets {value!r}; the scrm tools run the application in one process, "
                    "so give the variable one value (e.g. in Globals) or different names"
                )
            merged[key], owner[key] = value, fn.logical_id
    return merged


def aws_variables(endpoint_url: str) -> dict[str, str]:
    """What every environment gets besides the function's variables: the moto endpoint,
    dummy credentials, the region."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_SAM_LOCAL": "true",
    }


@dataclass(frozen=True)
class _Stream:
    """Where an environment's stdout/stderr go (None: inherit this process's)."""

    target: IO[str] | None = None


class ExecutionEnvironment:
    """One worker process for one function; not thread-safe (the pool hands it to one caller)."""

    def __init__(self, fn: FunctionSpec, endpoint_url: str, output: _Stream) -> None:
        self.fn = fn
        self.instance = uuid.uuid4().hex
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{day}/[$LATEST]{self.instance}"
        self.log_group_name = f"/aws/lambda/{fn.name}"
        parent, child = socket.socketpair()
        env = {k: os.environ[k] for k in _HOST_VARIABLES if k in os.environ}
        env.update(fn.environment)
        env.update(aws_variables(endpoint_url))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
                "LAMBDA_TASK_ROOT": str(fn.code_dir),
                "_HANDLER": fn.handler,
                "PYTHONUNBUFFERED": "1",  # logs reach the terminal even if the process is killed
            }
        )
        for key in _REMOVED_VARIABLES:
            env.pop(key, None)
        started = time.monotonic()
        with child:
            self.process = subprocess.Popen(  # noqa: S603 - our own worker module
                [sys.executable, "-m", "scrm_local.lambda_worker", "--fd", str(child.fileno())],
                env=env,
                cwd=fn.code_dir if fn.code_dir.is_dir() else None,
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=output.target,
                stderr=output.target,
            )
        self.conn = Connection(parent.detach())
        try:
            reply = self._exchange(
                {
                    "init": {
                        "code_dir": str(fn.code_dir),
                        "handler": fn.handler,
                        "layer_dirs": [str(d) for d in fn.layer_dirs],
                    }
                },
                INIT_TIMEOUT,
                "init",
            )
        except InvocationFailed:
            self.close()
            raise
        if "error" in reply:
            self.close()
            raise HandlerNotFound(
                f"{fn.logical_id}: {reply['error'].get('errorMessage')} (Handler: {fn.handler})"
            )
        log.info("%s: cold start in %.0f ms", fn.logical_id, (time.monotonic() - started) * 1000)

    def _exchange(self, message: dict[str, Any], timeout: float, phase: str) -> dict[str, Any]:
        try:
            self.conn.send_bytes(json.dumps(message).encode("utf-8"))
            if self.conn.poll(timeout):
                reply: dict[str, Any] = json.loads(self.conn.recv_bytes())
                return reply
        except (EOFError, OSError) as exc:
            code = self.process.poll()
            self.close()
            raise InvocationFailed(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {phase} Error: Runtime exited"
                    + (f" with error: exit status {code}" if code is not None else f" ({exc})"),
                }
            ) from exc
        self.close()
        raise InvocationFailed(
            {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout:.2f} seconds"}
        )

    def invoke(self, event: Any, request_id: str) -> Any:
        context = {
            "function_name": self.fn.name,
            "memory_limit_in_mb": self.fn.memory_size,
            "invoked_function_arn": self.fn.arn,
            "aws_request_id": request_id,
            "deadline_ms": int(time.time() * 1000) + self.fn.timeout * 1000,
            "log_group_name": self.log_group_name,
            "log_stream_name": self.log_stream_name,
        }
        reply = self._exchange({"invoke": {"event": event, "context": context}}, self.fn.timeout, request_id)
        if "error" in reply:
            raise InvocationFailed({**reply["error"], "requestId": request_id})
        return reply.get("result")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("%s: environment %s did not exit", self.fn.logical_id, self.instance)


class EnvironmentPool:
    """The execution environments of one function: warm ones are reused (most recent first),
    new ones are started while fewer than `limit` exist, otherwise callers wait."""

    def __init__(self, fn: FunctionSpec, endpoint_url: str, limit: int, output: _Stream) -> None:
        self.fn = fn
        self.endpoint_url = endpoint_url
        self.limit = max(1, limit)
        self.output = output
        self._idle: list[ExecutionEnvironment] = []
        self._count = 0  # idle + busy + starting
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self) -> ExecutionEnvironment:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.fn.logical_id}: the runtime is shut down")
                while self._idle:
                    env = self._idle.pop()
                    if env.alive:
                        self._busy += 1
                        return env
                    self._count -= 1
                if self._count < self.limit:
                    self._count += 1
                    self._busy += 1
                    break
                self._cond.wait()
        try:
            return ExecutionEnvironment(self.fn, self.endpoint_url, self.output)
        except BaseException:
            self._forget()
            raise

    def release(self, env: ExecutionEnvironment) -> None:
        with self._cond:
            self._busy -= 1
            if env.alive and not self._closed:
                self._idle.append(env)
                self._cond.notify()
                return
        env.close()
        self._forget(busy=False)

    def _forget(self, busy: bool = True) -> None:
        with self._cond:
            self._count -= 1
            if busy:
                self._busy -= 1
            self._cond.notify()

    @property
    def size(self) -> int:
        """Environments that exist (idle or busy)."""
        return self._count

    @property
    def busy(self) -> int:
        return self._busy

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for env in idle:
            env.close()


class LambdaRuntime:
    def __init__(
        self,
        template: Template,
        endpoint_url: str,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        output: IO[str] | None = None,
    ) -> None:
        self.template = template
        self.endpoint_url = endpoint_url
        self.max_environments = max_environments
        self._output = _Stream(output)
        self._pools: dict[str, EnvironmentPool] = {}
        self._lock = threading.Lock()
        self._saved: dict[str, str | None] | None = None

    # --- the application's environment in this process (for the `scrm` tools) ------------------
    def environment(self) -> dict[str, str]:
        env = merged_environment(self.template.functions)
        env.update(aws_variables(self.endpoint_url))
        return env

    def activate(self) -> None:
        """Set the union of the functions' variables in os.environ, so a tool can build the
        layer's composition root in this process; deactivate() undoes it."""
        env = self.environment()
        self._saved = {k: os.environ.get(k) for k in (*env, *_REMOVED_VARIABLES)}
        for key in _REMOVED_VARIABLES:
            os.environ.pop(key, None)
        os.environ.update(env)

    def deactivate(self) -> None:
        if self._saved is None:
            return
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = None

    # --- invocations ------------------------------------------------------------------------------
    def pool(self, function_id: str) -> EnvironmentPool:
        with self._lock:
            if function_id not in self._pools:
                fn = self.template.function(function_id)
                limit = fn.reserved_concurrency or self.max_environments
                self._pools[function_id] = EnvironmentPool(fn, self.endpoint_url, limit, self._output)
            return self._pools[function_id]

    def invoke(self, function_id: str, event: Any) -> Any:
        """Run one invocation in a free environment of the function; returns the JSON payload of
        the result, raises InvocationFailed (handler error, timeout, crash) or HandlerNotFound."""
        pool = self.pool(function_id)
        request_id = str(uuid.uuid4())
        env = pool.acquire()
        log.debug("START %s RequestId: %s", function_id, request_id)
        started = time.monotonic()
        try:
            return env.invoke(json.loads(json.dumps(event)), request_id)
        finally:
            pool.release(env)
            log.debug(
                "END %s RequestId: %s Duration: %.1f ms",
                function_id,
                request_id,
                (time.monotonic() - started) * 1000,
            )

    def close(self) -> None:
        """Stop every environment (Lambda's shutdown phase, without the grace period)."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
