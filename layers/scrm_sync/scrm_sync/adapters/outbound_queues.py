"""The change feed's destination queues (SQS FIFO) and the event bus (EventBridge)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..services.change_feed import OutboundMessage
from ..services.outbound_replay import RedriveCount
from .batching import batches_within

_SQS_BATCH = 10
_SQS_BATCH_BYTES = 250_000  # SendMessageBatch: 256 KiB for all entries together, attributes included
_EVENTS_BATCH = 10  # PutEvents: 10 entries (256 KB together)
_EVENTS_BATCH_BYTES = 250_000
EVENT_SOURCE = "scrm.sync"
EVENT_DETAIL_TYPE = "scrm.profile.changed"
TRANSFER_DETAIL_TYPE = "scrm.inventory.transfer"  # store transfer instructions (services/fulfilment.py)


def _size(message: OutboundMessage) -> int:
    return len(message.body.encode()) + sum(
        len(k) + len(v.encode()) + 16 for k, v in message.attributes.items()
    )


class SqsOutbox:
    def __init__(self, client: Any, queue_urls: Mapping[str, str]) -> None:
        self._sqs = client
        self._urls = dict(queue_urls)

    def send(self, destination: str, messages: Sequence[OutboundMessage]) -> list[int]:
        url = self._urls.get(destination)
        if not url:
            return []  # the destination is off in this deployment
        failed: list[int] = []
        for batch in batches_within([_size(m) for m in messages], _SQS_BATCH, _SQS_BATCH_BYTES):
            entries = []
            for index in batch:
                message = messages[index]
                entry: dict[str, Any] = {
                    "Id": str(index),
                    "MessageBody": message.body,
                    "MessageGroupId": message.group[:128],
                    "MessageDeduplicationId": message.deduplication_id[:128],
                }
                if message.attributes:
                    entry["MessageAttributes"] = {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in message.attributes.items()
                    }
                entries.append(entry)
            try:
                answer = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
            except (ClientError, BotoCoreError):
                failed.extend(batch)
                continue
            failed.extend(int(f["Id"]) for f in answer.get("Failed", []))
        return sorted(failed)

    def defer(self, destination: str, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again only after `seconds` (a retry with backoff)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._urls[destination], ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


class EventBusPublisher:
    """Events of one detail type (by default `scrm.profile.changed`, the change document as
    detail), source `scrm.sync`."""

    def __init__(self, client: Any, bus_name: str, detail_type: str = EVENT_DETAIL_TYPE) -> None:
        self._events = client
        self._bus = bus_name
        self._detail_type = detail_type

    def publish(self, documents: Sequence[str]) -> list[int]:
        """Put each document (compact JSON) as one event; the indexes that failed."""
        failed: list[int] = []
        for batch in batches_within(
            [len(d.encode()) + 200 for d in documents], _EVENTS_BATCH, _EVENTS_BATCH_BYTES
        ):
            entries = [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": self._detail_type,
                    "Detail": documents[index],
                    "EventBusName": self._bus,
                    "Resources": [],
                }
                for index in batch
            ]
            try:
                answer = self._events.put_events(Entries=entries)
            except (ClientError, BotoCoreError):
                failed.extend(batch)
                continue
            for index, result in zip(batch, answer.get("Entries", []), strict=False):
                if result.get("ErrorCode"):
                    failed.append(index)
        return sorted(failed)


class SqsDeadLetters:
    """The destination queues' dead-letter queues (found from each queue's RedrivePolicy)."""

    def __init__(self, client: Any, queue_urls: Mapping[str, str]) -> None:
        self._sqs = client
        self._urls = dict(queue_urls)

    def destinations(self) -> list[str]:
        return sorted(self._urls)

    def _dead_letter_url(self, destination: str) -> str:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._urls[destination], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        target = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        return str(self._sqs.get_queue_url(QueueName=target.rsplit(":", 1)[-1])["QueueUrl"])

    def redrive(
        self, destination: str, wanted: Callable[[Mapping[str, str]], bool], limit: int | None, dry_run: bool
    ) -> RedriveCount:
        """Move the dead letters `wanted` accepts (by their message attributes) back onto the
        destination's queue, with their group and body (so their delivery ids) unchanged."""
        dead_letters = self._dead_letter_url(destination)
        count = RedriveCount()
        held: list[str] = []  # receipt handles of letters left where they are (made visible again)
        try:
            while limit is None or count.moved < limit:
                answer = self._sqs.receive_message(
                    QueueUrl=dead_letters,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=60,
                    WaitTimeSeconds=0,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                letters = answer.get("Messages") or []
                if not letters:
                    break
                for letter in letters:
                    attributes = {
                        name: str(value.get("StringValue", ""))
                        for name, value in (letter.get("MessageAttributes") or {}).items()
                    }
                    if dry_run or not wanted(attributes) or (limit is not None and count.moved >= limit):
                        count.kept += 1
                        held.append(letter["ReceiptHandle"])
                        continue
                    self._requeue(destination, letter)
                    self._sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=letter["ReceiptHandle"])
                    count.moved += 1
        finally:
            for receipt in held:
                self._sqs.change_message_visibility(
                    QueueUrl=dead_letters, ReceiptHandle=receipt, VisibilityTimeout=0
                )
        return count

    def _requeue(self, destination: str, letter: Mapping[str, Any]) -> None:
        system = letter.get("Attributes") or {}
        entry: dict[str, Any] = {"QueueUrl": self._urls[destination], "MessageBody": letter["Body"]}
        if system.get("MessageGroupId"):
            entry["MessageGroupId"] = system["MessageGroupId"]
            # a fresh deduplication id: the original one may still be inside SQS's 5-minute window
            entry["MessageDeduplicationId"] = hashlib.sha256(
                f"{system.get('MessageDeduplicationId', '')}|replay|{letter['MessageId']}".encode()
            ).hexdigest()
        if letter.get("MessageAttributes"):
            entry["MessageAttributes"] = {
                name: {
                    "DataType": value.get("DataType", "String"),
                    "StringValue": value.get("StringValue", ""),
                }
                for name, value in letter["MessageAttributes"].items()
            }
        self._sqs.send_message(**entry)
