"""GET /profiles?type=&value=[&scope=], /profiles/{profile_id}, /profiles/{profile_id}/timeline.

Every profile read is recorded in the access log (caller, profile id, time, the purpose named by
`X-Purpose`, route) before it is answered: README "Privacy"."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import access_log, credentials, queries, rules, unlink
from scrm_sync.domain.identifiers import InvalidIdentifier, normalize_identifier
from scrm_sync.domain.privacy import InvalidPurpose
from scrm_sync.domain.storable import is_unicode_text
from scrm_sync.domain.untrusted_json import UnreadableJson, parse_json
from scrm_sync.entrypoints.http import (
    answer_invalid_configuration,
    authenticate,
    error_response,
    json_response,
    raw_body,
    record_access,
)
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.ports import ConcurrentChange
from scrm_sync.services.profiles import MAX_TIMELINE_LIMIT
from scrm_sync.services.unlink import CannotUnlink, NotLinked

logger = pii_safe_logger()
tracer = Tracer()
app = APIGatewayHttpResolver()


@app.get("/profiles")
@tracer.capture_method
def find_profile() -> Response:
    caller = authenticate(app.current_event, credentials)
    type_ = app.current_event.get_query_string_value("type")
    value = app.current_event.get_query_string_value("value")
    if not type_ or value is None:
        return error_response(400, "query parameters 'type' and 'value' are required")
    scope = app.current_event.get_query_string_value("scope")
    profile = queries().find(rules(), type_, value, scope)
    if profile is None:
        return error_response(404, "no profile has this identifier")
    record_access(app.current_event, access_log, caller, profile["profile_id"])
    return json_response(200, profile)


@app.get("/profiles/<profile_id>")
@tracer.capture_method
def get_profile(profile_id: str) -> Response:
    caller = authenticate(app.current_event, credentials)
    profile = queries().get(profile_id)
    if profile is None:
        return error_response(404, "profile not found")
    record_access(app.current_event, access_log, caller, profile["profile_id"])
    return json_response(200, profile)


@app.get("/profiles/<profile_id>/timeline")
@tracer.capture_method
def get_timeline(profile_id: str) -> Response:
    caller = authenticate(app.current_event, credentials)
    limit_text = app.current_event.get_query_string_value("limit", "50") or "50"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_TIMELINE_LIMIT:
        return error_response(400, f"'limit' must be an integer from 1 to {MAX_TIMELINE_LIMIT}")
    timeline = queries().timeline(profile_id, int(limit_text))
    if timeline is None:
        return error_response(404, "profile not found")
    record_access(app.current_event, access_log, caller, str(timeline.get("profile_id") or profile_id))
    return json_response(200, timeline)


@app.post("/profiles/<profile_id>/unlink")
@tracer.capture_method
def unlink_identifier(profile_id: str) -> Response:
    """Undo a wrong link: body {"identifier": {"type", "value", "scope"?}, "reason": "..."}."""
    caller = authenticate(app.current_event, credentials)
    try:
        body = parse_json(raw_body(app.current_event))
    except UnreadableJson as exc:
        return error_response(400, str(exc))
    if not isinstance(body, dict) or not isinstance(body.get("identifier"), dict):
        return error_response(400, "body needs an 'identifier' object")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return error_response(400, "body needs a 'reason'")
    if not is_unicode_text(reason):
        return error_response(400, "'reason' holds an unpaired surrogate escape, which is not Unicode")
    raw = body["identifier"]
    identifier = normalize_identifier(
        str(raw.get("type", "")), raw.get("value"), raw.get("scope"), rules().default_phone_region
    )
    if queries().get(profile_id) is None:
        return error_response(404, "profile not found")
    outcome = unlink().unlink(profile_id, identifier, reason.strip()[:500], caller)
    logger.info("identifier unlinked", extra={"profile_id": outcome.profile_id, "type": identifier.type})
    return json_response(200, outcome.to_dict())


@app.exception_handler([NotLinked, CannotUnlink, ConcurrentChange])
def unlink_conflict(exc: Exception) -> Response:
    return error_response(409, f"cannot unlink: {exc}")


answer_invalid_configuration(app, logger)


@app.exception_handler(InvalidPurpose)
def invalid_purpose(exc: InvalidPurpose) -> Response:
    return error_response(400, str(exc))


@app.exception_handler(InvalidIdentifier)
def invalid_identifier(exc: InvalidIdentifier) -> Response:
    return error_response(400, f"invalid identifier: {exc}")


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return error_response(401, str(exc.msg))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
