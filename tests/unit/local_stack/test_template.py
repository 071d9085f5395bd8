"""Reading the SAM template: short tags, intrinsic functions, Globals, functions and events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrm_local import cfn_yaml
from scrm_local.intrinsics import Resolver, TemplateError
from scrm_local.lambda_runtime import EnvironmentConflict, merged_environment
from scrm_local.settings import Settings, parse_overrides
from scrm_local.template import HttpAuthorizer, HttpRoute, Template, merge_globals

from tests.fixtures.local_stack.support import PROJECT, TEMPLATE, settings

ENDPOINT = "http://127.0.0.1:5999"


def fixture_template(**overrides: Any) -> Template:
    return Template.load(settings(stack_name="st", moto_port=5999, **overrides))


def resolver(doc: dict[str, Any], **overrides: str) -> Resolver:
    return Resolver(doc, stack_name="st", endpoint_url=ENDPOINT, parameter_overrides=overrides)


def test_short_tags_become_long_form() -> None:
    doc = cfn_yaml.loads(
        """
        A: !Ref X
        B: !GetAtt Q.Arn
        C: !Sub "${AWS::Region}-x"
        D: !If [Cond, 1, 2]
        E: !Equals [a, b]
        F: !Join [",", [a, b]]
        G: !GetAtt [T, StreamArn]
        H: !Condition IsProd
        """
    )
    assert doc == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Q", "Arn"]},
        "C": {"Fn::Sub": "${AWS::Region}-x"},
        "D": {"Fn::If": ["Cond", 1, 2]},
        "E": {"Fn::Equals": ["a", "b"]},
        "F": {"Fn::Join": [",", ["a", "b"]]},
        "G": {"Fn::GetAtt": ["T", "StreamArn"]},
        "H": {"Condition": "IsProd"},
    }


DOC: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "Count": {"Type": "Number", "Default": 5},
        "Zones": {"Type": "CommaDelimitedList", "Default": "a,b"},
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
    },
    "Mappings": {"Sizes": {"dev": {"Memory": 128}}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Fifo": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
        "Named": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Sub": "${AWS::StackName}-x"}},
        },
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Stream": {"Type": "AWS::Kinesis::Stream"},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Secret": {"Type": "AWS::SecretsManager::Secret"},
        "Param": {"Type": "AWS::SSM::Parameter", "Properties": {"Value": "v", "Type": "String"}},
        "Table": {"Type": "AWS::DynamoDB::Table"},
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"Ref": "Stage"}, "dev"),
        ({"Ref": "Count"}, "5"),
        ({"Ref": "Zones"}, ["a", "b"]),
        ({"Ref": "AWS::Region"}, "us-east-1"),
        ({"Ref": "AWS::AccountId"}, "123456789012"),
        ({"Ref": "AWS::StackName"}, "st"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "Queue"}, f"{ENDPOINT}/123456789012/st-Queue"),
        ({"Ref": "Fifo"}, f"{ENDPOINT}/123456789012/st-Fifo.fifo"),
        ({"Ref": "Named"}, "st-x"),
        ({"Ref": "Bucket"}, "st-bucket"),
        ({"Ref": "Stream"}, "st-Stream"),
        ({"Ref": "Topic"}, "arn:aws:sns:us-east-1:123456789012:st-Topic"),
        ({"Ref": "Secret"}, "arn:aws:secretsmanager:us-east-1:123456789012:secret:st-Secret"),
        ({"Ref": "Param"}, "st-Param"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:us-east-1:123456789012:st-Queue"),
        ({"Fn::GetAtt": ["Queue", "QueueName"]}, "st-Queue"),
        ({"Fn::GetAtt": ["Queue", "QueueUrl"]}, f"{ENDPOINT}/123456789012/st-Queue"),
        ({"Fn::GetAtt": "Stream.Arn"}, "arn:aws:kinesis:us-east-1:123456789012:stream/st-Stream"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::st-bucket"),
        ({"Fn::GetAtt": ["Topic", "TopicName"]}, "st-Topic"),
        ({"Fn::GetAtt": ["Param", "Value"]}, "v"),
        ({"Fn::Sub": "${Bucket.Arn}/*"}, "arn:aws:s3:::st-bucket/*"),
        ({"Fn::Sub": "${Stage}-${AWS::Region}-${!Literal}"}, "dev-us-east-1-${Literal}"),
        ({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Queue"}}]}, f"{ENDPOINT}/123456789012/st-Queue-dev"),
        ({"Fn::If": ["IsProd", "p", "d"]}, "d"),
        ({"Fn::If": ["NotProd", "p", "d"]}, "p"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}, "a-dev"),
        ({"Fn::Join": [",", {"Ref": "Zones"}]}, "a,b"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}, "y"),
        ({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, 128),
        ({"Fn::Base64": "hi"}, "aGk="),
    ],
)
def test_intrinsics(expr: Any, expected: Any) -> None:
    assert resolver(DOC).resolve(expr) == expected


def test_table_stream_arn_without_a_running_stack_is_a_placeholder() -> None:
    arn = resolver(DOC).resolve({"Fn::GetAtt": ["Table", "StreamArn"]})
    assert arn.startswith("arn:aws:dynamodb:us-east-1:123456789012:table/st-Table/stream/")


def test_no_value_drops_the_key_and_list_item() -> None:
    value = {"A": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}, "B": [1, {"Ref": "AWS::NoValue"}]}
    assert resolver(DOC).resolve(value) == {"B": [1]}


def test_parameter_overrides_and_conditions() -> None:
    r = resolver(DOC, Stage="prod")
    assert r.ref("Stage") == "prod"
    assert r.condition("IsProd") is True
    assert r.resolve({"Fn::If": ["IsProd", "p", "d"]}) == "p"


def test_bad_overrides_are_clear_errors() -> None:
    with pytest.raises(TemplateError, match="undeclared"):
        resolver(DOC, Nope="1")
    with pytest.raises(TemplateError, match="not one of"):
        resolver(DOC, Stage="qa")


def test_parse_overrides() -> None:
    assert parse_overrides("Stage=prod  Greeting='hi there'") == {"Stage": "prod", "Greeting": "hi there"}
    assert parse_overrides("") == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides("oops")


def test_merge_globals() -> None:
    merged = merge_globals(
        {
            "Timeout": 30,
            "Environment": {"Variables": {"A": "1", "B": "2"}},
            "Layers": ["g"],
            "Ref": {"Ref": "X"},
        },
        {"Timeout": 10, "Environment": {"Variables": {"B": "3"}}, "Layers": ["f"], "Ref": {"Fn::Sub": "y"}},
    )
    assert merged == {
        "Timeout": 10,
        "Environment": {"Variables": {"A": "1", "B": "3"}},
        "Layers": ["g", "f"],
        "Ref": {"Fn::Sub": "y"},
    }


def test_functions_and_events_from_the_fixture_template() -> None:
    template = fixture_template()
    assert set(template.functions) == {
        "EchoFunction",
        "SqsWorkerFunction",
        "SqsRetryFunction",
        "KinesisPartialFunction",
        "KinesisBisectFunction",
        "DdbStreamFunction",
        "ScheduledFunction",
        "KeyAuthorizerFunction",
        "GuardedFunction",
        "SleeperFunction",
    }
    echo = template.function("EchoFunction")
    assert echo.layer_dirs == ((PROJECT / "layers" / "recorder").resolve(),)  # Globals' Layers
    assert echo.timeout == 10 and echo.memory_size == 256  # function value wins, Globals fill in
    assert echo.code_dir == (PROJECT / "functions" / "echo").resolve()
    assert echo.name == "st-EchoFunction"
    assert echo.arn == "arn:aws:lambda:us-east-1:123456789012:function:st-EchoFunction"
    assert echo.environment["ECHO_ONLY"] == "yes"
    assert echo.environment["STAGE"] == "dev"
    assert echo.environment["MODE"] == "relaxed"
    assert echo.environment["GREETING"] == "hello from st in us-east-1"
    assert echo.environment["JOINED"] == "dev:st-WorkQueue"
    assert echo.environment["WORK_QUEUE_URL"] == "http://127.0.0.1:5999/123456789012/st-WorkQueue"
    assert [r.route_key for r in echo.routes] == [
        "POST /echo/{name}",
        "GET /files/{proxy+}",
        "GET /files/readme",
        "ANY /act/{action}",
    ]
    work, retry = sorted(template.sqs_sources, key=lambda source: source.queue_name, reverse=True)
    assert (work.queue_name, work.batch_size, work.report_failures) == ("st-WorkQueue", 3, True)
    assert work.maximum_concurrency == 3
    assert (retry.queue_name, retry.function_id, retry.maximum_concurrency) == (
        "st-RetryQueue",
        "SqsRetryFunction",
        None,
    )
    bisect = next(s for s in template.stream_sources if s.function_id == "KinesisBisectFunction")
    assert bisect.bisect and bisect.max_retry_attempts == 1
    assert bisect.on_failure_arn == "arn:aws:sqs:us-east-1:123456789012:st-StreamFailureQueue"
    ddb = next(s for s in template.stream_sources if s.kind == "dynamodb")
    assert ddb.starting_position == "TRIM_HORIZON" and ddb.batch_size == 5
    schedules = {s.event_name: s for s in template.schedules}
    assert schedules["Nightly"].expression == "cron(0 2 * * ? *)"
    assert (
        schedules["Nightly"].rule_arn
        == "arn:aws:events:us-east-1:123456789012:rule/st-ScheduledFunctionNightly"
    )
    assert schedules["Hourly"].input == '{"job": "reconcile"}'


def test_conditional_resources_follow_their_condition() -> None:
    assert "ProdOnlyQueue" not in fixture_template().logical_ids()
    prod = fixture_template(parameter_overrides={"Stage": "prod"})
    assert "ProdOnlyQueue" in prod.logical_ids()
    assert prod.function("EchoFunction").environment["MODE"] == "strict"


def test_unknown_function_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="WorkQueue is not a function"):
        fixture_template().function("WorkQueue")


def test_conflicting_environment_values_are_refused() -> None:
    template = fixture_template()
    functions = dict(template.functions)
    echo = functions["EchoFunction"]
    functions["EchoFunction"] = type(echo)(
        **{**echo.__dict__, "environment": {**echo.environment, "STAGE": "x"}}
    )
    with pytest.raises(EnvironmentConflict, match="STAGE"):
        merged_environment(functions)


def test_settings_from_env(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "SCRM_TEMPLATE": str(TEMPLATE),
            "SCRM_STACK_NAME": "abc",
            "MOTO_PORT": "5123",
            "PORT": "3123",
            "SCRM_PARAMETER_OVERRIDES": "Stage=prod",
            "SCRM_RUN_SCHEDULES": "1",
        }
    )
    assert (s.template_path, s.project_root, s.stack_name) == (TEMPLATE, PROJECT, "abc")
    assert (s.moto_port, s.http_port, s.run_schedules) == (5123, 3123, True)
    assert s.parameter_overrides == {"Stage": "prod"}
    assert s.endpoint_url == "http://127.0.0.1:5123"
    default = Settings.from_env({}, cwd=PROJECT / "functions" / "echo")
    assert default.template_path == TEMPLATE and default.moto_port == 5000 and default.http_port == 3000


# --- HttpApi Lambda authorizers ---------------------------------------------------------------------
def test_route_authorizers_from_the_fixture_template() -> None:
    routes = {r.event_name: r for r in fixture_template().function("GuardedFunction").routes}
    secure = routes["Secure"].authorizer  # no Auth on the route: the API's DefaultAuthorizer
    assert secure == HttpAuthorizer(
        api_id="GuardedApi",
        name="KeyAuthorizer",
        function_id="KeyAuthorizerFunction",
        identity_headers=("X-Api-Key",),
        ttl=300,
        simple_responses=True,
    )
    assert secure.identity_source == ("$request.header.X-Api-Key",)
    assert routes["Open"].authorizer is None  # Auth: {Authorizer: NONE}
    fresh = routes["Fresh"].authorizer
    assert fresh is not None and (fresh.name, fresh.ttl) == ("UncachedAuthorizer", 0)
    policy = routes["ByQuery"].authorizer  # FunctionArn as !Sub of the function's ARN
    assert policy is not None and policy.function_id == "KeyAuthorizerFunction"
    assert (policy.identity_source, policy.ttl, policy.simple_responses) == (
        ("$request.querystring.token",),
        300,  # API Gateway's default when ReauthorizeEvery is not set
        False,
    )
    # the implicit API of the other routes has no Auth at all
    assert all(r.authorizer is None for r in fixture_template().function("EchoFunction").routes)


def test_the_authorizer_ttl_may_be_a_parameter() -> None:
    template = fixture_template(parameter_overrides={"AuthorizerTtl": "7"})
    (secure,) = [r for r in template.routes if r.event_name == "Secure"]
    assert secure.authorizer is not None and secure.authorizer.ttl == 7


def lambda_authorizer(**overrides: Any) -> dict[str, Any]:
    return {
        "FunctionArn": {"Fn::GetAtt": ["AuthFn", "Arn"]},
        "AuthorizerPayloadFormatVersion": "2.0",
        "EnableSimpleResponses": True,
        "Identity": {"Headers": ["X-Api-Key"], "ReauthorizeEvery": 60},
        **overrides,
    }


def auth_doc(
    api_auth: dict[str, Any] | None = None,
    route_auth: dict[str, Any] | None = None,
    globals_auth: dict[str, Any] | None = None,
    api_id: Any = None,
) -> dict[str, Any]:
    function = {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "functions/echo/"}}
    event: dict[str, Any] = {"Method": "GET", "Path": "/things"}
    if api_id is not None:
        event["ApiId"] = api_id
    if route_auth is not None:
        event["Auth"] = route_auth
    doc: dict[str, Any] = {
        "Globals": {"Function": {"Runtime": "python3.12"}},
        "Resources": {
            "AuthFn": function,
            "Fn": {
                **function,
                "Properties": {
                    **function["Properties"],
                    "Events": {"Get": {"Type": "HttpApi", "Properties": event}},
                },
            },
            "Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {"Auth": api_auth} if api_auth else {}},
        },
    }
    if globals_auth is not None:
        doc["Globals"]["HttpApi"] = {"Auth": globals_auth}
    return doc


def only_route(doc: dict[str, Any]) -> HttpRoute:
    (route,) = Template(doc, settings(stack_name="st", moto_port=5999)).routes
    return route


def test_the_default_authorizer_and_an_explicit_one() -> None:
    auth = {"DefaultAuthorizer": "A", "Authorizers": {"A": lambda_authorizer(), "B": lambda_authorizer()}}
    route = only_route(auth_doc(auth, api_id={"Ref": "Api"}))
    assert route.authorizer is not None and (route.authorizer.name, route.authorizer.ttl) == ("A", 60)
    route = only_route(auth_doc(auth, {"Authorizer": "B"}, api_id={"Ref": "Api"}))
    assert route.authorizer is not None and route.authorizer.name == "B"
    assert only_route(auth_doc(auth, {"Authorizer": "NONE"}, api_id={"Ref": "Api"})).authorizer is None


def test_without_a_default_a_route_is_open_unless_it_names_one() -> None:
    auth = {"Authorizers": {"A": lambda_authorizer()}}
    assert only_route(auth_doc(auth, api_id={"Ref": "Api"})).authorizer is None
    assert only_route(auth_doc(auth, {"Authorizer": "A"}, api_id={"Ref": "Api"})).authorizer is not None


def test_the_implicit_api_takes_its_auth_from_globals() -> None:
    auth = {"DefaultAuthorizer": "A", "Authorizers": {"A": lambda_authorizer()}}
    route = only_route(auth_doc(globals_auth=auth))
    assert route.authorizer is not None and route.authorizer.api_id == "ServerlessHttpApi"
    # Globals apply to explicit HttpApi resources too
    assert only_route(auth_doc(globals_auth=auth, api_id={"Ref": "Api"})).authorizer is not None


def test_jwt_and_iam_authorizers_are_not_run_locally(caplog: pytest.LogCaptureFixture) -> None:
    jwt = {"JwtConfiguration": {"issuer": "https://issuer", "audience": ["a"]}, "IdentitySource": "x"}
    auth = {"DefaultAuthorizer": "Jwt", "Authorizers": {"Jwt": jwt}}
    assert only_route(auth_doc(auth, api_id={"Ref": "Api"})).authorizer is None
    assert only_route(auth_doc(auth, {"Authorizer": "AWS_IAM"}, api_id={"Ref": "Api"})).authorizer is None
    assert "not checked locally" in caplog.text


@pytest.mark.parametrize(
    ("auth", "route_auth", "api_id", "message"),
    [
        (
            {"Authorizers": {"A": lambda_authorizer()}},
            {"Authorizer": "Nope"},
            {"Ref": "Api"},
            "Nope is not on Api",
        ),
        (
            {
                "DefaultAuthorizer": "A",
                "Authorizers": {"A": lambda_authorizer(AuthorizerPayloadFormatVersion="1.0")},
            },
            None,
            {"Ref": "Api"},
            "only AuthorizerPayloadFormatVersion 2.0",
        ),
        (
            {
                "DefaultAuthorizer": "A",
                "Authorizers": {"A": lambda_authorizer(FunctionArn="arn:aws:lambda:x")},
            },
            None,
            {"Ref": "Api"},
            "is not a function of this template",
        ),
        ({"Authorizers": {}}, None, {"Ref": "AuthFn"}, "AuthFn is not an AWS::Serverless::HttpApi"),
        ({"Authorizers": {}}, None, "abc123", "ApiId must be !Ref"),
    ],
)
def test_authorizer_errors_are_clear(
    auth: dict[str, Any], route_auth: dict[str, Any] | None, api_id: Any, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        only_route(auth_doc(auth, route_auth, api_id=api_id))
