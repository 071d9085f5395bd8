"""Deterministic physical names, ARNs, Ref values and GetAtt values of template resources.

Names follow `<stack>-<LogicalId>` (buckets lower-cased) unless the template names the resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import ACCOUNT_ID, PARTITION, REGION, URL_SUFFIX

# The property that gives a resource an explicit physical name, per type.
NAME_PROPERTY: dict[str, str] = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Kinesis::Stream": "Name",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
}

LOCAL_API_ID = "localapi01"


@dataclass(frozen=True)
class ResourceName:
    """What the resolver knows about one resource once its name is fixed."""

    logical_id: str
    type: str
    name: str
    properties: dict[str, Any]


def default_name(stack_name: str, logical_id: str, rtype: str, properties: dict[str, Any]) -> str:
    name = f"{stack_name}-{logical_id}"
    if rtype == "AWS::S3::Bucket":
        return name.lower()
    if rtype == "AWS::SQS::Queue" and _truthy(properties.get("FifoQueue")):
        return f"{name}.fifo"
    if rtype == "AWS::SNS::Topic" and _truthy(properties.get("FifoTopic")):
        return f"{name}.fifo"
    return name


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def queue_url(endpoint_url: str, name: str) -> str:
    return f"{endpoint_url}/{ACCOUNT_ID}/{name}"


def resource_arn(res: ResourceName) -> str:
    t, n = res.type, res.name
    if t in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
        return arn("dynamodb", f"table/{n}")
    if t == "AWS::SQS::Queue":
        return arn("sqs", n)
    if t == "AWS::S3::Bucket":
        return f"arn:{PARTITION}:s3:::{n}"
    if t == "AWS::Kinesis::Stream":
        return arn("kinesis", f"stream/{n}")
    if t == "AWS::KinesisFirehose::DeliveryStream":
        return arn("firehose", f"deliverystream/{n}")
    if t == "AWS::SNS::Topic":
        return arn("sns", n)
    if t == "AWS::SecretsManager::Secret":
        return arn("secretsmanager", f"secret:{n}")
    if t == "AWS::SSM::Parameter":
        return arn("ssm", f"parameter/{n.lstrip('/')}")
    if t in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return arn("lambda", f"function:{n}")
    if t == "AWS::Serverless::LayerVersion":
        return arn("lambda", f"layer:{n}:1")
    if t == "AWS::Events::EventBus":
        return arn("events", f"event-bus/{n}")
    if t == "AWS::Events::Rule":
        return arn("events", f"rule/{n}")
    if t == "AWS::Logs::LogGroup":
        return arn("logs", f"log-group:{n}:*")
    if t == "AWS::CloudWatch::Alarm":
        return arn("cloudwatch", f"alarm:{n}")
    if t == "AWS::IAM::Role":
        return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{n}"
    service = t.split("::")[1].lower() if t.count("::") >= 2 else "unknown"
    return arn(service, n)


def ref_value(res: ResourceName, endpoint_url: str) -> Any:
    """What `!Ref` returns for this resource type (as CloudFormation documents it)."""
    t = res.type
    if t == "AWS::SQS::Queue":
        return queue_url(endpoint_url, res.name)
    if t in (
        "AWS::SNS::Topic",
        "AWS::SecretsManager::Secret",
        "AWS::Serverless::LayerVersion",
    ):
        return resource_arn(res)
    if t in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api"):
        return LOCAL_API_ID
    return res.name


def get_att_value(res: ResourceName, attr: str, endpoint_url: str) -> Any:
    """`!GetAtt Resource.attr`; None when the attribute is not known statically."""
    t, n = res.type, res.name
    if attr == "Arn":
        return resource_arn(res)
    table = t in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
    if table and attr == "StreamArn":
        return f"{resource_arn(res)}/stream/1970-01-01T00:00:00.000"
    known: dict[tuple[str, str], Any] = {
        ("AWS::SQS::Queue", "QueueUrl"): queue_url(endpoint_url, n),
        ("AWS::SQS::Queue", "QueueName"): n,
        ("AWS::SNS::Topic", "TopicArn"): resource_arn(res),
        ("AWS::SNS::Topic", "TopicName"): n,
        ("AWS::S3::Bucket", "DomainName"): f"{n}.s3.{URL_SUFFIX}",
        ("AWS::S3::Bucket", "RegionalDomainName"): f"{n}.s3.{REGION}.{URL_SUFFIX}",
        ("AWS::S3::Bucket", "WebsiteURL"): f"http://{n}.s3-website-{REGION}.{URL_SUFFIX}",
        ("AWS::SecretsManager::Secret", "Id"): resource_arn(res),
        ("AWS::SSM::Parameter", "Type"): res.properties.get("Type", "String"),
        ("AWS::SSM::Parameter", "Value"): res.properties.get("Value"),
        ("AWS::Events::EventBus", "Name"): n,
        (
            "AWS::Serverless::HttpApi",
            "ApiEndpoint",
        ): f"https://{LOCAL_API_ID}.execute-api.{REGION}.{URL_SUFFIX}",
        ("AWS::IAM::Role", "RoleId"): f"AROA{n.upper()[:16]}",
    }
    if (t, attr) in known:
        return known[(t, attr)]
    if attr in ("Name", "StreamName", "TableName", "QueueName", "TopicName", "Id"):
        return n
    return None
