"""Route matching, payload 2.0 events and response mapping, without a server."""

from __future__ import annotations

import base64
import json

import pytest
from scrm_local.gateway import BadLambdaResponse, RouteTable, build_event, encode_body, map_response
from scrm_local.template import HttpRoute

ROUTES = RouteTable(
    [
        HttpRoute("Hook", "Push", "POST", "/webhooks/{channel}"),
        HttpRoute("Hook", "Check", "GET", "/webhooks/{channel}"),
        HttpRoute("Files", "Any", "GET", "/files/{proxy+}"),
        HttpRoute("Readme", "One", "GET", "/files/readme"),
        HttpRoute("Any", "Any", "ANY", "/act/{action}"),
        HttpRoute("Exact", "Exact", "DELETE", "/act/{action}"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("POST", "/webhooks/wecom", "Hook", {"channel": "wecom"}),
        ("GET", "/webhooks/wecom", "Hook", {"channel": "wecom"}),
        ("GET", "/files/a/b%20c.txt", "Files", {"proxy": "a/b c.txt"}),
        ("GET", "/files/readme", "Readme", {}),
        ("PATCH", "/act/go", "Any", {"action": "go"}),
        ("DELETE", "/act/go", "Exact", {"action": "go"}),
    ],
)
def test_most_specific_route_wins(method: str, path: str, function: str, params: dict[str, str]) -> None:
    match = ROUTES.match(method, path)
    assert match is not None
    assert (match.route.function_id, match.path_parameters) == (function, params)


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/webhooks/x"), ("GET", "/files"), ("GET", "/webhooks"), ("GET", "/nope")]
)
def test_unmatched(method: str, path: str) -> None:
    assert ROUTES.match(method, path) is None


def test_default_route_catches_the_rest() -> None:
    table = RouteTable([HttpRoute("Fallback", "Default", "ANY", "$default")])
    match = table.match("GET", "/whatever")
    assert match is not None and match.route.route_key == "$default"


def test_event_shape() -> None:
    match = ROUTES.match("POST", "/webhooks/wecom")
    assert match is not None
    event = build_event(
        match,
        method="POST",
        target="/webhooks/wecom?a=1&b=x%20y&a=2&empty=",
        headers=[
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("X-Dup", "one"),
            ("x-dup", "two"),
            ("Cookie", "s=1; t=2"),
            ("User-Agent", "pytest"),
        ],
        body=b'{"k": "v"}',
        source_ip="127.0.0.1",
        now=1_700_000_000.123,
    )
    context = event.pop("requestContext")
    assert event == {
        "version": "2.0",
        "routeKey": "POST /webhooks/{channel}",
        "rawPath": "/webhooks/wecom",
        "rawQueryString": "a=1&b=x%20y&a=2&empty=",
        "cookies": ["s=1", "t=2"],
        "headers": {
            "host": "127.0.0.1:3000",
            "content-type": "application/json",
            "x-dup": "one,two",
            "user-agent": "pytest",
        },
        "queryStringParameters": {"a": "1,2", "b": "x y", "empty": ""},
        "body": '{"k": "v"}',
        "pathParameters": {"channel": "wecom"},
        "isBase64Encoded": False,
    }
    request_id = context.pop("requestId")
    assert isinstance(request_id, str) and request_id
    assert context == {
        "accountId": "123456789012",
        "apiId": "localapi01",
        "domainName": "127.0.0.1",
        "domainPrefix": "127",
        "http": {
            "method": "POST",
            "path": "/webhooks/wecom",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "pytest",
        },
        "routeKey": "POST /webhooks/{channel}",
        "stage": "$default",
        "time": "14/Nov/2023:22:13:20 +0000",
        "timeEpoch": 1_700_000_000_123,
    }


def test_event_without_query_body_or_params_omits_them() -> None:
    match = ROUTES.match("GET", "/files/readme")
    assert match is not None
    event = build_event(
        match, method="GET", target="/files/readme", headers=[], body=b"", source_ip="1.2.3.4"
    )
    assert "body" not in event and "queryStringParameters" not in event and "pathParameters" not in event
    assert "cookies" not in event
    assert event["rawQueryString"] == "" and event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("ü".encode(), "text/plain; charset=utf-8", ("ü", False)),
        (b"<xml/>", "application/xml", ("<xml/>", False)),
        (b"a=1", "application/x-www-form-urlencoded", ("a=1", False)),
        (b'{"a":1}', "application/vnd.api+json", ('{"a":1}', False)),
        (b"\xff\xfe", "application/json", (base64.b64encode(b"\xff\xfe").decode(), True)),
        (b"\x00\x01", "application/octet-stream", ("AAE=", True)),
        (b"abc", None, ("YWJj", True)),
        (b"", "application/json", (None, False)),
    ],
)
def test_body_encoding(body: bytes, content_type: str | None, expected: tuple[str | None, bool]) -> None:
    assert encode_body(body, content_type) == expected


def test_response_with_status_code() -> None:
    status, headers, body = map_response(
        {
            "statusCode": 201,
            "headers": {"X-A": "1"},
            "multiValueHeaders": {"X-M": ["1", "2"]},
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert headers == [
        ("X-A", "1"),
        ("X-M", "1"),
        ("X-M", "2"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Type", "application/json"),
    ]
    assert body == b"\x00\xff"


@pytest.mark.parametrize("payload", [{"hello": "world"}, "just a string", [1, 2], None, 3])
def test_anything_else_is_200_json(payload: object) -> None:
    status, headers, body = map_response(payload)
    assert (status, headers, json.loads(body)) == (200, [("Content-Type", "application/json")], payload)


def test_bad_status_code() -> None:
    with pytest.raises(BadLambdaResponse):
        map_response({"statusCode": "abc"})
