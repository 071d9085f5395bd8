"""Powertools BatchProcessors for every batch handler: one idiom per stream type.

SQS queues (canonical events, enrichment requests, alarms) go through ``RecordBatchProcessor``
or, where records are independent, ``ConcurrentBatchProcessor``; streams whose order matters
(Kinesis CDC, the profiles table's DynamoDB stream) through ``InOrderBatchProcessor``. All of them
with Powertools' ``process_partial_response``.

Each record runs in a logging context of its own: Powertools' thread-local keys name the record
(``record_identity``), a record handler may add more with ``logger.thread_safe_append_keys``,
and all of it ends with the record. Worker threads are reused across records and share the
Logger, so a record's keys never reach the next record or a concurrent one. A failure is logged
once, inside that context, by identity and error type, never with the values that failed.

Overlapping records cuts Lambda-seconds because the sync core mostly waits on DynamoDB; it is
safe because the sync core's result does not depend on the order or concurrency of events
(conditional writes, tested by the property tests). A stream's changes of one row (or one
profile) must apply in order, so streams are processed one by one.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from .logging import mask_phones

_ID_CHARS = 128  # ids from a record body are caller-supplied: never let one flood a log line


def canonical_identity(body: object) -> dict[str, str]:
    """``event_id`` and ``source`` of an SQS body that is a JSON object naming them, else nothing
    (bodies that do not parse, however deep or broken, are not an error here)."""
    if not isinstance(body, str):
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        key: value[:_ID_CHARS]
        for key in ("event_id", "source")
        if isinstance(value := document.get(key), str) and value
    }


def record_identity(event_type: EventType, record: Mapping[str, Any]) -> dict[str, str]:
    """Which record this is, for its log lines: queue and stream positions and event ids, never
    keys or images (a table's key can be a phone number)."""
    if event_type is EventType.SQS:
        return {"message_id": str(record.get("messageId", "")), **canonical_identity(record.get("body"))}
    if event_type is EventType.KinesisDataStreams:
        return {
            "sequence_number": str((record.get("kinesis") or {}).get("sequenceNumber", "")),
            "shard": str(record.get("eventID", "")).split(":", 1)[0],
        }
    if event_type is EventType.DynamoDBStreams:
        return {
            "sequence_number": str((record.get("dynamodb") or {}).get("SequenceNumber", "")),
            "stream_event_id": str(record.get("eventID", "")),
        }
    return {}


def describe_failure(exception: BaseException | None) -> dict[str, Any]:
    """What an operator needs from a failed record, without the values that failed: validation
    errors by field and error type (pydantic quotes the input otherwise), other errors by type
    and their message with phone numbers shortened."""
    if exception is None:
        return {"error": "unknown"}
    if isinstance(exception, ValidationError):
        return {
            "error": "ValidationError",
            "fields": [".".join(map(str, e["loc"])) + ": " + e["type"] for e in exception.errors()][:20],
        }
    return {"error": type(exception).__name__, "detail": mask_phones(str(exception))[:500]}


class RecordBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, with each record in its own logging context (see above)."""

    def __init__(self, event_type: EventType, logger: Logger) -> None:
        # a fully failed batch is a partial response too, never an exception: the exception's
        # text would quote every record's error (and their inputs) into the runtime's log.
        # Powertools' own `logger=` is not used: it logs the exception's text unmasked.
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self.record_logger = logger

    def __call__(
        self, records: list[dict], handler: Callable, lambda_context: LambdaContext | None = None
    ) -> RecordBatchProcessor:
        super().__call__(records, self._in_record_context(handler), lambda_context)
        return self

    def _in_record_context(self, handler: Callable) -> Callable:
        # wraps keeps the handler's signature: Powertools passes lambda_context only if it asks
        @functools.wraps(handler)
        def run(record: Any, **kwargs: Any) -> Any:
            return contextvars.copy_context().run(self._run_record, handler, record, kwargs)

        return run

    def _run_record(self, handler: Callable, record: Any, kwargs: dict[str, Any]) -> Any:
        raw = getattr(record, "raw_event", record)  # the event source data class, or a dict
        self.record_logger.thread_safe_clear_keys()  # a reused worker thread starts clean
        self.record_logger.thread_safe_append_keys(**record_identity(self.event_type, raw))
        try:
            return handler(record=record, **kwargs)
        except Exception as exc:
            self.record_logger.warning("record failed; it will be retried", extra=describe_failure(exc))
            raise


class ConcurrentBatchProcessor(RecordBatchProcessor):
    """Records of the batch overlap on a few threads (for queues of independent events)."""

    def __init__(self, event_type: EventType, logger: Logger, workers: int = 8) -> None:
        super().__init__(event_type, logger)
        self._workers = workers

    def process(self) -> list[tuple]:
        if self._workers <= 1 or len(self.records) <= 1:
            return super().process()
        # Powertools has no public per-record hook to run in a pool; _process_record is the one
        # BatchProcessor.process itself calls for each record
        with ThreadPoolExecutor(max_workers=min(self._workers, len(self.records))) as pool:
            return list(pool.map(self._process_record, self.records))


class EarlierRecordFailed(RuntimeError):
    """Not attempted: a record before it in the batch failed."""


class InOrderBatchProcessor(RecordBatchProcessor):
    """Processes a stream batch in order and stops at the first failure, reporting it and every
    later record as failed without running them. Lambda retries a shard from the lowest failed
    sequence number, so the later records come again anyway, and applying them first would
    reorder a row's changes (its delete before its insert) or a profile's audit chain.

    Powertools' BatchProcessor already runs records one by one in batch order; this only makes
    the handler refuse every record after a failure (not logged: it is not that record's fault).
    """

    def __call__(
        self, records: list[dict], handler: Callable, lambda_context: LambdaContext | None = None
    ) -> InOrderBatchProcessor:
        super().__call__(records, handler, lambda_context)
        in_context = self.handler

        @functools.wraps(in_context)
        def unless_an_earlier_record_failed(record: Any, **kwargs: Any) -> Any:
            if self.fail_messages:
                raise EarlierRecordFailed("an earlier record of the batch failed")
            return in_context(record=record, **kwargs)

        self.handler = unless_an_earlier_record_failed
        return self
