"""An outbound batch on a FIFO queue: a failed record is deferred with backoff, the later records
of its group are released at once (left invisible, they would block the group for the queue's
whole VisibilityTimeout, whatever the backoff says), other groups are untouched."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from scrm_sync.domain.retry import Backoff
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.outbound import deliver_in_order, retry_later

from tests.lambda_context import LambdaContext


def fifo_record(message_id: str, group: str, body: str = "{}") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"MessageGroupId": group, "ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:outbound.fifo",
    }


def test_a_failure_defers_its_record_and_releases_the_rest_of_its_group():
    deferred: list[tuple[str, int]] = []
    handled: list[str] = []
    metrics, logger = Metrics(namespace="Test", service="test"), pii_safe_logger()

    def defer(receipt: str, delay: int) -> None:
        deferred.append((receipt, delay))

    def handler(record: SQSRecord) -> None:
        handled.append(record.message_id)
        if record.message_id == "a1":
            retry_later(metrics, logger, defer, "webhooks", record, "HTTP 500", Backoff(base=8))
            raise RuntimeError("receiver answered 500")

    event = {
        "Records": [
            fifo_record("a1", "A"),
            fifo_record("b1", "B"),
            fifo_record("a2", "A"),
            fifo_record("a3", "A"),
        ]
    }
    response = deliver_in_order(metrics, "webhooks", handler, event, LambdaContext(), defer)

    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {"a1", "a2", "a3"}
    assert handled == ["a1", "b1"]  # a2 and a3 wait behind a1, in order
    backoff = dict(deferred)
    assert 4 <= backoff.pop("receipt-a1") <= 8  # the failed record waits its backoff
    assert backoff == {"receipt-a2": 0, "receipt-a3": 0}  # the held-back ones do not wait 180 s
