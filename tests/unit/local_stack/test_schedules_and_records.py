"""Schedule events and the Lambda record shapes for SQS, Kinesis and DynamoDB Streams."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from scrm_local.event_records import dynamodb_record, failure_record, kinesis_record, sqs_record
from scrm_local.pollers import failed_identifiers
from scrm_local.schedules import rate_seconds, scheduled_event
from scrm_local.template import ScheduleSpec


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_is_on_demand_only() -> None:
    assert rate_seconds("cron(0 2 * * ? *)") is None


def test_scheduled_event_shape() -> None:
    spec = ScheduleSpec("Fn", "Nightly", "Schedule", "cron(0 2 * * ? *)", "arn:aws:events:us-east-1:1:rule/r")
    event = scheduled_event(spec, now=datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    assert event.pop("id")
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T02:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:1:rule/r"],
        "detail": {},
    }


def test_scheduled_event_uses_the_template_input() -> None:
    spec = ScheduleSpec("Fn", "Hourly", "ScheduleV2", "rate(1 hour)", "arn", input='{"job": "x"}')
    assert scheduled_event(spec) == {"job": "x"}


def test_sqs_record_shape() -> None:
    record = sqs_record(
        {
            "MessageId": "m1",
            "ReceiptHandle": "rh",
            "MD5OfBody": "md5",
            "Body": "hello",
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1",
                "SenderId": "AIDA",
                "ApproximateFirstReceiveTimestamp": "2",
            },
            "MessageAttributes": {
                "s": {"StringValue": "v", "DataType": "String"},
                "b": {"BinaryValue": b"\x00", "DataType": "Binary"},
            },
        },
        "arn:aws:sqs:us-east-1:123456789012:q",
    )
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": "hello",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "messageAttributes": {
            "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {
                "binaryValue": "AA==",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": "md5",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def test_kinesis_record_shape() -> None:
    arrival = datetime(2026, 11, 24, tzinfo=UTC)
    record = kinesis_record(
        {
            "Data": b"hi",
            "PartitionKey": "pk",
            "SequenceNumber": "495",
            "ApproximateArrivalTimestamp": arrival,
        },
        "shardId-000000000000",
        "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    )
    assert record == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "pk",
            "sequenceNumber": "495",
            "data": base64.b64encode(b"hi").decode(),
            "approximateArrivalTimestamp": arrival.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": "shardId-000000000000:495",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/scrm-local-lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    }


def test_dynamodb_record_and_failure_record() -> None:
    record = dynamodb_record(
        {
            "eventID": "e1",
            "eventName": "INSERT",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": datetime(2026, 11, 24, tzinfo=UTC),
                "Keys": {"pk": {"S": "a"}, "bin": {"B": b"\x01"}},
                "NewImage": {"pk": {"S": "a"}},
                "SequenceNumber": "100",
                "SizeBytes": 10,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        },
        "arn:stream",
    )
    assert record["eventSourceARN"] == "arn:stream" and record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["Keys"]["bin"] == {"B": "AQ=="}
    assert record["dynamodb"]["ApproximateCreationDateTime"] == int(
        datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    )
    failure = failure_record(
        kind="dynamodb",
        function_arn="arn:fn",
        stream_arn="arn:stream",
        shard_id="shard-1",
        batch=[record],
        condition="RetryAttemptsExhausted",
        invoke_count=3,
    )
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("100", "100", 1)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "a"}]}, ["a", "c"]),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"id": "a"}]}, None),
        ("not an object", None),
    ],
)
def test_failed_identifiers(result: object, expected: list[str] | None) -> None:
    assert failed_identifiers(result, ["a", "b", "c"]) == expected
