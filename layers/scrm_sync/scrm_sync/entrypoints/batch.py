"""Powertools BatchProcessor that processes a batch's records concurrently.

Lambda bills wall time and the sync core mostly waits on DynamoDB, so overlapping records cuts
Lambda-seconds. It is safe because the sync core's result does not depend on the order or
concurrency of events (conditional writes, tested by the property tests)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


class ConcurrentBatchProcessor(BatchProcessor):
    def __init__(self, event_type: EventType, workers: int = 8) -> None:
        super().__init__(event_type=event_type)
        self._workers = workers

    def process(self) -> list[tuple]:
        if self._workers <= 1 or len(self.records) <= 1:
            return super().process()
        with ThreadPoolExecutor(max_workers=min(self._workers, len(self.records))) as pool:
            return list(pool.map(self._process_record, self.records))
