"""Powertools BatchProcessors: concurrent for queues of canonical events, in order for streams.

Lambda bills wall time and the sync core mostly waits on DynamoDB, so overlapping records cuts
Lambda-seconds. It is safe because the sync core's result does not depend on the order or
concurrency of events (conditional writes, tested by the property tests). CDC streams are the
exception: a row's delete must come after its insert, so they are processed in order."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from pydantic import ValidationError

from .logging import mask_phones


class ConcurrentBatchProcessor(BatchProcessor):
    def __init__(self, event_type: EventType, workers: int = 8) -> None:
        # a fully failed batch is a partial response too, never an exception: the exception's
        # text would quote every record's error (and their inputs) into the runtime's log
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self._workers = workers

    def process(self) -> list[tuple]:
        if self._workers <= 1 or len(self.records) <= 1:
            return super().process()
        with ThreadPoolExecutor(max_workers=min(self._workers, len(self.records))) as pool:
            return list(pool.map(self._process_record, self.records))


class EarlierRecordFailed(RuntimeError):
    """Not attempted: a record before it in the batch failed."""


class InOrderBatchProcessor(BatchProcessor):
    """Processes a stream batch in order and stops at the first failure, reporting it and every
    later record as failed without running them. Lambda retries a Kinesis shard from the lowest
    failed sequence number, so the later records come again anyway, and applying them first
    would reorder a row's changes (its delete before its insert)."""

    def process(self) -> list[tuple]:
        results = []
        for record in self.records:
            if self.fail_messages:
                results.append(self._not_attempted(record))
            else:
                results.append(self._process_record(record))
        return results

    def _not_attempted(self, record: dict) -> tuple:
        data = self._to_batch_type(record=record, event_type=self.event_type, model=self.model)
        try:
            raise EarlierRecordFailed("an earlier record of the batch failed")
        except EarlierRecordFailed:
            return self.failure_handler(record=data, exception=sys.exc_info())


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


def log_failures(processor: BatchProcessor, logger: Logger) -> None:
    """One warning per failed record of the batch just processed."""
    for info in processor.exceptions:
        exception = info[1] if info else None
        logger.warning("record failed; it will be retried", extra=describe_failure(exception))
