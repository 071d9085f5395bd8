"""Run the template's Python handlers in this process, the way the Lambda runtime would.

The environment (moto endpoint, dummy credentials, region, every function's variables) is set
before any handler is imported; each handler module is loaded once from its file (a cold start
per function) under a unique module name, since every function's file is called app.py.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from .aws import DUMMY_CREDENTIALS
from .settings import REGION
from .template import FunctionSpec, Template

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
_IMPORT_LOCK = threading.RLock()  # sys.path / sys.modules are process-wide
_REMOVED_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")


class EnvironmentConflict(RuntimeError):
    """Two functions set the same variable to different values (all handlers share one process)."""


class HandlerNotFound(RuntimeError):
    pass


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            day = datetime.now(UTC).strftime("%Y/%m/%d")
            self.log_stream_name = f"{day}/[{self.function_version}]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def make_context(fn: FunctionSpec) -> LambdaContext:
    return LambdaContext(
        function_name=fn.name,
        memory_limit_in_mb=fn.memory_size,
        invoked_function_arn=fn.arn,
        timeout_seconds=fn.timeout,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_payload(result: Any) -> Any:
    """What the Lambda service would pass on: the result serialized as JSON and read back."""
    return json.loads(json.dumps(result, default=_json_default))


def error_payload(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The JSON Lambda returns for an unhandled exception."""
    payload: dict[str, Any] = {
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
                    f"{fn.logical_id} sets {value!r}; the local stack runs all handlers in one process, "
                    "so give the variable one value (e.g. in Globals) or different names"
                )
            merged[key], owner[key] = value, fn.logical_id
    return merged


def _load_module(fn: FunctionSpec, unique: str) -> ModuleType:
    module_path, _, _ = fn.handler.rpartition(".")
    file = fn.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
    if not file.is_file():
        raise HandlerNotFound(f"{fn.logical_id}: handler file {file} does not exist (Handler: {fn.handler})")
    name = f"scrm_fn_{fn.logical_id}_{unique}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _IMPORT_LOCK:
        before = set(sys.modules)
        sys.path.insert(0, str(fn.code_dir))
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            sys.path.remove(str(fn.code_dir))
            # Sibling modules (models.py ...) stay private to this function: two functions may
            # both have one with the same name.
            for added in set(sys.modules) - before - {name}:
                origin = getattr(sys.modules[added], "__file__", None) or ""
                if Path(origin).resolve().is_relative_to(fn.code_dir):
                    del sys.modules[added]
    return module


class LambdaRuntime:
    def __init__(self, template: Template, endpoint_url: str) -> None:
        self.template = template
        self.endpoint_url = endpoint_url
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._saved: dict[str, str | None] | None = None
        self._unique = uuid.uuid4().hex[:8]

    def environment(self) -> dict[str, str]:
        env = merged_environment(self.template.functions)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **DUMMY_CREDENTIALS,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_SAM_LOCAL": "true",
            }
        )
        return env

    def activate(self) -> None:
        """Set the environment in os.environ (before any handler import); deactivate() undoes it."""
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

    def handler(self, function_id: str) -> Handler:
        with self._lock:
            if function_id not in self._handlers:
                fn = self.template.function(function_id)
                started = time.monotonic()
                module = _load_module(fn, self._unique)
                attr = fn.handler.rpartition(".")[2]
                handler = getattr(module, attr, None)
                if not callable(handler):
                    raise HandlerNotFound(f"{function_id}: {fn.handler} is not a function")
                self._handlers[function_id] = handler
                log.info("%s: cold start in %.0f ms", function_id, (time.monotonic() - started) * 1000)
            return self._handlers[function_id]

    def invoke(self, function_id: str, event: Any) -> Any:
        """Call the handler; returns the JSON payload of its result, raises what it raises."""
        fn = self.template.function(function_id)
        handler = self.handler(function_id)
        context = make_context(fn)
        log.debug("START %s RequestId: %s", function_id, context.aws_request_id)
        started = time.monotonic()
        try:
            return to_payload(handler(event, context))
        finally:
            elapsed = time.monotonic() - started
            log.debug(
                "END %s RequestId: %s Duration: %.1f ms", function_id, context.aws_request_id, elapsed * 1000
            )
            if elapsed > fn.timeout:
                log.warning(
                    "%s ran %.1f s, longer than its Timeout of %s s", function_id, elapsed, fn.timeout
                )
