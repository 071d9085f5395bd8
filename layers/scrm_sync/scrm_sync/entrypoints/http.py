"""HTTP plumbing shared by the API handlers: raw body, API keys, JSON responses."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from ..domain.credentials import ChannelCredentials

API_KEY_HEADER = "x-api-key"


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The request body exactly as sent (signatures and raw landing need the bytes)."""
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode("utf-8")


def authenticate(event: APIGatewayProxyEventV2, credentials: ChannelCredentials) -> str:
    """Name of the API caller, or 401. Keys come from the `api` entry of the channels secret."""
    presented = (event.headers or {}).get(API_KEY_HEADER)
    caller = credentials.api.caller_for(presented)
    if caller is None:
        raise UnauthorizedError("missing or invalid X-Api-Key")
    return caller


def json_response(status: int, body: Any) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
    )


def error_response(status: int, message: str, **extra: Any) -> Response:
    return json_response(status, {"message": message, **extra})
