"""HttpApi Lambda authorizers through real HTTP, as API Gateway runs them: 401 without the
identity (the authorizer is not called), 403 when it refuses, 500 when it fails, its context in
the route's event, its verdict cached per identity for ReauthorizeEvery, NONE routes open."""

from __future__ import annotations

import json
import uuid
from typing import Any

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import recorded, request


def call(
    stack: LocalStack, target: str, key: str | None = None, method: str = "GET"
) -> tuple[int, dict[str, Any]]:
    headers = [] if key is None else [("X-Api-Key", key)]
    status, _, body = request(stack.settings.http_port, method, target, headers)
    return status, json.loads(body)


def authorizer_calls(stack: LocalStack, identity: str) -> list[dict[str, Any]]:
    return [c for c in recorded(stack, "KeyAuthorizerFunction") if c["identitySource"] == [identity]]


def unique_key() -> str:
    return f"valid-{uuid.uuid4().hex[:10]}"


def test_a_valid_key_reaches_the_handler_with_the_authorizer_context(stack: LocalStack) -> None:
    key = unique_key()
    status, body = call(stack, "/secure/item%201?x=1", key)
    assert status == 200
    event = body["event"]
    assert event["requestContext"]["authorizer"] == {"lambda": {"caller": key[6:], "level": 3}}
    assert event["pathParameters"] == {"item": "item 1"}
    (auth_event,) = authorizer_calls(stack, key)
    assert auth_event["version"] == "2.0" and auth_event["type"] == "REQUEST"
    assert auth_event["routeKey"] == "GET /secure/{item}"
    assert auth_event["routeArn"].endswith("/$default/GET/secure/item%201")
    assert auth_event["rawPath"] == "/secure/item%201" and auth_event["rawQueryString"] == "x=1"
    assert auth_event["headers"]["x-api-key"] == key
    assert auth_event["queryStringParameters"] == {"x": "1"}
    assert auth_event["pathParameters"] == {"item": "item 1"}
    assert auth_event["requestContext"]["http"]["method"] == "GET"
    assert "body" not in auth_event and "authorizer" not in auth_event["requestContext"]


def test_a_missing_key_is_401_without_calling_anything(stack: LocalStack) -> None:
    before = len(recorded(stack, "KeyAuthorizerFunction"))
    assert call(stack, "/secure/a") == (401, {"message": "Unauthorized"})
    assert call(stack, "/secure/a", "  ") == (401, {"message": "Unauthorized"})
    assert call(stack, "/query/a") == (401, {"message": "Unauthorized"})  # query string identity
    assert len(recorded(stack, "KeyAuthorizerFunction")) == before


def test_a_refused_key_is_403(stack: LocalStack) -> None:
    assert call(stack, "/secure/a", "wrong-key") == (403, {"message": "Forbidden"})
    assert call(stack, "/fresh/a", "wrong-key") == (403, {"message": "Forbidden"})


def test_the_verdict_is_cached_per_key_for_the_ttl(stack: LocalStack) -> None:
    key, other = unique_key(), unique_key()
    for _ in range(3):
        assert call(stack, "/secure/a", key)[0] == 200
    assert call(stack, "/secure/b", key)[0] == 200  # the cache is per authorizer, not per route
    assert len(authorizer_calls(stack, key)) == 1
    assert call(stack, "/secure/a", other)[0] == 200
    assert len(authorizer_calls(stack, other)) == 1
    refused = f"refused-{uuid.uuid4().hex[:8]}"  # refusals are cached too
    assert [call(stack, "/secure/a", refused)[0] for _ in range(2)] == [403, 403]
    assert len(authorizer_calls(stack, refused)) == 1


def test_a_zero_ttl_authorizer_is_called_every_time(stack: LocalStack) -> None:
    key = unique_key()
    for _ in range(3):
        status, body = call(stack, "/fresh/a", key)
        assert status == 200 and body["event"]["requestContext"]["authorizer"]["lambda"]["caller"] == key[6:]
    assert len(authorizer_calls(stack, key)) == 3


def test_a_failing_or_garbage_authorizer_is_500_and_not_cached(stack: LocalStack) -> None:
    for identity in ("raise", "garbage"):
        before = len(authorizer_calls(stack, identity))
        for _ in range(2):
            assert call(stack, "/secure/a", identity) == (500, {"message": "Internal Server Error"})
        assert len(authorizer_calls(stack, identity)) == before + 2


def test_none_routes_are_open(stack: LocalStack) -> None:
    before = len(recorded(stack, "KeyAuthorizerFunction"))
    status, body = call(stack, "/open/a")
    assert status == 200 and "authorizer" not in body["event"]["requestContext"]
    assert call(stack, "/open/a", "wrong-key")[0] == 200
    assert len(recorded(stack, "KeyAuthorizerFunction")) == before
    assert request(stack.settings.http_port, "GET", "/act/dict")[0] == 200  # the implicit API: no Auth


def test_an_iam_policy_response_is_evaluated_per_route(stack: LocalStack) -> None:
    token = unique_key()
    status, body = call(stack, f"/query/a?token={token}")
    assert status == 200 and body["event"]["requestContext"]["authorizer"]["lambda"]["caller"] == token[6:]
    # the cached policy denies this route explicitly, without calling the authorizer again
    assert call(stack, f"/query/secret?token={token}") == (403, {"message": "Forbidden"})
    assert len(authorizer_calls(stack, token)) == 1
    assert call(stack, "/query/a?token=nobody")[0] == 403
