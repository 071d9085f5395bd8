"""The Kinesis and DynamoDB Streams event sources, with Lambda's stream semantics:

- StartingPosition, BatchSize, MaximumBatchingWindowInSeconds (bounded to 1 s locally);
- records of a shard in order; a batch that fails is retried, never skipped silently;
- ReportBatchItemFailures: checkpoint before the lowest failed sequence number, retry from it;
- BisectBatchOnFunctionError: a failing batch is split in two, each half retried on its own
  (splitting does not use up retry attempts; a failing one-record batch does);
- MaximumRetryAttempts (-1 = until it succeeds), then the batch is skipped and, when declared,
  DestinationConfig.OnFailure (SQS or SNS) receives Lambda's failure record.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .aws import Clients
from .event_records import dynamodb_record, failure_record, kinesis_record, sequence_number
from .pollers import Invoke, Poller, failed_identifiers
from .template import StreamSource

log = logging.getLogger(__name__)

PROBE_LIMIT = 1000


class ShardReader(ABC):
    """Reads one stream's shards and returns Lambda-shaped records."""

    arn: str

    @abstractmethod
    def shards(self) -> list[str]: ...

    @abstractmethod
    def iterator(self, shard_id: str, position: str, timestamp: float | None) -> str: ...

    @abstractmethod
    def read(self, shard_id: str, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]: ...


class KinesisReader(ShardReader):
    def __init__(self, clients: Clients, stream_arn: str) -> None:
        self.client = clients("kinesis")
        self.arn = stream_arn
        self.stream_name = stream_arn.split(":stream/", 1)[-1]

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self.client.list_shards(StreamName=self.stream_name)["Shards"]]

    def iterator(self, shard_id: str, position: str, timestamp: float | None) -> str:
        args: dict[str, Any] = {
            "StreamName": self.stream_name,
            "ShardId": shard_id,
            "ShardIteratorType": position,
        }
        if position == "AT_TIMESTAMP":
            args["Timestamp"] = datetime.fromtimestamp(timestamp or 0, UTC)
        return str(self.client.get_shard_iterator(**args)["ShardIterator"])

    def read(self, shard_id: str, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        response = self.client.get_records(ShardIterator=iterator, Limit=limit)
        records = [kinesis_record(r, shard_id, self.arn) for r in response.get("Records") or []]
        return records, response.get("NextShardIterator")


class DynamoDBReader(ShardReader):
    def __init__(self, clients: Clients, stream_arn: str) -> None:
        self.client = clients("dynamodbstreams")
        self.table_name = stream_arn.split(":table/", 1)[-1].split("/", 1)[0]
        table = clients("dynamodb").describe_table(TableName=self.table_name)["Table"]
        if "LatestStreamArn" not in table:
            raise RuntimeError(f"table {self.table_name} has no stream (StreamSpecification)")
        self.arn = table["LatestStreamArn"]

    def shards(self) -> list[str]:
        description = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]
        return [s["ShardId"] for s in description["Shards"]]

    def iterator(self, shard_id: str, position: str, timestamp: float | None) -> str:
        return str(
            self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, ShardIteratorType=position)[
                "ShardIterator"
            ]
        )

    def read(self, shard_id: str, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        response = self.client.get_records(ShardIterator=iterator, Limit=limit)
        records = [dynamodb_record(r, self.arn) for r in response.get("Records") or []]
        return records, response.get("NextShardIterator")


@dataclass
class ShardState:
    shard_id: str
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    first_seen: float = 0.0
    attempts: int = 0  # failed invocations of the batch at the head of `pending`
    plan: list[int] = field(default_factory=list)  # sizes of the next batches after a bisect


class StreamPoller(Poller):
    def __init__(self, source: StreamSource, invoke: Invoke, clients: Clients, function_arn: str) -> None:
        super().__init__(f"{source.function_id}.{source.event_name}", source.function_id, invoke)
        self.source = source
        self.clients = clients
        self.function_arn = function_arn
        self.reader: ShardReader | None = None
        self.shards: list[ShardState] = []

    def setup(self) -> None:
        reader: ShardReader = (
            KinesisReader(self.clients, self.source.stream_arn)
            if self.source.kind == "kinesis"
            else DynamoDBReader(self.clients, self.source.stream_arn)
        )
        position = self.source.starting_position
        self.shards = [
            ShardState(shard, reader.iterator(shard, position, self.source.starting_timestamp))
            for shard in reader.shards()
        ]
        self.reader = reader

    # --- polling ------------------------------------------------------------------------------------
    def _fill(self, state: ShardState) -> None:
        assert self.reader is not None
        wanted = self.source.batch_size - len(state.pending)
        if wanted <= 0 or state.iterator is None:
            return
        records, state.iterator = self.reader.read(state.shard_id, state.iterator, wanted)
        if records and not state.pending:
            state.first_seen = time.monotonic()
        state.pending.extend(records)

    def _window_open(self, state: ShardState) -> bool:
        window = self.source.batching_window  # the template's, as Lambda's poller waits
        return (
            len(state.pending) < self.source.batch_size
            and not state.plan
            and state.attempts == 0
            and time.monotonic() - state.first_seen < window
        )

    def poll_once(self) -> bool:
        worked = False
        for state in self.shards:
            if self.stop_event.is_set():
                break
            self._fill(state)
            if state.pending and not self._window_open(state):
                self._process(state)
                worked = True
        return worked

    # --- one batch --------------------------------------------------------------------------------
    def _process(self, state: ShardState) -> None:
        size = state.plan[0] if state.plan else self.source.batch_size
        batch = state.pending[:size]
        identifiers = [sequence_number(r) for r in batch]
        try:
            result = self.call({"Records": batch})
        except Exception:
            log.exception("%s: batch %s..%s failed", self.name, identifiers[0], identifiers[-1])
            self._on_error(state, batch, "Unhandled")
            return
        failed = failed_identifiers(result, identifiers) if self.source.report_failures else []
        if failed is None:
            log.error("%s: invalid batchItemFailures %r; retrying the whole batch", self.name, result)
            self._on_error(state, batch, "Unhandled")
        elif not failed:
            self._advance(state, len(batch))
        else:
            # Checkpoint before the lowest failed sequence number; retry from there.
            done = identifiers.index(failed[0])
            log.info("%s: retrying from sequence number %s", self.name, failed[0])
            del state.pending[:done]
            if state.plan:
                state.plan[0] -= done
            self._count_failure(state, batch[done:], "Unhandled")

    def _advance(self, state: ShardState, count: int) -> None:
        del state.pending[:count]
        if state.plan:
            state.plan.pop(0)
        state.attempts = 0
        state.first_seen = 0.0  # records left over have waited long enough

    def _on_error(self, state: ShardState, batch: list[dict[str, Any]], error: str) -> None:
        if self.source.bisect and len(batch) > 1:
            half = (len(batch) + 1) // 2
            rest = state.plan[1:] if state.plan else []
            state.plan = [half, len(batch) - half, *rest]
            log.info("%s: bisecting a batch of %d", self.name, len(batch))
            return
        self._count_failure(state, batch, error)

    def _count_failure(self, state: ShardState, batch: list[dict[str, Any]], error: str) -> None:
        state.attempts += 1
        limit = self.source.max_retry_attempts
        if limit >= 0 and state.attempts > limit:
            self._discard(state, batch, error)
            return
        # Back off a little so a record that always fails does not spin the CPU.
        self.stop_event.wait(min(0.05 * 2 ** min(state.attempts, 6), 2.0))

    def _discard(self, state: ShardState, batch: list[dict[str, Any]], error: str) -> None:
        assert self.reader is not None
        log.error(
            "%s: giving up on %d records (%s..%s) after %d attempts",
            self.name,
            len(batch),
            sequence_number(batch[0]),
            sequence_number(batch[-1]),
            state.attempts,
        )
        destination = self.source.on_failure_arn
        if destination:
            record = failure_record(
                kind=self.source.kind,
                function_arn=self.function_arn,
                stream_arn=self.reader.arn,
                shard_id=state.shard_id,
                batch=batch,
                condition="RetryAttemptsExhausted",
                invoke_count=state.attempts,
                function_error=error,
            )
            self._send(destination, record)
        self._advance(state, len(batch))

    def _send(self, destination: str, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        if destination.startswith("arn:aws:sqs:"):
            sqs = self.clients("sqs")
            url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body)
        elif destination.startswith("arn:aws:sns:"):
            self.clients("sns").publish(TopicArn=destination, Message=body)
        else:
            log.error(
                "%s: on-failure destination %s is not SQS or SNS; record dropped", self.name, destination
            )

    # --- health -----------------------------------------------------------------------------------
    def backlog(self) -> int:
        if self.reader is None:
            return 0
        total = self.active_batches
        for state in list(self.shards):
            total += len(state.pending)
            if state.iterator:
                unread, _ = self.reader.read(state.shard_id, state.iterator, PROBE_LIMIT)
                total += len(unread)
        return total
