"""The SQS event source, as Lambda's: receive batches (gathering up to BatchSize for the template's
MaximumBatchingWindowInSeconds), invoke, delete successes and leave failures alone: a failed message
comes back when the queue's VisibilityTimeout lapses, or when the handler's own
ChangeMessageVisibility (a retry with backoff) says. Moving a message to the dead-letter queue
after maxReceiveCount receives is done by moto's ReceiveMessage itself, exactly as SQS does.

Earlier this stand-in made failures visible again after 1 s: with maxReceiveCount receives that
sent to the dead-letter queue in seconds what SQS keeps retrying for many minutes (alarms waiting
for the robot's send budget were lost that way), and it overrode handlers' backoff."""

from __future__ import annotations

import logging
import time
from typing import Any

from .aws import Clients
from .event_records import sqs_record
from .pollers import Invoke, Poller, failed_identifiers
from .template import SqsSource

log = logging.getLogger(__name__)

LONG_POLL = 1  # seconds; bounds how long stop() waits


def _chunks(items: list[Any], size: int = 10) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


DEFAULT_CONCURRENCY = 2  # batches of one queue in flight when ScalingConfig sets no maximum


class SqsPoller(Poller):
    def __init__(
        self,
        source: SqsSource,
        invoke: Invoke,
        clients: Clients,
        max_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        concurrency = min(source.maximum_concurrency or DEFAULT_CONCURRENCY, max_concurrency)
        super().__init__(f"{source.function_id}.{source.event_name}", source.function_id, invoke, concurrency)
        self.source = source
        self.sqs = clients("sqs")
        self.queue_url = ""

    def setup(self) -> None:
        self.queue_url = self.sqs.get_queue_url(QueueName=self.source.queue_name)["QueueUrl"]

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, count),
            WaitTimeSeconds=wait,  # the queue's VisibilityTimeout applies, as for Lambda's pollers
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def receive_batch(self) -> list[dict[str, Any]]:
        batch = self._receive(self.source.batch_size, LONG_POLL)
        deadline = time.monotonic() + self.source.batching_window
        while batch and len(batch) < self.source.batch_size and time.monotonic() < deadline:
            if self.stop_event.is_set():
                break
            more = self._receive(self.source.batch_size - len(batch), 0)
            if more:
                batch.extend(more)
            else:
                self.stop_event.wait(0.05)
        return batch

    def poll_once(self) -> bool:
        messages = self.receive_batch()
        if not messages:
            return False
        records = [sqs_record(m, self.source.queue_arn) for m in messages]
        ids = [r["messageId"] for r in records]
        try:
            result = self.call({"Records": records})
        except Exception:
            log.exception("%s: batch of %d failed; all messages will be retried", self.name, len(ids))
            failed = ids
        else:
            reported = failed_identifiers(result, ids) if self.source.report_failures else []
            if reported is None:
                log.error("%s: invalid batchItemFailures %r; retrying the whole batch", self.name, result)
            failed = ids if reported is None else reported
        by_id = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        done = [i for i in ids if i not in failed]
        for chunk in _chunks(done):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": by_id[i]} for n, i in enumerate(chunk)],
            )
        if failed:
            log.info(
                "%s: %d of %d messages failed; they come back after their visibility timeout",
                self.name,
                len(failed),
                len(ids),
            )
        return True

    def backlog(self) -> int:
        if not self.queue_url:
            return 0
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values()) + self.active_batches
