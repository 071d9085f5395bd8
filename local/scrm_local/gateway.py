"""HttpApi routes on a local threaded HTTP server: request -> payload format 2.0 event -> (Lambda
authorizer, its verdict cached per identity) -> handler -> response, mapped back the way API
Gateway HTTP APIs do it.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from .naming import LOCAL_API_ID
from .settings import ACCOUNT_ID, REGION
from .template import HttpAuthorizer, HttpRoute

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DRAIN_LIMIT = 64 * 1024 * 1024  # larger bodies are not read at all before the 413
HEALTH_PATH = "/healthz"
Invoke = Callable[[str, Any], Any]
Health = Callable[[], tuple[int, dict[str, Any]]]
Header = tuple[str, str]
# dev-only pages served before the routes (the sidebar page, its stub SDK, the fake WeCom API):
# (method, target) -> a response, or None for a request the routes answer
DevPages = Callable[[str, str, bytes], "tuple[int, list[Header], bytes] | None"]

_TEXT_SUFFIXES = ("json", "xml", "x-www-form-urlencoded", "javascript", "yaml", "csv", "graphql")


# --- routing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    route: HttpRoute
    path_parameters: dict[str, str]


def _match_path(template: str, segments: Sequence[str]) -> tuple[dict[str, str], int, bool] | None:
    """(path parameters, static segment count, greedy) when `segments` fit the route path."""
    parts = template.strip("/").split("/") if template.strip("/") else []
    params: dict[str, str] = {}
    static = 0
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if index != len(parts) - 1 or not rest or not any(rest):
                return None
            params[part[1:-2]] = unquote("/".join(rest))
            return params, static, True
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not segments[index]:
                return None
            params[part[1:-1]] = unquote(segments[index])
        elif unquote(segments[index]) != part:
            return None
        else:
            static += 1
    if len(segments) != len(parts):
        return None
    return params, static, False


class RouteTable:
    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self.routes = list(routes)

    def match(self, method: str, raw_path: str) -> Match | None:
        """The most specific route, as API Gateway picks it: static segments beat parameters,
        parameters beat greedy paths, an exact method beats ANY; `$default` catches the rest."""
        stripped = raw_path.strip("/")
        segments = stripped.split("/") if stripped else []
        best: tuple[tuple[int, int, int], Match] | None = None
        default: Match | None = None
        for route in self.routes:
            if route.path == "$default":
                default = Match(route, {})
                continue
            if route.method not in (method, "ANY"):
                continue
            found = _match_path(route.path, segments)
            if found is None:
                continue
            params, static, greedy = found
            rank = (0 if greedy else 1, static, 1 if route.method == method else 0)
            if best is None or rank > best[0]:
                best = (rank, Match(route, params))
        return best[1] if best else default


# --- request -> event ------------------------------------------------------------------------
def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime.endswith(_TEXT_SUFFIXES)


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): text as str when it is UTF-8 of a textual type, else base64."""
    if not body:
        return None, False
    if is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _request_id() -> str:
    return base64.b64encode(os.urandom(10)).decode("ascii")


def build_event(
    match: Match,
    *,
    method: str,
    target: str,
    headers: Sequence[Header],
    body: bytes,
    source_ip: str,
    protocol: str = "HTTP/1.1",
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    now = time.time() if now is None else now
    raw_path, _, raw_query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    host = merged.get("host", "localhost").split(":")[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": _request_id(),
        "routeKey": match.route.route_key,
        "stage": "$default",
        "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    text, encoded = encode_body(body, merged.get("content-type"))
    if text is not None:
        event["body"] = text
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    event["isBase64Encoded"] = encoded
    return event


# --- handler result -> response ---------------------------------------------------------------
class BadLambdaResponse(ValueError):
    pass


def map_response(payload: Any) -> tuple[int, list[Header], bytes]:
    """Payload format 2.0 response mapping: a dict with statusCode is a response; anything else
    is a 200 application/json body of that JSON."""
    if not (isinstance(payload, dict) and "statusCode" in payload):
        return 200, [("Content-Type", "application/json")], json.dumps(payload).encode()
    try:
        status = int(payload["statusCode"])
    except (TypeError, ValueError) as exc:
        raise BadLambdaResponse(f"statusCode must be an integer: {payload['statusCode']!r}") from exc
    if not 100 <= status <= 599:
        raise BadLambdaResponse(f"statusCode out of range: {status}")
    headers: list[Header] = [(str(k), str(v)) for k, v in (payload.get("headers") or {}).items()]
    for key, values in (payload.get("multiValueHeaders") or {}).items():
        headers.extend((str(key), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(c)) for c in payload.get("cookies") or [])
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = payload.get("body")
    if body is None:
        data = b""
    elif payload.get("isBase64Encoded"):
        data = base64.b64decode(str(body))
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    return status, headers, data


def _json_response(status: int, body: dict[str, Any]) -> tuple[int, list[Header], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


NOT_FOUND = _json_response(404, {"message": "Not Found"})
INTERNAL_ERROR = _json_response(500, {"message": "Internal Server Error"})
TOO_LARGE = _json_response(413, {"message": "Request Entity Too Large"})
UNAVAILABLE = _json_response(503, {"message": "Service Unavailable"})
UNAUTHORIZED = _json_response(401, {"message": "Unauthorized"})
FORBIDDEN = _json_response(403, {"message": "Forbidden"})


# --- Lambda authorizers ------------------------------------------------------------------------
class BadAuthorizerResponse(ValueError):
    pass


def route_arn(method: str, raw_path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{LOCAL_API_ID}/$default/{method}{raw_path}"


def identity_values(authorizer: HttpAuthorizer, event: dict[str, Any]) -> list[str] | None:
    """The identity source values in order; None when one is missing or empty, which API Gateway
    answers with 401 without calling the authorizer."""
    headers = event.get("headers") or {}
    query = event.get("queryStringParameters") or {}
    values = [headers.get(name.lower()) for name in authorizer.identity_headers]
    values += [query.get(name) for name in authorizer.identity_query_strings]
    if not all(isinstance(value, str) and value.strip() for value in values):
        return None
    return [str(value) for value in values]


def build_authorizer_event(event: dict[str, Any], arn: str, identity: list[str]) -> dict[str, Any]:
    """The REQUEST authorizer event, payload format 2.0, for a route event from build_event."""
    auth_event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": arn,
        "identitySource": identity,
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "rawQueryString": event["rawQueryString"],
    }
    for key in ("cookies", "headers", "queryStringParameters", "requestContext", "pathParameters"):
        if key in event:
            auth_event[key] = copy.deepcopy(event[key])
    return auth_event


def _iam_pattern(pattern: str) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` one character, nothing else special."""
    return re.compile(".*".join(".".join(map(re.escape, part.split("?"))) for part in pattern.split("*")))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class AuthorizerResult:
    """An authorizer's answer: a simple yes/no, or (without simple responses) an IAM policy that is
    evaluated against each request's route ARN, so one cached policy can serve several routes."""

    authorized: bool | None = None
    statements: tuple[dict[str, Any], ...] = ()
    context: dict[str, Any] | None = None

    def allows(self, arn: str) -> bool:
        if self.authorized is not None:
            return self.authorized
        allowed = False
        for statement in self.statements:
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            resources = [str(r) for r in _as_list(statement.get("Resource"))]
            if not any(_iam_pattern(a.lower()).fullmatch("execute-api:invoke") for a in actions):
                continue
            if not any(_iam_pattern(r).fullmatch(arn) for r in resources):
                continue
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
        return allowed


def read_authorizer_response(authorizer: HttpAuthorizer, payload: Any) -> AuthorizerResult:
    if not isinstance(payload, dict):
        raise BadAuthorizerResponse(f"the authorizer answered {type(payload).__name__}, not an object")
    context = payload.get("context")
    if context is not None and not isinstance(context, dict):
        raise BadAuthorizerResponse("the authorizer's context must be an object")
    if authorizer.simple_responses:
        if not isinstance(payload.get("isAuthorized"), bool):
            raise BadAuthorizerResponse("a simple response needs a boolean isAuthorized")
        return AuthorizerResult(authorized=payload["isAuthorized"], context=context)
    policy = payload.get("policyDocument")
    if not isinstance(payload.get("principalId"), str) or not isinstance(policy, dict):
        raise BadAuthorizerResponse("an IAM policy response needs principalId and policyDocument")
    statements = _as_list(policy.get("Statement"))
    if not all(isinstance(s, dict) for s in statements):
        raise BadAuthorizerResponse("policyDocument.Statement must be objects")
    return AuthorizerResult(statements=tuple(statements), context=context)


class AuthorizerCache:
    """Authorizer results per (authorizer, identity values) for the authorizer's TTL, like API
    Gateway's cache: a hit calls no function at all. Safe to share between request threads."""

    MAX_ENTRIES = 10_000  # a flood of made-up keys must not grow the cache without bound

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, AuthorizerResult]] = {}

    @staticmethod
    def key(authorizer: HttpAuthorizer, identity: Sequence[str]) -> tuple[str, ...]:
        return (authorizer.api_id, authorizer.name, *identity)

    def get(self, key: tuple[str, ...]) -> AuthorizerResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[str, ...], result: AuthorizerResult, ttl: int) -> None:
        with self._lock:
            now = self._clock()
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= self.MAX_ENTRIES:  # still full: drop the oldest
                    del self._entries[next(iter(self._entries))]
            self._entries.pop(key, None)
            self._entries[key] = (now + ttl, result)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --- server ------------------------------------------------------------------------------------
class _BodyTooLarge(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BodyTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._discard(length)
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        """Read (and drop) a too-large body, so the client sees the 413 instead of a reset."""
        if length > DRAIN_LIMIT:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            self._send(*TOO_LARGE)
            return
        self._send(
            *self.server.respond(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                self.client_address[0],
                self.request_version,
            )
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _send(self, status: int, headers: list[Header], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # path only: query strings carry lookups by phone number, which must not reach the logs
        path = self.path.split("?", 1)[0]
        level = logging.DEBUG if path == HEALTH_PATH else logging.INFO
        log.log(level, '%s "%s %s" %s', self.address_string(), self.command, path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], routes: Iterable[HttpRoute] | None, invoke: Invoke, health: Health
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.table: RouteTable | None = None if routes is None else RouteTable(routes)
        self.invoke = invoke
        self.health = health
        self.authorizer_cache = AuthorizerCache()
        self.dev_pages: DevPages | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def respond(
        self, method: str, target: str, headers: list[Header], body: bytes, source_ip: str, protocol: str
    ) -> tuple[int, list[Header], bytes]:
        raw_path = target.partition("?")[0]
        if method == "GET" and raw_path == HEALTH_PATH:
            return _json_response(*self.health())
        if self.dev_pages is not None:
            try:
                page = self.dev_pages(method, target, body)
            except Exception:
                log.exception("dev page %s failed", raw_path)
                return INTERNAL_ERROR
            if page is not None:
                return page
        if self.table is None:
            return UNAVAILABLE
        match = self.table.match(method, raw_path)
        if match is None:
            return NOT_FOUND
        event = build_event(
            match,
            method=method,
            target=target,
            headers=headers,
            body=body,
            source_ip=source_ip,
            protocol=protocol,
        )
        if match.route.authorizer is not None:
            refusal = self.authorize(match.route.authorizer, event, method, raw_path)
            if refusal is not None:
                return refusal
        try:
            return map_response(self.invoke(match.route.function_id, event))
        except Exception:
            log.exception("%s (%s) failed", match.route.function_id, match.route.route_key)
            return INTERNAL_ERROR

    def authorize(
        self, authorizer: HttpAuthorizer, event: dict[str, Any], method: str, raw_path: str
    ) -> tuple[int, list[Header], bytes] | None:
        """Run the route's Lambda authorizer as API Gateway does: 401 without the identity, 403 when
        refused, 500 when it fails; else None, with its context in requestContext.authorizer."""
        identity = identity_values(authorizer, event)
        if identity is None:
            return UNAUTHORIZED
        arn = route_arn(method, raw_path)
        cacheable = authorizer.ttl > 0 and bool(identity)
        key = AuthorizerCache.key(authorizer, identity)
        result = self.authorizer_cache.get(key) if cacheable else None
        if result is None:
            try:
                payload = self.invoke(authorizer.function_id, build_authorizer_event(event, arn, identity))
                result = read_authorizer_response(authorizer, payload)
            except Exception:
                log.exception("authorizer %s (%s) failed", authorizer.name, authorizer.function_id)
                return INTERNAL_ERROR
            if cacheable:
                self.authorizer_cache.put(key, result, authorizer.ttl)
        if not result.allows(arn):
            log.info("authorizer %s refused %s %s", authorizer.name, method, raw_path)
            return FORBIDDEN
        event["requestContext"]["authorizer"] = {"lambda": result.context}
        return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="scrm-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
