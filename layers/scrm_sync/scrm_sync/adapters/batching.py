"""AWS batch APIs take a bounded number of entries of a bounded total size (SQS SendMessageBatch,
Kinesis PutRecords, EventBridge PutEvents): one way to cut a sequence into such batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def batches_within(sizes: Sequence[int], count: int, max_bytes: int) -> Iterator[list[int]]:
    """Consecutive indexes grouped into batches of at most `count` entries and `max_bytes`
    together (an entry larger than `max_bytes` goes alone: the caller refuses it if it must)."""
    batch: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if batch and (len(batch) == count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(index)
        total += size
    if batch:
        yield batch
