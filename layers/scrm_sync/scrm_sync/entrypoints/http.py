"""HTTP plumbing shared by the API handlers and the API authorizer: raw body, API keys, JSON
responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from ..domain.config_documents import NoValidConfiguration
from ..domain.credentials import ChannelCredentials
from ..domain.privacy import PURPOSE_HEADER, ProfileAccess, purpose_of
from ..services.ports import AccessLog

API_KEY_HEADER = "x-api-key"
CALLER_CONTEXT_KEY = "caller"  # what the API authorizer puts in its context: the caller's name


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The request body exactly as sent (signatures and raw landing need the bytes)."""
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode("utf-8")


def presented_key(headers: Mapping[str, str] | None) -> str | None:
    """The X-Api-Key header (payload format 2.0 lower-cases header names)."""
    return (headers or {}).get(API_KEY_HEADER)


def authorizer_caller(event: APIGatewayProxyEventV2) -> str | None:
    """The caller the API's Lambda authorizer vouched for (`requestContext.authorizer.lambda`).
    Only API Gateway writes the request context, so a client cannot forge it."""
    caller = event.request_context.authorizer.get_lambda.get(CALLER_CONTEXT_KEY)
    return caller if isinstance(caller, str) and caller else None


def authenticate(event: APIGatewayProxyEventV2, credentials: Callable[[], ChannelCredentials]) -> str:
    """Name of the API caller, or 401.

    Behind the API authorizer the request already names its caller. Without one (a route
    deployed without the authorizer, a direct invoke) the key is checked here against the `api`
    entry of the channels secret, read only then, with the same domain comparison."""
    caller = authorizer_caller(event) or credentials().api.caller_for(presented_key(event.headers))
    if caller is None:
        raise UnauthorizedError("missing or invalid X-Api-Key")
    return caller


def json_response(status: int, body: Any) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate echoed from a request: \u-escape it
        text = json.dumps(body, separators=(",", ":"), default=str)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=text)


def error_response(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {"message": message, **extra})


def answer_invalid_configuration(app: APIGatewayHttpResolver, logger: Logger) -> None:
    """No valid rules or channels document yet (never a replaced one: the last valid one stays):
    a 503 the caller retries, logged for the operator."""

    @app.exception_handler(NoValidConfiguration)
    def no_valid_configuration(exc: NoValidConfiguration) -> Response:
        logger.error("no valid configuration", extra={"error": str(exc)})
        return error_response(503, "the service's configuration is invalid; retry the request later")


def record_access(
    event: APIGatewayProxyEventV2, log: Callable[[], AccessLog], caller: str, profile_id: str
) -> None:
    """Record a profile read (PIPL: every read accountable) before its answer goes out: caller,
    profile id, time, the purpose the caller names (`X-Purpose`, InvalidPurpose -> 400) and the
    route. A read that cannot be recorded is not answered (the write raises)."""
    purpose = purpose_of(event.headers.get(PURPOSE_HEADER))
    route = event.raw_event.get("routeKey") or f"{event.request_context.http.method} {event.path}"
    log().record(ProfileAccess(profile_id, caller, purpose, str(route), datetime.now(UTC)))
