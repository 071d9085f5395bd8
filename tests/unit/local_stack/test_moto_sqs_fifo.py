"""The local stack's moto keeps FIFO queues as SQS does: a message group's next message is never
handed out while the previous one is in flight or being retried, however many receivers poll at
once, and a deduplication id is honoured for five minutes even after its message was deleted."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue, SQSBackend
from scrm_local import moto_server


@pytest.fixture
def sqs() -> Iterator[Any]:
    receive, add = SQSBackend.receive_message, Queue.add_message
    switch = sys.getswitchinterval()
    moto_server.install_sqs_fifo_fidelity()
    sys.setswitchinterval(1e-6)  # interleave the receiving threads as often as possible
    try:
        with mock_aws():
            yield boto3.client("sqs", region_name="us-east-1")
    finally:
        sys.setswitchinterval(switch)
        SQSBackend.receive_message, Queue.add_message = receive, add  # type: ignore[method-assign]


def fifo_queue(sqs: Any, name: str) -> str:
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    return str(sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"])


def receive_at_once(sqs: Any, url: str, receivers: int) -> list[str]:
    """What `receivers` threads, released together, each receive (one message at most)."""
    received: list[str] = []
    start = threading.Barrier(receivers)

    def receive() -> None:
        start.wait()
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)
        received.extend(m["Body"] for m in messages.get("Messages") or [])

    threads = [threading.Thread(target=receive) for _ in range(receivers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return received


def test_a_retried_message_holds_back_the_rest_of_its_group_under_concurrent_receivers(sqs: Any) -> None:
    for attempt in range(150):  # without the fix, the race showed up a few times in 150
        url = fifo_queue(sqs, f"ordered{attempt}")
        for body in ("first", "second"):
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="customer-1")
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)  # "first" failed: visible again, still pending
        assert receive_at_once(sqs, url, receivers=4) == ["first"]


def test_when_a_groups_first_two_messages_both_failed_the_first_comes_back_first(sqs: Any) -> None:
    url = fifo_queue(sqs, "both-failed")
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="customer-1")
    # one batch held both; the first failed and the second was skipped: both visible again
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=0)["Messages"]) == 2
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in again] == ["first"]


def test_a_long_poll_on_a_fifo_queue_still_waits_for_a_message(sqs: Any) -> None:
    url = fifo_queue(sqs, "waiting")
    late = {"QueueUrl": url, "MessageBody": "late", "MessageGroupId": "g"}
    timer = threading.Timer(0.3, lambda: sqs.send_message(**late))
    timer.start()
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages") or []
    timer.join()
    assert [m["Body"] for m in messages] == ["late"]


def test_a_deduplication_id_is_honoured_after_its_message_was_deleted(sqs: Any) -> None:
    url = fifo_queue(sqs, "dedup")
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="change-1")
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="change-1")
    sqs.send_message(QueueUrl=url, MessageBody="y", MessageGroupId="g", MessageDeduplicationId="change-2")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["y"]
