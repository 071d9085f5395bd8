"""Resources created in moto from the fixture template."""

from __future__ import annotations

import json
from pathlib import Path

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import wait_for


def test_tables_with_indexes_stream_and_ttl(stack: LocalStack) -> None:
    assert stack.clients is not None
    ddb = stack.clients("dynamodb")
    name = f"{stack.settings.stack_name}-ItemsTable"
    table = ddb.describe_table(TableName=name)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by_owner"]
    assert [i["IndexName"] for i in table["LocalSecondaryIndexes"]] == ["by_owner_local"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_queues_with_redrive(stack: LocalStack) -> None:
    assert stack.clients is not None
    sqs = stack.clients("sqs")
    prefix = stack.settings.stack_name
    url = sqs.get_queue_url(QueueName=f"{prefix}-WorkQueue")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "300"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:123456789012:{prefix}-WorkDeadLetterQueue",
        "maxReceiveCount": 2,
    }
    names = {u.rsplit("/", 1)[-1] for u in sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]}
    assert f"{prefix}-ProdOnlyQueue" not in names  # its condition is false


def test_bucket_stream_topic_secret_parameter(stack: LocalStack) -> None:
    assert stack.clients is not None
    prefix = stack.settings.stack_name
    bucket = f"{prefix}-databucket"
    assert stack.clients("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    summary = stack.clients("kinesis").describe_stream_summary(StreamName=f"{prefix}-ChangesStream")
    assert summary["StreamDescriptionSummary"]["OpenShardCount"] == 1
    topics = [t["TopicArn"] for t in stack.clients("sns").list_topics()["Topics"]]
    assert f"arn:aws:sns:us-east-1:123456789012:{prefix}-AlertsTopic" in topics
    secrets = stack.clients("secretsmanager")
    generated = json.loads(secrets.get_secret_value(SecretId=f"{prefix}-GeneratedSecret")["SecretString"])
    assert generated["username"] == "svc" and len(generated["password"]) == 20


def test_config_files_are_loaded_and_rules_are_watched(stack: LocalStack, config_dir: Path) -> None:
    assert stack.clients is not None
    prefix = stack.settings.stack_name
    secret = stack.clients("secretsmanager").get_secret_value(SecretId=f"{prefix}-ChannelCredentialsSecret")
    assert json.loads(secret["SecretString"]) == {"api": {"keys": {"test": "fixture-key"}}}
    ssm = stack.clients("ssm")

    def rules() -> dict[str, object]:
        return dict(json.loads(ssm.get_parameter(Name=f"{prefix}-RulesParameter")["Parameter"]["Value"]))

    assert rules() == {"version": 1}
    (config_dir / "rules.json").write_text('{"version": 2, "edited": true}')
    wait_for(lambda: rules() == {"version": 2, "edited": True})
    (config_dir / "rules.json").write_text("{not json")  # a bad edit keeps the last good rules
    assert stack.config is not None
    stack.config.check()
    assert rules() == {"version": 2, "edited": True}
