"""template.yaml as deployed: the alarms operations rely on, least-privilege policies (checked on
the roles SAM generates, policy templates expanded) and encryption at rest on every store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.template.sam import TEMPLATE

RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
DATA_SERVICES = ("dynamodb", "s3", "sqs", "kinesis", "secretsmanager", "ssm", "sns", "kms")
ALLOWED_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess",
    "service-role/AWSLambdaSQSQueueExecutionRole",
    "service-role/AWSLambdaKinesisExecutionRole",
    "service-role/AWSLambdaDynamoDBExecutionRole",
    "service-role/AWSLambdaVPCAccessExecutionRole",
}


def of_type(type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == type_}


def props(name: str) -> dict[str, Any]:
    return RESOURCES[name].get("Properties", {})


# --- alarms ---------------------------------------------------------------------------------------
def alarm(name: str) -> dict[str, Any]:
    assert RESOURCES[name]["Type"] == "AWS::CloudWatch::Alarm", name
    properties = props(name)
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], f"{name} must notify the alarm topic"
    assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], f"{name} must notify recovery too"
    return properties


def threshold_parameter(properties: dict[str, Any]) -> dict[str, Any]:
    reference = properties["Threshold"]
    assert isinstance(reference, dict) and "Ref" in reference, "thresholds are parameters"
    return PARAMETERS[reference["Ref"]]


def returned_expression(properties: dict[str, Any]) -> str:
    (returned,) = [m for m in properties["Metrics"] if m.get("ReturnData")]
    return str(returned["Expression"])


def metric_names(properties: dict[str, Any]) -> dict[str, str]:
    return {
        m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in properties["Metrics"] if "MetricStat" in m
    }


def test_sync_success_rate_alarm_is_metric_math_of_synced_over_synced_plus_failed():
    properties = alarm("SyncSuccessRateAlarm")
    assert threshold_parameter(properties)["Default"] == 99.9
    assert properties["ComparisonOperator"] == "LessThanThreshold"
    names = metric_names(properties)
    assert {"EventsSynced", "EventsFailed", "CdcChangesApplied", "CdcChangesFailed"} <= set(names.values())
    assert returned_expression(properties) == "IF(ok + bad > 0, 100 * ok / (ok + bad), 100)"
    periods = {m["MetricStat"]["Period"] for m in properties["Metrics"] if "MetricStat" in m}
    assert periods == {300}  # over 5 minutes
    assert properties["TreatMissingData"] == "notBreaching"


def test_sync_lag_alarm_watches_the_p99():
    properties = alarm("SyncLagAlarm")
    assert (properties["MetricName"], properties["ExtendedStatistic"]) == ("SyncLag", "p99")
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert threshold_parameter(properties)["Default"] == 5000


def failure_queues() -> set[str]:
    """Queues that hold what failed: dead-letter targets and on-failure destinations."""
    queues = set()
    for resource in RESOURCES.values():
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            queues.add(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
        for event in resource.get("Properties", {}).get("Events", {}).values():
            destination = event.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure")
            if destination:
                queues.add(destination["Destination"]["Fn::GetAtt"][0])
    return queues


def test_every_dead_letter_and_failure_queue_has_an_alarm_above_zero():
    watched = {}
    for name, resource in of_type("AWS::CloudWatch::Alarm").items():
        properties = resource["Properties"]
        if properties.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            (dimension,) = properties["Dimensions"]
            watched[dimension["Value"]["Fn::GetAtt"][0]] = alarm(name)
    queues = failure_queues()
    assert len(queues) >= 4
    for queue in queues:
        assert queue in watched, f"{queue} has no alarm"
        assert watched[queue]["ComparisonOperator"] == "GreaterThanThreshold"
        assert threshold_parameter(watched[queue])["Default"] == 0


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_is_in_an_errors_and_a_throttles_alarm(metric):
    covered: set[str] = set()
    for name, resource in of_type("AWS::CloudWatch::Alarm").items():
        properties = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        if stats and all(s["Namespace"] == "AWS/Lambda" and s["MetricName"] == metric for s in stats):
            alarm(name)
            threshold_parameter(properties)
            assert returned_expression(properties).startswith("SUM(")
            assert len(stats) <= 10  # CloudWatch's limit of metrics per metric-math alarm
            covered |= {s["Dimensions"][0]["Value"]["Ref"] for s in stats}
    assert covered == set(of_type("AWS::Serverless::Function"))


def test_api_5xx_rate_alarm():
    properties = alarm("Api5xxAlarm")
    assert set(metric_names(properties).values()) == {"5xx", "Count"}
    assert "100 * FILL(errors, 0) / requests" in returned_expression(properties)
    threshold_parameter(properties)


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use():
    topic = props("AlarmTopic")
    key = props(topic["KmsMasterKeyId"]["Ref"])
    principals = [s["Principal"] for s in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
    assert key["EnableKeyRotation"] is True


# --- least privilege ------------------------------------------------------------------------------
def role_statements(deployed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in deployed["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    found.append((name, statement))
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found.append((name, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_function_may_use_a_wildcard_action_or_a_wildcard_data_resource(deployed):
    statements = role_statements(deployed)
    assert len(statements) > 20
    for role, statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in as_list(statement["Action"])]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{role}: wildcard action {action}"
        data = [a for a in actions if a.split(":", 1)[0] in DATA_SERVICES]
        if data:
            assert "*" not in as_list(statement["Resource"]), f"{role}: {data} on every resource"


def test_managed_policies_are_only_the_lambda_execution_roles(deployed):
    for name, resource in deployed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            text = arn if isinstance(arn, str) else str(arn)
            assert any(text.endswith(f"policy/{allowed}") for allowed in ALLOWED_MANAGED_POLICIES), (
                f"{name}: {text}"
            )


def test_each_function_reaches_only_the_tables_it_names(deployed):
    """The read API cannot touch the audit chain; the webhook cannot touch profiles."""
    policies = {
        name: str(resource["Properties"].get("Policies", []))
        for name, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    assert "AuditTable" not in policies["ProfileApiFunctionRole"]
    assert "ProfilesTable" not in policies["WebhookFunctionRole"]
    assert "IdentityTable" not in policies["EventsApiFunctionRole"]
    # the authorizer reads the channels secret, nothing else
    for kind in ("Table", "Queue", "Bucket", "Stream", "dynamodb", "sqs", "s3:", "kinesis"):
        assert kind not in policies["ApiAuthorizerFunctionRole"], kind


# --- encryption at rest ---------------------------------------------------------------------------
def test_every_store_is_encrypted_at_rest():
    for name, resource in of_type("AWS::DynamoDB::Table").items():
        assert resource["Properties"]["SSESpecification"]["SSEEnabled"] is True, name
    for name, resource in of_type("AWS::S3::Bucket").items():
        rules = resource["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), name
        assert all(resource["Properties"]["PublicAccessBlockConfiguration"].values()), name
    for name, resource in of_type("AWS::SQS::Queue").items():
        properties = resource["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, name
    for name, resource in of_type("AWS::Kinesis::Stream").items():
        assert resource["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS", name
    for name, resource in of_type("AWS::SNS::Topic").items():
        assert "KmsMasterKeyId" in resource["Properties"], name
    stores = sum(
        len(of_type(t))
        for t in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Kinesis::Stream")
    )
    assert stores >= 15


def test_the_public_routes_are_throttled_by_parameters():
    api = props("HttpApi")
    default = api["DefaultRouteSettings"]
    assert default == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    for route in ("POST /webhooks/{channel}", "POST /events"):
        settings = api["RouteSettings"][route]
        for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            assert settings[key]["Ref"] in PARAMETERS, (route, key)


def test_routes_need_an_api_key_unless_a_platform_signature_authenticates_them():
    assert props("HttpApi")["Auth"]["DefaultAuthorizer"] == "ApiKeyAuthorizer"
    for name, function in of_type("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            authorizer = event["Properties"].get("Auth", {}).get("Authorizer", "ApiKeyAuthorizer")
            # platforms sign their webhooks; the sidebar's agents hold an OAuth-issued session token
            own_authentication = event["Properties"]["Path"].startswith(("/webhooks/", "/sidebar/"))
            assert authorizer == ("NONE" if own_authentication else "ApiKeyAuthorizer"), (name, event)
