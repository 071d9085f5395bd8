"""The SQS event source: batches, partial failures, redelivery, dead-letter queue."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import gate_closed, recorded, wait_for


def queue_url(stack: LocalStack, logical_id: str) -> str:
    assert stack.clients is not None
    return str(
        stack.clients("sqs").get_queue_url(QueueName=f"{stack.settings.stack_name}-{logical_id}")["QueueUrl"]
    )


def dlq_bodies(stack: LocalStack) -> list[str]:
    assert stack.clients is not None
    sqs = stack.clients("sqs")
    response = sqs.receive_message(
        QueueUrl=queue_url(stack, "WorkDeadLetterQueue"), MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [m["Body"] for m in response.get("Messages") or []]


def delivered(stack: LocalStack, tag: str, function: str = "SqsWorkerFunction") -> list[list[dict[str, Any]]]:
    return [[r for r in batch if tag in r["body"]] for batch in recorded(stack, function)]


def test_partial_failures_are_retried_then_dead_lettered(stack: LocalStack) -> None:
    assert stack.clients is not None
    sqs = stack.clients("sqs")
    tag = uuid.uuid4().hex[:8]
    bodies = [f"ok-{tag}-{i}" for i in range(5)] + [f"fail-{tag}-a", f"fail-{tag}-b"]
    url = queue_url(stack, "RetryQueue")
    for body in bodies:
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"tag": {"DataType": "String", "StringValue": tag}},
        )
    failing = {b for b in bodies if b.startswith("fail")}
    # maxReceiveCount is 2: each failing message is received twice, then moved to the DLQ.
    found: list[str] = []

    def all_dead_lettered() -> bool:
        found.extend(b for b in dlq_bodies(stack) if tag in b)
        return set(found) == failing

    wait_for(all_dead_lettered, timeout=60)  # VisibilityTimeout 2 s between receives
    batches = [b for b in delivered(stack, tag, "SqsRetryFunction") if b]
    assert all(len(batch) <= 3 for batch in recorded(stack, "SqsRetryFunction"))  # BatchSize
    received = [r["body"] for batch in batches for r in batch]
    for body in bodies:
        expected = 2 if body in failing else 1  # successes were deleted, failures came back once
        assert received.count(body) == expected, (body, received)
    record = batches[0][0]
    assert record["eventSource"] == "aws:sqs"
    assert (
        record["eventSourceARN"]
        == f"arn:aws:sqs:us-east-1:123456789012:{stack.settings.stack_name}-RetryQueue"
    )
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["tag"]["stringValue"] == tag
    assert record["md5OfBody"] and record["messageId"] and record["receiptHandle"]
    retries = [r for batch in batches for r in batch if r["body"] in failing]
    assert sorted(r["attributes"]["ApproximateReceiveCount"] for r in retries) == ["1", "1", "2", "2"]
    wait_for(lambda: stack.backlog() == 0)


def test_an_exception_fails_the_whole_batch(stack: LocalStack) -> None:
    assert stack.clients is not None
    sqs = stack.clients("sqs")
    tag = uuid.uuid4().hex[:8]
    url = queue_url(stack, "RetryQueue")
    sqs.send_message(
        QueueUrl=url, MessageBody="raise", MessageAttributes={"t": {"DataType": "String", "StringValue": tag}}
    )

    def raised_batches() -> list[list[dict[str, Any]]]:
        return [
            b
            for b in recorded(stack, "SqsRetryFunction")
            if any(r["messageAttributes"].get("t", {}).get("stringValue") == tag for r in b)
        ]

    wait_for(lambda: len(raised_batches()) >= 2, timeout=60)
    wait_for(lambda: "raise" in dlq_bodies(stack), timeout=60)
    assert json.dumps(raised_batches()[0][0]["body"]) == '"raise"'


def test_batches_of_one_queue_run_concurrently_up_to_the_maximum(stack: LocalStack) -> None:
    """ScalingConfig.MaximumConcurrency 3: three batches are in flight at once, each in an
    execution environment of its own, and not a fourth."""
    assert stack.clients is not None
    sqs = stack.clients("sqs")
    tag = uuid.uuid4().hex[:8]
    url = queue_url(stack, "WorkQueue")

    def started() -> list[list[str]]:
        return [b for b in recorded(stack, "SqsWorkerFunction", "STARTED") if any(tag in m for m in b)]

    with gate_closed(stack, "SqsWorkerFunction"):
        for i in range(12):  # four batches of three
            sqs.send_message(QueueUrl=url, MessageBody=f"hold-{tag}-{i}")
        wait_for(lambda: len(started()) >= 3, timeout=20)
        time.sleep(1.0)  # a fourth poller, if there were one, would have started by now
        assert len(started()) == 3
    wait_for(lambda: sum(len(b) for b in delivered(stack, tag)) == 12, timeout=30)
