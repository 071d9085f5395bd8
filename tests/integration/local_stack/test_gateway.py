"""HTTP requests through the local HttpApi into fixture handlers and back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from scrm_local.stack import LocalStack

from tests.fixtures.local_stack.support import get_json, request


def echo(stack: LocalStack, target: str, headers: list[tuple[str, str]], body: bytes) -> dict:
    status, _, raw = request(stack.settings.http_port, "POST", target, headers, body)
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["shout"] == "HI!"  # helpers.py next to app.py was importable, as in /var/task
    return dict(answer["event"])


def test_payload_v2_event(stack: LocalStack) -> None:
    body = '{"名字": "张三", "n": 1}'.encode()
    event = echo(
        stack,
        "/echo/wecom%20x?msg_signature=abc&ts=1&ts=2&q=a+b",
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
            ("Cookie", "session=s1; theme=dark"),
            ("User-Agent", "pytest-agent"),
        ],
        body,
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /echo/{name}"
    assert event["rawPath"] == "/echo/wecom%20x"
    assert event["rawQueryString"] == "msg_signature=abc&ts=1&ts=2&q=a+b"
    assert event["queryStringParameters"] == {"msg_signature": "abc", "ts": "1,2", "q": "a b"}
    assert event["pathParameters"] == {"name": "wecom x"}
    assert event["cookies"] == ["session=s1", "theme=dark"]
    assert event["headers"]["x-repeated"] == "one,two"
    assert event["headers"]["content-type"] == "application/json; charset=utf-8"
    assert "cookie" not in event["headers"]
    assert event["body"] == body.decode() and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/echo/wecom%20x",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest-agent",
    }
    assert context["stage"] == "$default" and context["routeKey"] == "POST /echo/{name}"
    assert context["accountId"] == "123456789012" and context["requestId"]


def test_non_utf8_body_arrives_base64_byte_for_byte(stack: LocalStack) -> None:
    raw = bytes(range(256))
    event = echo(stack, "/echo/bin", [("Content-Type", "application/json")], raw)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_signature_over_the_raw_body_matches(stack: LocalStack) -> None:
    port = stack.settings.http_port
    for raw, content_type in [
        (b'{"b": 1,   "a": "\xe4\xb8\xad"}\r\n', "application/json"),
        (b"<xml><a>1</a></xml>", "text/xml"),
        (b"\x00\xffbinary", "application/octet-stream"),
    ]:
        signature = hmac.new(b"fixture-key", raw, hashlib.sha256).hexdigest()
        headers = [("Content-Type", content_type), ("X-Signature", signature)]
        status, _, body = request(port, "POST", "/act/signed", headers, raw)
        assert (status, json.loads(body)) == (200, {"ok": True})
        status, _, _ = request(port, "POST", "/act/signed", [("X-Signature", "0" * 64)], raw)
        assert status == 401


def test_response_mapping(stack: LocalStack) -> None:
    port = stack.settings.http_port
    status, headers, body = request(port, "GET", "/act/binary")
    assert status == 201
    assert headers["Content-Type"] == "image/png"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2; Path=/"]
    assert headers.get_all("x-multi") == ["1", "2"]
    assert body == b"\x89PNG\x00\xff"
    status, headers, body = request(port, "GET", "/act/plain")
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/json", "just a string")
    assert get_json(port, "/act/dict") == (200, {"hello": "world"})


def test_routes_and_errors(stack: LocalStack) -> None:
    port = stack.settings.http_port
    assert get_json(port, "/nope") == (404, {"message": "Not Found"})
    assert get_json(port, "/echo/x") == (404, {"message": "Not Found"})  # GET has no route
    assert get_json(port, "/act/boom") == (500, {"message": "Internal Server Error"})
    _, _, raw = request(port, "GET", "/files/a/b/c.txt")
    assert json.loads(raw)["event"]["pathParameters"] == {"proxy": "a/b/c.txt"}
    _, _, raw = request(port, "GET", "/files/readme")
    assert json.loads(raw)["event"]["routeKey"] == "GET /files/readme"


def test_body_limit(stack: LocalStack) -> None:
    big = b"x" * (10 * 1024 * 1024 + 1)
    status, _, body = request(
        stack.settings.http_port, "POST", "/echo/big", [("Content-Type", "text/plain")], big
    )
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})


def test_handler_environment_context_and_sibling_import(stack: LocalStack) -> None:
    port = stack.settings.http_port
    prefix = stack.settings.stack_name
    status, result = get_json(port, "/act/env")
    assert status == 200
    endpoint = stack.settings.endpoint_url
    assert result["at_import"] == endpoint  # set before the handler was imported
    assert result["env"] == {
        "STAGE": "dev",
        "MODE": "relaxed",
        "GREETING": f"hello from {prefix} in us-east-1",
        "WORK_QUEUE_URL": f"{endpoint}/123456789012/{prefix}-WorkQueue",
        "JOINED": f"dev:{prefix}-WorkQueue",
        "ECHO_ONLY": "yes",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
    }
    status, context = get_json(port, "/act/context")
    assert context["function_name"] == f"{prefix}-EchoFunction"
    assert (
        context["invoked_function_arn"]
        == f"arn:aws:lambda:us-east-1:123456789012:function:{prefix}-EchoFunction"
    )
    assert context["memory_limit_in_mb"] == 256 and context["function_version"] == "$LATEST"
    assert 0 < context["remaining"] <= 10_000
    assert context["log_group_name"] == f"/aws/lambda/{prefix}-EchoFunction"
    assert get_json(port, "/act/secret") == (200, {"api": {"keys": {"test": "fixture-key"}}})
