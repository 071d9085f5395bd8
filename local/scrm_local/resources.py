"""Create the template's resources in moto, in dependency order.

Supported: DynamoDB tables (keys, GSIs/LSIs, streams, TTL), SQS queues (attributes, redrive),
S3 buckets (versioning, object lock), Kinesis streams, Firehose delivery streams (registered in
moto; firehose_poller.py does their work), SNS topics + subscriptions, Secrets Manager secrets,
SSM parameters, EventBridge buses, CloudWatch Logs groups and alarms.
Everything else (IAM, API Gateway, Lambda, policies) has no local counterpart and is skipped.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
from collections.abc import Callable
from graphlib import TopologicalSorter
from typing import Any

from .aws import Clients
from .template import Template

log = logging.getLogger(__name__)

Creator = Callable[[Clients, str, dict[str, Any]], None]


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _table(clients: Clients, name: str, p: dict[str, Any]) -> None:
    ddb = clients("dynamodb")
    billing = p.get("BillingMode", "PROVISIONED")
    throughput = p.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": p["AttributeDefinitions"],
        "KeySchema": p["KeySchema"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        args["ProvisionedThroughput"] = _throughput(throughput)
    gsis = []
    for gsi in p.get("GlobalSecondaryIndexes") or []:
        index = {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection") if k in gsi}
        if billing == "PROVISIONED":
            index["ProvisionedThroughput"] = _throughput(gsi.get("ProvisionedThroughput") or throughput)
        gsis.append(index)
    if gsis:
        args["GlobalSecondaryIndexes"] = gsis
    lsis = [
        {k: lsi[k] for k in ("IndexName", "KeySchema", "Projection")}
        for lsi in p.get("LocalSecondaryIndexes") or []
    ]
    if lsis:
        args["LocalSecondaryIndexes"] = lsis
    stream = p.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    ddb.create_table(**args)
    ttl = p.get("TimeToLiveSpecification")
    if ttl and _str(ttl.get("Enabled")) == "true":
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )


def _throughput(spec: dict[str, Any]) -> dict[str, int]:
    return {k: int(spec[k]) for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _simple_table(clients: Clients, name: str, p: dict[str, Any]) -> None:
    key = p.get("PrimaryKey") or {"Name": "id", "Type": "String"}
    kind = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
    _table(
        clients,
        name,
        {
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _queue(clients: Clients, name: str, p: dict[str, Any]) -> None:
    attributes = {k: _str(p[k]) for k in QUEUE_ATTRIBUTES if k in p}
    if "RedrivePolicy" in p:
        policy = dict(p["RedrivePolicy"])
        policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
        attributes["RedrivePolicy"] = json.dumps(policy)
    clients("sqs").create_queue(QueueName=name, Attributes=attributes)


def _bucket(clients: Clients, name: str, p: dict[str, Any]) -> None:
    s3 = clients("s3")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=_str(p.get("ObjectLockEnabled")) == "true")
    status = (p.get("VersioningConfiguration") or {}).get("Status")
    if status:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    lock = p.get("ObjectLockConfiguration")
    if lock and lock.get("Rule"):
        rule = lock["Rule"]["DefaultRetention"]
        retention = {k: (int(v) if k in ("Days", "Years") else v) for k, v in rule.items()}
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}},
        )


def _kinesis(clients: Clients, name: str, p: dict[str, Any]) -> None:
    mode = (p.get("StreamModeDetails") or {}).get("StreamMode")
    if "ShardCount" in p or mode != "ON_DEMAND":
        clients("kinesis").create_stream(StreamName=name, ShardCount=int(p.get("ShardCount", 1)))
    else:
        clients("kinesis").create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})


def _delivery_stream(clients: Clients, name: str, p: dict[str, Any]) -> None:
    """Registered in moto so it can be described; moto would not read its Kinesis source, so the
    local stack's FirehosePoller delivers the records."""
    args: dict[str, Any] = {"DeliveryStreamName": name}
    if p.get("DeliveryStreamType"):
        args["DeliveryStreamType"] = p["DeliveryStreamType"]
    if p.get("KinesisStreamSourceConfiguration"):
        args["KinesisStreamSourceConfiguration"] = p["KinesisStreamSourceConfiguration"]
    s3 = p.get("ExtendedS3DestinationConfiguration")
    if s3:
        keys = ("BucketARN", "RoleARN", "Prefix", "ErrorOutputPrefix", "CompressionFormat")
        destination: dict[str, Any] = {k: s3[k] for k in keys if k in s3}
        hints = s3.get("BufferingHints")
        if hints:
            destination["BufferingHints"] = {k: int(v) for k, v in hints.items()}
        args["ExtendedS3DestinationConfiguration"] = destination
    clients("firehose").create_delivery_stream(**args)


def _topic(clients: Clients, name: str, p: dict[str, Any]) -> None:
    sns = clients("sns")
    attributes = {k: _str(p[k]) for k in ("FifoTopic", "ContentBasedDeduplication") if k in p}
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for sub in p.get("Subscription") or []:
        _subscribe(sns, arn, sub)


def _subscribe(sns: Any, topic_arn: str, p: dict[str, Any]) -> None:
    if p.get("Protocol") == "lambda":
        log.info("SNS -> lambda subscriptions are not run locally (%s)", p.get("Endpoint"))
        return
    attributes = {
        k: _str(p[k])
        for k in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
        if k in p
    }
    sns.subscribe(TopicArn=topic_arn, Protocol=p["Protocol"], Endpoint=p["Endpoint"], Attributes=attributes)


def _subscription(clients: Clients, _name: str, p: dict[str, Any]) -> None:
    _subscribe(clients("sns"), p["TopicArn"], p)


def _generate(spec: dict[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    alphabet = [c for c in string.ascii_letters + string.digits if c not in excluded]
    password = "".join(secrets.choice(alphabet) for _ in range(length))
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password


def _secret(clients: Clients, name: str, p: dict[str, Any]) -> None:
    value = p.get("SecretString")
    if value is None:
        value = _generate(p.get("GenerateSecretString") or {})
    args: dict[str, Any] = {"Name": name, "SecretString": _str(value)}
    if p.get("Description"):
        args["Description"] = p["Description"]
    clients("secretsmanager").create_secret(**args)


def _parameter(clients: Clients, name: str, p: dict[str, Any]) -> None:
    args: dict[str, Any] = {"Name": name, "Value": _str(p["Value"]), "Type": p.get("Type", "String")}
    for key in ("Description", "Tier", "AllowedPattern", "DataType"):
        if p.get(key):
            args[key] = p[key]
    clients("ssm").put_parameter(**args)


def _event_bus(clients: Clients, name: str, _p: dict[str, Any]) -> None:
    clients("events").create_event_bus(Name=name)


def _log_group(clients: Clients, name: str, p: dict[str, Any]) -> None:
    clients("logs").create_log_group(logGroupName=name)
    if p.get("RetentionInDays"):
        clients("logs").put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))


ALARM_KEYS = (
    "ActionsEnabled",
    "AlarmActions",
    "AlarmDescription",
    "ComparisonOperator",
    "DatapointsToAlarm",
    "Dimensions",
    "EvaluateLowSampleCountPercentile",
    "EvaluationPeriods",
    "ExtendedStatistic",
    "InsufficientDataActions",
    "MetricName",
    "Metrics",
    "Namespace",
    "OKActions",
    "Period",
    "Statistic",
    "Threshold",
    "ThresholdMetricId",
    "TreatMissingData",
    "Unit",
)


def _alarm(clients: Clients, name: str, p: dict[str, Any]) -> None:
    args = {k: p[k] for k in ALARM_KEYS if k in p}
    for key in ("EvaluationPeriods", "Period", "DatapointsToAlarm"):
        if key in args:
            args[key] = int(args[key])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    if "ActionsEnabled" in args:
        args["ActionsEnabled"] = _str(args["ActionsEnabled"]) == "true"
    clients("cloudwatch").put_metric_alarm(AlarmName=name, **args)


CREATORS: dict[str, Creator] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::Serverless::SimpleTable": _simple_table,
    "AWS::SQS::Queue": _queue,
    "AWS::S3::Bucket": _bucket,
    "AWS::Kinesis::Stream": _kinesis,
    "AWS::KinesisFirehose::DeliveryStream": _delivery_stream,
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SSM::Parameter": _parameter,
    "AWS::Events::EventBus": _event_bus,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudWatch::Alarm": _alarm,
}

_SUB_NAMES = re.compile(r"\$\{([^}!][^}.]*)")


def references(value: Any) -> set[str]:
    """Logical ids a property value refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".")[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= set(_SUB_NAMES.findall(text))
                if not isinstance(item, str):
                    found |= references(item[1:])
            else:
                found |= references(item)
    return found


def creation_order(template: Template) -> list[str]:
    """Supported resources, each after the resources it refers to (a DLQ before its queue)."""
    supported = [lid for lid in template.logical_ids(*CREATORS)]
    raw = template.raw_resources
    graph: dict[str, set[str]] = {}
    for lid in supported:
        depends = raw[lid].get("DependsOn") or []
        deps = references(raw[lid].get("Properties") or {}) | set(
            [depends] if isinstance(depends, str) else depends
        )
        graph[lid] = {d for d in deps if d in supported and d != lid}
    return list(TopologicalSorter(graph).static_order())


def create_resources(template: Template, clients: Clients) -> list[str]:
    """Create every supported resource; returns the logical ids created, in order."""
    created = []
    for lid in creation_order(template):
        rtype = template.resource_type(lid)
        assert rtype is not None
        name = template.resolver.resource(lid).name
        CREATORS[rtype](clients, name, template.resolver.properties(lid))
        log.info("created %s %s (%s)", rtype, name, lid)
        created.append(lid)
    skipped = sorted(set(template.logical_ids()) - set(created))
    if skipped:
        log.debug("no local counterpart for: %s", ", ".join(skipped))
    return created
