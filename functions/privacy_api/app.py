"""Privacy API (API keys, like /events; services/erasure.py):
POST   /erasures                  erase a person named by {"profile_id"} and/or {"identifiers": [...]}
DELETE /profiles/{profile_id}     the same, by profile id
GET    /erasures/{erasure_id}     its status, per store (pending, erased, failed)
POST   /suppressions/release      {"identifiers": [...], "reason": "..."}: a person who comes back
                                  and consents again is no longer dropped (recorded: who, when, why)
GET    /access-log?profile_id=    who read a profile, when, why (newest first; or ?caller=)

An erasure request answers 202 at once: the person's identifiers are suppressed from that moment,
and ErasureFunction erases the stores on its next run. Nothing the person sent is logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from scrm_sync.bootstrap import access_log, credentials, erasure_requests, rules
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.domain.privacy import ErasureRequestBody, IdentifierIn, ReleaseBody
from scrm_sync.domain.untrusted_json import UnreadableJson, parse_json
from scrm_sync.entrypoints.http import (
    answer_invalid_configuration,
    authenticate,
    error_response,
    json_response,
    raw_body,
)
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.erasure import NothingToErase
from scrm_sync.services.ingest import validation_errors

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
MAX_ACCESS_ENTRIES = 1000


class InvalidIdentifiers(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid identifiers")
        self.errors = errors


def normalized(identifiers: list[IdentifierIn]) -> list[Identifier]:
    region = rules().default_phone_region
    found, errors = [], []
    for index, raw in enumerate(identifiers):
        try:
            found.append(raw.normalized(region))
        except ValueError as exc:
            errors.append({"field": f"identifiers.{index}", "message": str(exc)})
    if errors:
        raise InvalidIdentifiers(errors)
    return found


def _erase(caller: str, profile_id: str | None, identifiers: list[Identifier]) -> Response:
    erasure = erasure_requests().request(caller, profile_id, identifiers)
    metrics.add_metric("ErasuresRequested", MetricUnit.Count, 1)
    logger.info(
        "erasure requested",
        extra={"erasure_id": erasure.erasure_id, "caller": caller, "profiles": len(erasure.profile_ids)},
    )
    return json_response(202, erasure.public())


@app.post("/erasures")
@tracer.capture_method
def request_erasure() -> Response:
    caller = authenticate(app.current_event, credentials)
    body = ErasureRequestBody.model_validate(parse_json(raw_body(app.current_event)))
    return _erase(caller, body.profile_id, normalized(body.identifiers))


@app.delete("/profiles/<profile_id>")
@tracer.capture_method
def erase_profile(profile_id: str) -> Response:
    caller = authenticate(app.current_event, credentials)
    return _erase(caller, profile_id, [])


@app.get("/erasures/<erasure_id>")
@tracer.capture_method
def erasure_status(erasure_id: str) -> Response:
    authenticate(app.current_event, credentials)
    erasure = erasure_requests().status(erasure_id)
    if erasure is None:
        return error_response(404, "no such erasure")
    return json_response(200, erasure.public())


@app.post("/suppressions/release")
@tracer.capture_method
def release_suppression() -> Response:
    caller = authenticate(app.current_event, credentials)
    body = ReleaseBody.model_validate(parse_json(raw_body(app.current_event)))
    released = erasure_requests().release(normalized(body.identifiers), caller, body.reason)
    metrics.add_metric("SuppressionsReleased", MetricUnit.Count, released)
    logger.warning("suppression released", extra={"caller": caller, "released": released})
    return json_response(200, {"released": released, "requested": len(body.identifiers)})


@app.get("/access-log")
@tracer.capture_method
def read_access_log() -> Response:
    authenticate(app.current_event, credentials)
    profile_id = app.current_event.get_query_string_value("profile_id")
    caller = app.current_event.get_query_string_value("caller")
    limit_text = app.current_event.get_query_string_value("limit", "100") or "100"
    if (profile_id is None) == (caller is None):
        return error_response(400, "name either 'profile_id' or 'caller'")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_ACCESS_ENTRIES:
        return error_response(400, f"'limit' must be an integer from 1 to {MAX_ACCESS_ENTRIES}")
    log = access_log()
    limit = int(limit_text)
    entries = (
        log.of_profile(profile_id, limit) if profile_id is not None else log.of_caller(str(caller), limit)
    )
    return json_response(200, {"entries": entries})


@app.exception_handler(NothingToErase)
def nothing_to_erase(exc: NothingToErase) -> Response:
    return error_response(404, str(exc))


@app.exception_handler(UnreadableJson)
def unreadable_body(exc: UnreadableJson) -> Response:
    return error_response(400, str(exc))


@app.exception_handler(ValidationError)
def invalid_body(exc: ValidationError) -> Response:
    return error_response(422, "invalid request body", errors=validation_errors(exc))


@app.exception_handler(InvalidIdentifiers)
def invalid_identifiers(exc: InvalidIdentifiers) -> Response:
    return error_response(422, "invalid request body", errors=exc.errors)


answer_invalid_configuration(app, logger)


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return error_response(401, str(exc.msg))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
