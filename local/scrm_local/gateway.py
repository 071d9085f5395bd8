"""HttpApi routes on a local threaded HTTP server: request -> payload format 2.0 event -> handler
-> response, mapped back the way API Gateway HTTP APIs do it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from .naming import LOCAL_API_ID
from .settings import ACCOUNT_ID
from .template import HttpRoute

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DRAIN_LIMIT = 64 * 1024 * 1024  # larger bodies are not read at all before the 413
HEALTH_PATH = "/healthz"
Invoke = Callable[[str, Any], Any]
Health = Callable[[], tuple[int, dict[str, Any]]]
Header = tuple[str, str]

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
        try:
            return map_response(self.invoke(match.route.function_id, event))
        except Exception:
            log.exception("%s (%s) failed", match.route.function_id, match.route.route_key)
            return INTERNAL_ERROR

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="scrm-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
