"""HTTP API (payload 2.0) events for calling an API handler in-process, as API Gateway sends them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
_TEMPLATE = json.loads((ROOT / "events/profile_api/find_by_phone.json").read_text())


def http_event(
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    route: str | None = None,
) -> dict[str, Any]:
    """`route` is the route template API Gateway matched (`GET /profiles/{profile_id}`); by
    default the path itself."""
    event = copy.deepcopy(_TEMPLATE)
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["routeKey"] = f"{method} {route or path}"
    event["queryStringParameters"] = query or None
    event["rawQueryString"] = urlencode(query or {})
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "x-api-key"} | (headers or {})
    event["body"] = None if body is None else json.dumps(body)
    event["isBase64Encoded"] = False
    return event
