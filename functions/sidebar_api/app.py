"""The WeCom sidebar's routes (no API key: the page runs in an agent's WeCom client).

GET /sidebar/session?code=       one-time OAuth code -> {token, userid, expires_at}
GET /sidebar/jsapi-config?url=   (Authorization: Bearer <token>) signatures for wx.config and
                                 wx.agentConfig of that page
GET /sidebar/customer?external_userid=&cursor=
                                 (Bearer) the customer 360: profile and a page of the timeline,
                                 only for an agent who follows the customer (or sees all); every
                                 view, allowed or refused, is logged with the agent and profile id
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.credential_cache import CredentialUnavailable
from scrm_sync.adapters.wecom_api import WeComRejected, WeComUnavailable
from scrm_sync.bootstrap import access_log, sidebar, sidebar_customers
from scrm_sync.domain.identifiers import InvalidIdentifier
from scrm_sync.domain.jsapi import InvalidPageUrl
from scrm_sync.domain.privacy import ProfileAccess
from scrm_sync.domain.timeline import InvalidCursor
from scrm_sync.entrypoints.http import answer_invalid_configuration, error_response, json_response
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.sidebar import (
    MAX_CODE_LENGTH,
    InvalidSession,
    NotYourCustomer,
    SessionRefused,
    SidebarNotConfigured,
    UnknownCustomer,
    wecom_failure,
)

logger = pii_safe_logger()
tracer = Tracer()
app = APIGatewayHttpResolver()


def _bearer_token() -> str | None:
    header = (app.current_event.headers or {}).get("authorization") or ""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@app.get("/sidebar/session")
@tracer.capture_method
def open_session() -> Response:
    code = app.current_event.get_query_string_value("code")
    if not code or len(code) > MAX_CODE_LENGTH:
        return error_response(
            400, f"query parameter 'code' is required (at most {MAX_CODE_LENGTH} characters)"
        )
    try:
        session = sidebar().open_session(code)
    except WeComRejected:
        return error_response(
            401, "the OAuth code is invalid, already used or expired: open the sidebar again"
        )
    logger.info("sidebar session opened")
    return json_response(200, session)


@app.get("/sidebar/jsapi-config")
@tracer.capture_method
def jsapi_config() -> Response:
    sidebar().member(_bearer_token())
    url = app.current_event.get_query_string_value("url")
    return json_response(200, sidebar().jsapi_config(url or ""))


@app.get("/sidebar/customer")
@tracer.capture_method
def customer() -> Response:
    external_userid = app.current_event.get_query_string_value("external_userid")
    if not external_userid:
        return error_response(400, "query parameter 'external_userid' is required")
    cursor = app.current_event.get_query_string_value("cursor")
    page = sidebar_customers().customer(_bearer_token(), external_userid, cursor)
    # the agent's read is accountable (README "Privacy"): recorded before the view goes out
    access = ProfileAccess(
        page.profile_id, f"wecom:{page.member}", "sidebar", "GET /sidebar/customer", datetime.now(UTC)
    )
    access_log().record(access)
    logger.info("sidebar view", extra={"agent": page.member, "profile_id": page.profile_id, "allowed": True})
    return json_response(200, page.view)


@app.exception_handler(NotYourCustomer)
def not_your_customer(exc: NotYourCustomer) -> Response:
    logger.info("sidebar view", extra={"agent": exc.member, "profile_id": exc.profile_id, "allowed": False})
    return error_response(403, str(exc), code="not_your_customer")


@app.exception_handler(UnknownCustomer)
def unknown_customer(exc: UnknownCustomer) -> Response:
    return error_response(404, str(exc), code="unknown_customer")


@app.exception_handler(InvalidIdentifier)
def invalid_external_userid(exc: InvalidIdentifier) -> Response:
    return error_response(400, f"query parameter 'external_userid': {exc}")


@app.exception_handler(InvalidCursor)
def invalid_cursor(exc: InvalidCursor) -> Response:
    return error_response(400, f"query parameter 'cursor': {exc}")


@app.exception_handler(InvalidSession)
def invalid_session(exc: InvalidSession) -> Response:
    return error_response(401, str(exc))


@app.exception_handler(SessionRefused)
def session_refused(exc: SessionRefused) -> Response:
    return error_response(exc.status, str(exc))


@app.exception_handler(InvalidPageUrl)
def invalid_page_url(exc: InvalidPageUrl) -> Response:
    return error_response(400, f"query parameter 'url': {exc}")


@app.exception_handler(SidebarNotConfigured)
def not_configured(exc: SidebarNotConfigured) -> Response:
    logger.error("sidebar not configured", extra={"error": str(exc)})
    return error_response(503, f"the sidebar is not configured: {exc}")


@app.exception_handler(WeComUnavailable)
def wecom_unavailable(exc: WeComUnavailable) -> Response:
    status, message = wecom_failure(exc.errcode)
    logger.warning("WeCom call failed", extra={"errcode": exc.errcode, "status": status})
    return error_response(status, message)


@app.exception_handler(CredentialUnavailable)
def credentials_unavailable(exc: CredentialUnavailable) -> Response:
    logger.warning("credential cache unavailable", extra={"error": str(exc)})
    return error_response(503, "WeCom credentials are being refreshed: retry shortly")


answer_invalid_configuration(app, logger)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
