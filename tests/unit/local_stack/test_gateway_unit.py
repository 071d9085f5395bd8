"""Route matching, payload 2.0 events, response mapping and Lambda authorizers, without a server."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from scrm_local.gateway import (
    AuthorizerCache,
    AuthorizerResult,
    BadAuthorizerResponse,
    BadLambdaResponse,
    RouteTable,
    build_authorizer_event,
    build_event,
    encode_body,
    identity_values,
    map_response,
    read_authorizer_response,
    route_arn,
)
from scrm_local.template import HttpAuthorizer, HttpRoute

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


# --- Lambda authorizers -------------------------------------------------------------------------------
KEY_AUTH = HttpAuthorizer(
    "Api", "Keys", "AuthFn", identity_headers=("X-Api-Key",), ttl=60, simple_responses=True
)
QUERY_AUTH = HttpAuthorizer("Api", "Token", "AuthFn", identity_query_strings=("token",), ttl=0)


def guarded_event(
    target: str = "/webhooks/wecom?token=t1", headers: list[tuple[str, str]] | None = None
) -> dict:
    match = ROUTES.match("POST", "/webhooks/wecom")
    assert match is not None
    return build_event(
        match,
        method="POST",
        target=target,
        headers=headers if headers is not None else [("X-Api-Key", "k1"), ("Cookie", "s=1")],
        body=b'{"secret": "body"}',
        source_ip="127.0.0.1",
        now=1_700_000_000.0,
    )


@pytest.mark.parametrize(
    ("authorizer", "target", "headers", "expected"),
    [
        (KEY_AUTH, "/x", [("x-api-key", "k1")], ["k1"]),
        (KEY_AUTH, "/x", [("X-API-KEY", "k1"), ("X-Api-Key", "k2")], ["k1,k2"]),
        (KEY_AUTH, "/x", [], None),
        (KEY_AUTH, "/x", [("X-Api-Key", "")], None),
        (KEY_AUTH, "/x", [("X-Api-Key", "   ")], None),
        (QUERY_AUTH, "/x?token=t1", [], ["t1"]),
        (QUERY_AUTH, "/x?Token=t1", [], None),  # query string names are case-sensitive
        (QUERY_AUTH, "/x?token=", [], None),
        (HttpAuthorizer("Api", "Any", "AuthFn", ttl=0), "/x", [], []),  # no identity source: always called
    ],
)
def test_identity_values(
    authorizer: HttpAuthorizer, target: str, headers: list[tuple[str, str]], expected: list[str] | None
) -> None:
    assert identity_values(authorizer, guarded_event(target, headers)) == expected


def test_authorizer_event_shape() -> None:
    event = guarded_event()
    arn = route_arn("POST", "/webhooks/wecom")
    assert arn == "arn:aws:execute-api:us-east-1:123456789012:localapi01/$default/POST/webhooks/wecom"
    auth_event = build_authorizer_event(event, arn, ["k1"])
    assert auth_event == {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": arn,
        "identitySource": ["k1"],
        "routeKey": "POST /webhooks/{channel}",
        "rawPath": "/webhooks/wecom",
        "rawQueryString": "token=t1",
        "cookies": ["s=1"],
        "headers": {"x-api-key": "k1"},
        "queryStringParameters": {"token": "t1"},
        "requestContext": event["requestContext"],
        "pathParameters": {"channel": "wecom"},
    }  # never the body
    auth_event["requestContext"]["authorizer"] = "tampered"
    assert "authorizer" not in event["requestContext"]  # a copy: the authorizer cannot touch the route event


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "allow",
        {},
        {"isAuthorized": "true"},
        {"isAuthorized": 1},
        {"isAuthorized": True, "context": "caller"},
    ],
)
def test_garbage_simple_responses(payload: object) -> None:
    with pytest.raises(BadAuthorizerResponse):
        read_authorizer_response(KEY_AUTH, payload)


def test_simple_responses() -> None:
    allowed = read_authorizer_response(KEY_AUTH, {"isAuthorized": True, "context": {"caller": "pos"}})
    assert allowed.allows("any") and allowed.context == {"caller": "pos"}
    refused = read_authorizer_response(KEY_AUTH, {"isAuthorized": False})
    assert not refused.allows("any") and refused.context is None


API = "arn:aws:execute-api:us-east-1:123456789012:localapi01"


def policy(*statements: dict) -> dict:
    return {"principalId": "me", "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)}}


@pytest.mark.parametrize(
    ("statements", "arn", "allowed"),
    [
        (
            [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{API}/*"}],
            f"{API}/$default/GET/a",
            True,
        ),
        (
            [{"Effect": "Allow", "Action": "execute-api:*", "Resource": [f"{API}/$default/GET/a"]}],
            f"{API}/$default/GET/a",
            True,
        ),
        ([{"Effect": "Allow", "Action": ["*"], "Resource": "*"}], f"{API}/$default/GET/a", True),
        (
            [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{API}/*/GET/a?"}],
            f"{API}/$default/GET/ab",
            True,
        ),
        (
            [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{API}/*/POST/*"}],
            f"{API}/$default/GET/a",
            False,
        ),
        ([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}], f"{API}/$default/GET/a", False),
        ([{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{API}/[a]"}], f"{API}/a", False),
        ([], f"{API}/$default/GET/a", False),
        (
            [
                {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
                {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{API}/*/GET/secret"},
            ],
            f"{API}/$default/GET/secret",
            False,
        ),
    ],
)
def test_iam_policy_responses(statements: list[dict], arn: str, allowed: bool) -> None:
    result = read_authorizer_response(QUERY_AUTH, policy(*statements))
    assert result.allows(arn) is allowed


def test_a_single_statement_object_and_garbage_policies() -> None:
    single = policy()
    single["policyDocument"]["Statement"] = {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": "*",
    }
    assert read_authorizer_response(QUERY_AUTH, single).allows(f"{API}/x")
    for bad in (
        {"isAuthorized": True},
        {"principalId": "me"},
        {"principalId": "me", "policyDocument": {"Statement": ["x"]}},
    ):
        with pytest.raises(BadAuthorizerResponse):
            read_authorizer_response(QUERY_AUTH, bad)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_expires_after_the_ttl() -> None:
    clock = Clock()
    cache = AuthorizerCache(clock)
    key = AuthorizerCache.key(KEY_AUTH, ["k1"])
    result = AuthorizerResult(authorized=True)
    assert cache.get(key) is None
    cache.put(key, result, 60)
    clock.now += 59.9
    assert cache.get(key) is result
    assert cache.get(AuthorizerCache.key(KEY_AUTH, ["k2"])) is None  # per identity
    other = HttpAuthorizer("Api", "Other", "AuthFn", identity_headers=("X-Api-Key",), ttl=60)
    assert cache.get(AuthorizerCache.key(other, ["k1"])) is None  # per authorizer
    clock.now += 0.1
    assert cache.get(key) is None


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AuthorizerCache, "MAX_ENTRIES", 3)
    clock = Clock()
    cache = AuthorizerCache(clock)
    keys = [AuthorizerCache.key(KEY_AUTH, [f"k{i}"]) for i in range(5)]
    cache.put(keys[0], AuthorizerResult(authorized=True), 1)
    cache.put(keys[1], AuthorizerResult(authorized=True), 100)
    cache.put(keys[2], AuthorizerResult(authorized=True), 100)
    clock.now += 2  # keys[0] expired: dropped first
    cache.put(keys[3], AuthorizerResult(authorized=True), 100)
    assert [cache.get(k) is not None for k in keys[:4]] == [False, True, True, True]
    cache.put(keys[4], AuthorizerResult(authorized=True), 100)  # full of live entries: the oldest goes
    assert [cache.get(k) is not None for k in keys] == [False, False, True, True, True]


def test_cache_is_thread_safe() -> None:
    cache = AuthorizerCache()
    result = AuthorizerResult(authorized=True)

    def hammer(n: int) -> None:
        for i in range(500):
            key = AuthorizerCache.key(KEY_AUTH, [f"{n}-{i % 50}"])
            cache.put(key, result, 60)
            assert cache.get(key) is result

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 8 * 50
