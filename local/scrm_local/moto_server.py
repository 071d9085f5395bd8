"""moto in server mode with DynamoDB requests one at a time, transactions that stay fast as
tables grow, and FIFO queues that keep their message groups in order under concurrent receivers.

moto's DynamoDB backend is not safe under concurrent mutation: TransactWriteItems deep-copies
whole tables for rollback while other threads write, and fails with "dictionary changed size
during iteration" (HTTP 500). Serializing DynamoDB (and DynamoDB Streams) requests keeps moto
correct; the interleaving of our workers' requests, which is what concurrency tests exercise, is
unchanged. Other services keep serving concurrently (SQS long polls would otherwise stall all)."""

from __future__ import annotations

import contextlib
import copy
import ctypes
import logging
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from moto.sqs.models import DEDUPLICATION_TIME_IN_SECONDS, Queue, SQSBackend
from werkzeug.serving import make_server


class _DynamoDBOneAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return self._app(environ, start_response)  # e.g. SQS long polls must not block the rest
        with self._lock:
            return list(self._app(environ, start_response))  # the body is produced inside the lock


class SerializedMotoServer(ThreadedMotoServer):
    def start(self) -> None:
        install_fidelity()
        super().start()

    def _server_entry(self) -> None:
        app = _DynamoDBOneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems without deep-copying every touched table for rollback.

    moto snapshots whole tables (items and their stream records) per transaction, which makes
    each transaction slower as the local tables grow. Here every condition is evaluated first
    (nothing is written when one fails, exactly like DynamoDB), then the writes are applied with
    only the touched items snapshotted. Atomic because SerializedMotoServer runs one request at a
    time."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    writes: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        original_item = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            errors.append((None, None, None))
            if op_type != "ConditionCheck":
                writes.append((op_type, op, table_name, key, copy.deepcopy(current)))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:
            errors.append((type(exc).__name__, str(exc), original_item))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    applied: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, before in writes:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=None,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            applied.append((table_name, key, before))
    except Exception:
        for table_name, key, before in reversed(applied):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


_moto_update_item = DynamoDBBackend.update_item


def _atomic_update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """moto's UpdateItem applies the expression to the stored item, then checks the 400 KB item
    limit and raises with the item already changed. DynamoDB refuses the whole update: restore."""
    before = copy.deepcopy(self.get_item(table_name, key))
    try:
        return _moto_update_item(self, table_name, key, *args, **kwargs)
    except ItemSizeToUpdateTooLarge:
        current = self.get_item(table_name, key)
        if before is None:
            self.delete_item(table_name, key)
        elif current is not None:
            current.attrs = before.attrs
        raise


def install_dynamodb_fidelity() -> None:
    """Where moto's DynamoDB differs from DynamoDB in ways the application depends on."""
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _atomic_update_item  # type: ignore[method-assign]


_moto_receive_message = SQSBackend.receive_message
_moto_add_message = Queue.add_message
_FIFO_POLL_INTERVAL = 0.1  # seconds between receive attempts while a group holds messages back
_FIFO_IDLE_WAIT = 0.25  # an empty queue is woken by a send; this bounds a lapsed retry's wait
_fifo_state_lock = threading.Lock()


def _fifo_lock(queue: Any) -> threading.Lock:
    with _fifo_state_lock:
        lock: threading.Lock | None = getattr(queue, "_scrm_receive_lock", None)
        if lock is None:
            lock = threading.Lock()
            queue._scrm_receive_lock = lock
        return lock


def _fifo_receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> Any:
    """moto's ReceiveMessage, one at a time per FIFO queue.

    moto decides which message groups are in flight from a snapshot taken when a receive starts,
    and un-pends a failed message only when it reaches it: two receives at once can hand out a
    group's next message while its previous one is being retried, and a group whose first and
    second messages both failed skips the first (the second still looks in flight) and hands out
    the second. SQS does neither (order within a group is the point of FIFO). So: one receive at
    a time per queue, and every message whose visibility lapsed is un-pended before it starts.
    Long polls wait outside the lock."""
    queue = self.get_queue(queue_name)
    if not queue.fifo_queue:
        return _moto_receive_message(
            self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
        )
    deadline = time.monotonic() + max(0, int(wait_seconds_timeout or 0))
    while True:
        with _fifo_lock(queue):
            for lapsed in [m for m in queue.pending_messages if m.visible]:
                queue.pending_messages.discard(lapsed)
            found = _moto_receive_message(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            )
        remaining = deadline - time.monotonic()
        if found or remaining <= 0:
            return found
        if queue.messages:  # visible but held back by their group: look again shortly
            time.sleep(min(remaining, _FIFO_POLL_INTERVAL))
        else:  # nothing visible: sleep until a message is sent (or a retry's visibility lapses)
            queue.wait_for_messages(min(remaining, _FIFO_IDLE_WAIT))


def _fifo_add_message(self: Any, message: Any) -> None:
    """moto deduplicates a FIFO message only against messages still in the queue; SQS drops any
    message whose deduplication id it accepted in the last five minutes, deleted or not."""
    dedup_id = getattr(message, "deduplication_id", None) if self.fifo_queue else None
    if dedup_id:
        now = time.time()
        with _fifo_state_lock:
            seen: dict[str, float] = self.__dict__.setdefault("_scrm_accepted_dedup_ids", {})
            while seen:  # insertion order is time order: drop what left the window
                oldest = next(iter(seen))
                if now - seen[oldest] < DEDUPLICATION_TIME_IN_SECONDS:
                    break
                del seen[oldest]
            if dedup_id in seen:
                return
            seen[dedup_id] = now
    _moto_add_message(self, message)


def install_sqs_fifo_fidelity() -> None:
    """Where moto's FIFO queues differ from SQS in ways the outbound sync depends on."""
    SQSBackend.receive_message = _fifo_receive_message  # type: ignore[method-assign]
    Queue.add_message = _fifo_add_message  # type: ignore[method-assign]


def install_fidelity() -> None:
    """Every correction above, wherever this module serves moto (in a thread or a process)."""
    install_dynamodb_fidelity()
    install_sqs_fifo_fidelity()


class MotoProcess:
    """moto in a child process: its own interpreter (and GIL), so the handlers running in the
    stack's process and moto use both cores. The child dies with the stack, even on SIGKILL."""

    def __init__(self, ip_address: str, port: int) -> None:
        self._ip_address = ip_address
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "scrm_local.moto_server", self._ip_address, str(self._port)],
            stdout=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("moto did not start (see the messages above)")
        self._port = int(line)

    def get_host_and_port(self) -> tuple[str, int]:
        return self._ip_address, self._port

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the stack's process dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def serve(ip_address: str, port: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    install_fidelity()
    app = _DynamoDBOneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server(ip_address, port, app, True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(server.server_address[1], flush=True)  # tells the parent the port (port 0 = any free one)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
