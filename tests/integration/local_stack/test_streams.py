"""The Kinesis and DynamoDB Streams event sources."""

from __future__ import annotations

import base64
import json
import uuid

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import recorded, wait_for


def put(stack: LocalStack, logical_id: str, values: list[str]) -> list[str]:
    assert stack.clients is not None
    response = stack.clients("kinesis").put_records(
        StreamName=f"{stack.settings.stack_name}-{logical_id}",
        Records=[{"Data": v.encode(), "PartitionKey": "pk"} for v in values],
    )
    return [r["SequenceNumber"] for r in response["Records"]]


def data(record: dict) -> str:
    return base64.b64decode(record["kinesis"]["data"]).decode()


def test_kinesis_in_order_and_partial_failure_retried_from_the_failed_record(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex[:6]
    values = [f"{tag}-0", f"{tag}-1", f"flaky-{tag}", f"{tag}-3", f"{tag}-4"]
    sequence_numbers = put(stack, "ChangesStream", values)

    def batches() -> list[list[dict]]:
        calls = recorded(stack, "KinesisPartialFunction")
        return [[r for r in b if tag in data(r)] for b in calls if any(tag in data(r) for r in b)]

    def delivered_after_failure() -> bool:
        seen = [data(r) for b in batches() for r in b]
        return seen.count(f"flaky-{tag}") == 2 and f"{tag}-4" in seen[seen.index(f"flaky-{tag}") + 1 :]

    wait_for(delivered_after_failure)
    seen = batches()
    failing = next(i for i, b in enumerate(seen) if f"flaky-{tag}" in [data(r) for r in b])
    retried = [data(r) for b in seen[failing + 1 :] for r in b]
    assert retried[0] == f"flaky-{tag}"  # retried from the failed sequence number ...
    assert f"{tag}-0" not in retried and f"{tag}-1" not in retried  # ... earlier ones were checkpointed
    flat = [r for b in seen for r in b]
    first_time = [data(r) for r in flat[: flat.index(next(r for r in flat if data(r) == f"flaky-{tag}")) + 1]]
    assert first_time == values[:3]  # in order
    record = flat[0]
    stream_arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{stack.settings.stack_name}-ChangesStream"
    assert record["eventSourceARN"] == stream_arn
    assert record["eventName"] == "aws:kinesis:record" and record["eventSource"] == "aws:kinesis"
    assert record["eventID"] == f"shardId-000000000000:{sequence_numbers[0]}"
    assert record["kinesis"]["sequenceNumber"] == sequence_numbers[0]
    assert record["kinesis"]["partitionKey"] == "pk" and record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)


def test_kinesis_bisect_and_on_failure_destination(stack: LocalStack) -> None:
    assert stack.clients is not None
    tag = uuid.uuid4().hex[:6]
    values = [f"{tag}-a", f"{tag}-b", "poison", f"{tag}-c"]
    sequence_numbers = put(stack, "PoisonStream", values)
    sqs = stack.clients("sqs")
    url = sqs.get_queue_url(QueueName=f"{stack.settings.stack_name}-StreamFailureQueue")["QueueUrl"]
    failures: list[dict] = []

    def failure_arrived() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []:
            failures.append(json.loads(message["Body"]))
        return bool(failures)

    wait_for(failure_arrived)
    wait_for(lambda: f"{tag}-c" in recorded(stack, "KinesisBisectFunction", "SUCCEEDED"))
    succeeded = recorded(stack, "KinesisBisectFunction", "SUCCEEDED")
    assert sorted(v for v in succeeded if tag in v) == [f"{tag}-a", f"{tag}-b", f"{tag}-c"]
    # The lone poison record: first try + MaximumRetryAttempts (1) retry, then given up.
    assert recorded(stack, "KinesisBisectFunction").count(["poison"]) == 2
    (failure,) = failures
    info = failure["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sequence_numbers[2]
    assert info["shardId"] == "shardId-000000000000"
    assert info["streamArn"].endswith(f":stream/{stack.settings.stack_name}-PoisonStream")
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["requestContext"]["functionArn"].endswith(
        f":function:{stack.settings.stack_name}-KinesisBisectFunction"
    )


def test_dynamodb_stream_delivery(stack: LocalStack) -> None:
    assert stack.clients is not None
    ddb = stack.clients("dynamodb")
    table = f"{stack.settings.stack_name}-ItemsTable"
    key = {"pk": {"S": uuid.uuid4().hex}, "sk": {"S": "v"}}
    ddb.put_item(TableName=table, Item={**key, "owner": {"S": "ann"}, "n": {"N": "1"}})
    ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}}
    )
    ddb.delete_item(TableName=table, Key=key)

    def mine() -> list[dict]:
        return [r for r in recorded(stack, "DdbStreamFunction", "RECORDS") if r["dynamodb"]["Keys"] == key]

    wait_for(lambda: len(mine()) == 3)
    insert, modify, remove = mine()
    assert [r["eventName"] for r in (insert, modify, remove)] == ["INSERT", "MODIFY", "REMOVE"]
    assert insert["eventSource"] == "aws:dynamodb" and insert["awsRegion"] == "us-east-1"
    stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert insert["eventSourceARN"] == stream_arn
    assert insert["dynamodb"]["NewImage"]["n"] == {"N": "1"} and "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"} and modify["dynamodb"]["NewImage"]["n"] == {
        "N": "2"
    }
    assert remove["dynamodb"]["OldImage"]["owner"] == {"S": "ann"}
    assert modify["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], int)
    assert int(insert["dynamodb"]["SequenceNumber"]) < int(modify["dynamodb"]["SequenceNumber"])
