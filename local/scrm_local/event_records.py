"""The record shapes Lambda's event source mappings hand to functions (SQS, Kinesis, DynamoDB
Streams), and the failure record they send to an on-failure destination."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from .settings import ACCOUNT_ID, REGION

INVOKE_IDENTITY_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/scrm-local-lambda-role"


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _iso(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message from ReceiveMessage (AttributeNames=All, MessageAttributeNames=All) as Lambda shows it."""
    attributes = dict(message.get("Attributes") or {})
    message_attributes: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        value: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": attr["DataType"],
        }
        if "StringValue" in attr:
            value["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            value["binaryValue"] = base64.b64encode(attr["BinaryValue"]).decode("ascii")
        message_attributes[name] = value
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody"),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION})
    return record


def kinesis_record(record: dict[str, Any], shard_id: str, stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (boto3 shape) as Lambda shows it."""
    data: bytes = record["Data"]
    kinesis: dict[str, Any] = {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": record["PartitionKey"],
        "sequenceNumber": record["SequenceNumber"],
        "data": base64.b64encode(data).decode("ascii"),
        "approximateArrivalTimestamp": round(_epoch(record["ApproximateArrivalTimestamp"]), 3),
    }
    return {
        "kinesis": kinesis,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": INVOKE_IDENTITY_ARN,
        "awsRegion": REGION,
        "eventSourceARN": stream_arn,
    }


def _attribute_json(value: Any) -> Any:
    """AttributeValues from a boto3 low-level client, with bytes back to base64 as in JSON."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _attribute_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attribute_json(v) for v in value]
    if isinstance(value, set):
        return [_attribute_json(v) for v in sorted(value)]
    return value


def dynamodb_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams GetRecords record (boto3 shape) as Lambda shows it."""
    ddb = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in ddb:
        ddb["ApproximateCreationDateTime"] = int(_epoch(ddb["ApproximateCreationDateTime"]))
    for key in ("Keys", "NewImage", "OldImage"):
        if key in ddb:
            ddb[key] = _attribute_json(ddb[key])
    out = {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion") or REGION,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:
        out["userIdentity"] = record["userIdentity"]
    return out


def sequence_number(record: dict[str, Any]) -> str:
    """The sequence number of a Lambda-shaped Kinesis or DynamoDB record (the itemIdentifier)."""
    if "kinesis" in record:
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])


def arrival(record: dict[str, Any]) -> str:
    if "kinesis" in record:
        return _iso(record["kinesis"]["approximateArrivalTimestamp"])
    return _iso(record["dynamodb"].get("ApproximateCreationDateTime", 0))


def failure_record(
    *,
    kind: str,
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    batch: list[dict[str, Any]],
    condition: str,
    invoke_count: int,
    function_error: str = "Unhandled",
) -> dict[str, Any]:
    """What Lambda sends to an OnFailure destination when it gives up on a stream batch."""
    info_key = "KinesisBatchInfo" if kind == "kinesis" else "DDBStreamBatchInfo"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": function_error},
        "version": "1.0",
        "timestamp": _iso(datetime.now(UTC)),
        info_key: {
            "shardId": shard_id,
            "startSequenceNumber": sequence_number(batch[0]),
            "endSequenceNumber": sequence_number(batch[-1]),
            "approximateArrivalOfFirstRecord": arrival(batch[0]),
            "approximateArrivalOfLastRecord": arrival(batch[-1]),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }
