"""One Lambda execution environment: a process that imports one function's handler once (its
cold start) and then runs one invocation at a time, as the Lambda service does.

Started by lambda_runtime.ExecutionEnvironment with the function's environment variables and a
socket on `--fd`. The protocol is JSON over multiprocessing's length-prefixed frames:
  <- {"init": {"code_dir", "handler", "layer_dirs"}}      -> {"ready": true} | {"error": {...}}
  <- {"invoke": {"event", "context"}}                      -> {"result": ...} | {"error": {...}}
The handler's own output (print, Powertools logs) goes to this process's stdout/stderr, like
CloudWatch Logs; the socket carries only results.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline_ms: int  # epoch milliseconds, as the Runtime API's Lambda-Runtime-Deadline-Ms
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    tenant_id: Any = field(default=None)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The JSON Lambda returns for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _load_handler(init: dict[str, Any]) -> Any:
    module_path, _, attr = str(init["handler"]).rpartition(".")
    # /var/task first, then the layers' /opt/python, as the Python runtime orders sys.path
    for folder in reversed([init["code_dir"], *init.get("layer_dirs", [])]):
        sys.path.insert(0, folder)
    module = importlib.import_module(module_path)
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise AttributeError(f"handler '{attr}' missing on module '{module_path}'")
    return handler


def serve(conn: Connection) -> None:
    handler: Any = None
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the runtime went away: the environment ends with it
        if "init" in message:
            try:
                handler = _load_handler(message["init"])
                reply: dict[str, Any] = {"ready": True}
            except Exception as exc:
                # Lambda reports a failed init as Runtime.ImportModuleError / HandlerNotFound
                kind = "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else None
                reply = {"error": error_payload(exc, kind or "Runtime.ImportModuleError")}
        else:
            invocation = message["invoke"]
            context = LambdaContext(**invocation["context"])
            try:
                result = handler(invocation["event"], context)
                reply = {"result": json.loads(json.dumps(result, default=_json_default))}
            except Exception as exc:
                traceback.print_exc()  # the runtime logs the stack trace of an unhandled error
                reply = {"error": error_payload(exc)}
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
        conn.send_bytes(json.dumps(reply).encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scrm-lambda-worker")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    # the runtime's own messages: to stderr, like the Lambda Python runtime's bootstrap
    logging.basicConfig(
        level=logging.WARNING,  # the Python runtime's root logger level
        format=f"%(asctime)s %(levelname)s [{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', '?')}] %(name)s: "
        "%(message)s",
        stream=sys.stderr,
    )
    sock = socket.socket(fileno=args.fd)
    serve(Connection(sock.detach()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
