"""AlarmForwarderFunction end to end, in process: alarm notifications published to an SNS topic
that delivers to an SQS queue with a redrive policy (moto), polled in batches like Lambda's event
source mapping and handed to the real handler, which claims sends from the budget in DynamoDB
(moto) and posts through the real robot adapter to a local HTTP server standing in for the WeCom
robot (never the internet).

Time is simulated for the send budget: a "pass" drains the queue at one instant; failed records
stay in flight until the next pass, which comes a visibility timeout later.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import ModuleType
from typing import Any

import boto3
import pytest
from scrm_sync.adapters.send_counts import DynamoSendCounts
from scrm_sync.adapters.wecom_robot import WeComRobot
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.services.alarms import AlarmForwarder
from scrm_sync.services.send_budget import SendBudget

from tests.alarm_factories import LambdaContext, alarm_message, create_checkpoints_table, load_handler, sample
from tests.fake_robot import INVALID_KEY, ROBOT_KEY, UNAVAILABLE, FakeRobot, running_fake_robot

TABLE = "scrm-test-CheckpointsTable"
MAX_RECEIVE_COUNT = 3
VISIBILITY_TIMEOUT = timedelta(seconds=120)
T0 = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class AlarmStack:
    robot: FakeRobot
    clock: Clock
    load_handler: Callable[[], ModuleType]
    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    in_flight: list[str] = field(default_factory=list)  # receipt handles of failed records
    posts_at: list[tuple[datetime, str]] = field(default_factory=list)  # (simulated time, markdown)
    receive_counts: list[int] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def handler(self) -> ModuleType:
        return self.load_handler()  # imported inside the test, so its logs reach capsys

    def publish(self, message: str, subject: str = "ALARM") -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=message, Subject=subject)

    def drain(self, batch_size: int) -> None:
        """One pass of the event source mapping: batches until nothing is visible."""
        while True:
            messages: list[dict[str, Any]] = []
            while len(messages) < batch_size:
                got = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, batch_size - len(messages)),
                    AttributeNames=["All"],
                ).get("Messages", [])
                if not got:
                    break
                messages += got
            if not messages:
                return
            self.invoke(messages)

    def invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self.lambda_record(m) for m in messages]}
        self.receive_counts += [int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages]
        delivered_before = len(self.robot.delivered)
        response = self.handler.lambda_handler(event, LambdaContext())
        self.responses.append(response)
        self.posts_at += [(self.clock.now, text) for text in self.robot.delivered[delivered_before:]]
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                self.in_flight.append(message["ReceiptHandle"])
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def lambda_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "us-east-1",
        }

    def visibility_timeout_passes(self) -> None:
        self.clock.now += VISIBILITY_TIMEOUT
        for handle in self.in_flight:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        self.in_flight.clear()

    def messages_left(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while got := self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages"):
            found += got
        return found


@pytest.fixture
def stack(in_process_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlarmStack]:
    with running_fake_robot() as robot:
        dynamodb, sqs, sns = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sns")
        create_checkpoints_table(dynamodb, TABLE)
        dlq_url = sqs.create_queue(QueueName="alarms-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_url = sqs.create_queue(
            QueueName="alarms",
            Attributes={
                "VisibilityTimeout": "300",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        topic_arn = sns.create_topic(Name="alarms")["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)  # raw delivery off
        clock = Clock()
        credentials = load_credentials({"wecom_robot": {"webhook_url": robot.url}})
        forwarder = AlarmForwarder(
            lambda: credentials,
            lambda url: WeComRobot(url, first_backoff=0.01),
            SendBudget(DynamoSendCounts(dynamodb, TABLE)),
            clock=clock,
        )
        yield AlarmStack(
            robot,
            clock,
            lambda: load_handler(monkeypatch, forwarder),
            sns,
            sqs,
            topic_arn,
            queue_url,
            queue_arn,
            dlq_url,
        )


def posts_per_minute(stack: AlarmStack) -> Counter[str]:
    return Counter(f"{at:%Y-%m-%dT%H:%M}" for at, _ in stack.posts_at)


@pytest.mark.parametrize("batch_size", [10, 50])
def test_a_burst_of_fifty_alarms_becomes_at_most_twenty_posts_a_minute_with_nothing_left_out(
    stack: AlarmStack, batch_size: int
):
    names = [f"scrm-sync-dev-Burst{i:02d}" for i in range(50)]
    for name in names:
        stack.publish(alarm_message(name))
    stack.drain(batch_size)
    assert len(stack.posts_at) <= 20
    passes = 1
    while stack.in_flight:  # deferred records come back a visibility timeout later
        stack.visibility_timeout_passes()
        stack.drain(batch_size)
        passes += 1
    assert passes <= 2
    assert max(posts_per_minute(stack).values()) <= 20
    posted = "\n".join(text for _, text in stack.posts_at)
    assert [n for n in names if n not in posted] == []  # every alarm named in some post
    assert any("条告警状态变化" in text for _, text in stack.posts_at)  # the burst was grouped
    assert stack.messages_left(stack.queue_url) == 0 and stack.dead_letters() == []


def test_the_sample_event_posts_its_markdown_to_the_robot(stack: AlarmStack):
    response = stack.handler.lambda_handler(sample("sync_success_rate_alarm.json"), LambdaContext())
    assert response == {"batchItemFailures": []}
    (text,) = stack.robot.delivered
    assert "scrm-sync-dev-SyncSuccessRateAlarm-1Q2W3E4R5T6Y" in text
    assert "2026-11-25 10:00:30 (Asia/Shanghai)" in text
    assert "IF(ok + bad > 0, 100 * ok / (ok + bad), 100)" in text and "< 99.9" in text


def test_a_failing_robot_gets_retries_then_the_records_move_to_the_dlq(stack: AlarmStack):
    stack.robot.default = UNAVAILABLE
    for i in range(3):
        stack.publish(alarm_message(f"scrm-sync-dev-Down{i}"))
    for _ in range(MAX_RECEIVE_COUNT + 1):  # the last receive moves them to the DLQ
        stack.drain(10)
        stack.visibility_timeout_passes()
    assert stack.receive_counts == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(r["batchItemFailures"] for r in stack.responses)
    assert len(stack.robot.attempts) == MAX_RECEIVE_COUNT * 3  # 3 attempts with backoff per delivery
    assert stack.robot.delivered == []
    dead = stack.dead_letters()
    assert sorted(json.loads(json.loads(m["Body"])["Message"])["AlarmName"] for m in dead) == [
        f"scrm-sync-dev-Down{i}" for i in range(3)
    ]
    assert stack.messages_left(stack.queue_url) == 0


def test_a_robot_that_recovers_before_the_dlq_delivers_everything(stack: AlarmStack):
    stack.robot.script = [UNAVAILABLE] * 3  # the first delivery's attempts fail
    stack.publish(alarm_message("scrm-sync-dev-Flaky"))
    stack.drain(10)
    assert stack.in_flight
    stack.visibility_timeout_passes()
    stack.drain(10)
    assert len(stack.robot.delivered) == 1 and "scrm-sync-dev-Flaky" in stack.robot.delivered[0]
    assert stack.messages_left(stack.queue_url) == 0 and stack.dead_letters() == []


def test_an_invalid_robot_key_is_not_retried_in_the_call_and_never_logged(
    stack: AlarmStack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
):
    stack.robot.default = INVALID_KEY
    stack.publish(alarm_message("scrm-sync-dev-BadKey"))
    for _ in range(MAX_RECEIVE_COUNT + 1):
        stack.drain(10)
        stack.visibility_timeout_passes()
    assert len(stack.robot.attempts) == MAX_RECEIVE_COUNT  # one attempt per delivery
    assert len(stack.dead_letters()) == 1
    logged = capsys.readouterr().out + caplog.text
    assert "93000" in logged and ROBOT_KEY not in logged and stack.robot.url not in logged
