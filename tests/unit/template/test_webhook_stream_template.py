"""The webhook ingest stream as deployed: WebhookFunction may only PutRecord to it (and PUT the
rare quarantine objects), the Firehose delivery stream reads it into the landing bucket with a
least-privilege role, WebhookSyncFunction consumes it with partial failures, bisection, bounded
retries and an on-failure destination, and operations get alarms on the consumer and the landing."""

from __future__ import annotations

from typing import Any

from tests.unit.template.sam import TEMPLATE

RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def role_statements(deployed: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in deployed["Resources"][role]["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_webhook_writes_one_stream_and_only_the_rare_paths_of_the_bucket(deployed):
    statements = role_statements(deployed, "WebhookFunctionRole")
    granted = [a for s in statements for a in actions(s)]
    assert not [a for a in granted if a.startswith("sqs:")]  # events travel in the stream record
    (put,) = [s for s in statements if "kinesis:PutRecord" in actions(s)]
    assert actions(put) == ["kinesis:PutRecord"] and put["Resource"] == {
        "Fn::GetAtt": ["WebhookStream", "Arn"]
    }
    (s3,) = [s for s in statements if any(a.startswith("s3:") for a in actions(s))]
    assert actions(s3) == ["s3:PutObject"]
    assert [r["Fn::Sub"] for r in s3["Resource"]] == [
        "${LandingBucket.Arn}/quarantine/*",
        "${LandingBucket.Arn}/raw/webhooks/*",
    ]
    variables = RESOURCES["WebhookFunction"]["Properties"]["Environment"]["Variables"]
    assert (
        variables["WEBHOOK_STREAM_NAME"] == {"Ref": "WebhookStream"} and "INGEST_QUEUE_URL" not in variables
    )


def test_the_delivery_stream_lands_the_stream_as_batched_gzip_objects_by_day():
    delivery = RESOURCES["RawLandingDeliveryStream"]["Properties"]
    assert delivery["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert delivery["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {
        "Fn::GetAtt": ["WebhookStream", "Arn"]
    }
    s3 = delivery["ExtendedS3DestinationConfiguration"]
    assert s3["BucketARN"] == {"Fn::GetAtt": ["LandingBucket", "Arn"]}
    assert s3["Prefix"] == "raw/webhooks/dt=!{timestamp:yyyy-MM-dd}/" and s3["ErrorOutputPrefix"]
    assert s3["CompressionFormat"] == "GZIP" and "DynamicPartitioningConfiguration" not in s3


def test_the_delivery_role_reads_that_stream_and_writes_only_the_landing_prefixes():
    statements = RESOURCES["RawLandingDeliveryRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ReadWebhookStream"]["Resource"] == {"Fn::GetAtt": ["WebhookStream", "Arn"]}
    assert all(
        a.startswith("kinesis:Get") or a.startswith("kinesis:Describe") or a == "kinesis:ListShards"
        for a in by_sid["ReadWebhookStream"]["Action"]
    )
    assert [r["Fn::Sub"] for r in by_sid["WriteBatchedLanding"]["Resource"]] == [
        "${LandingBucket.Arn}/raw/webhooks/*",
        "${LandingBucket.Arn}/raw/webhooks-errors/*",
    ]
    assert "s3:DeleteObject" not in str(statements)
    trust = RESOURCES["RawLandingDeliveryRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "firehose.amazonaws.com"}


def test_the_sync_consumes_the_stream_with_partial_failures_and_a_failure_destination():
    source = RESOURCES["WebhookSyncFunction"]["Properties"]["Events"]["Pushes"]
    assert source["Type"] == "Kinesis"
    properties = source["Properties"]
    assert properties["Stream"] == {"Fn::GetAtt": ["WebhookStream", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 < properties["MaximumRetryAttempts"] <= 20
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["WebhookSyncFailureQueue", "Arn"]
    }


def test_operations_are_alarmed_on_the_consumer_and_the_landing():
    iterator = RESOURCES["WebhookStreamIteratorAgeAlarm"]["Properties"]
    assert (iterator["Namespace"], iterator["MetricName"]) == ("AWS/Lambda", "IteratorAge")
    assert iterator["Dimensions"][0]["Value"] == {"Ref": "WebhookSyncFunction"}
    freshness = RESOURCES["RawLandingFreshnessAlarm"]["Properties"]
    assert (freshness["Namespace"], freshness["MetricName"]) == ("AWS/Firehose", "DeliveryToS3.DataFreshness")
    failures = RESOURCES["WebhookSyncFailureAlarm"]["Properties"]
    assert failures["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["WebhookSyncFailureQueue", "QueueName"]}
