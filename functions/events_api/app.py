"""POST /events: canonical events from integrators (POS, ERP, MDM), and POST /devices/health:
health scores from edge gateways without Greengrass; both authenticated by API key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import credentials, device_health_intake, ingest
from scrm_sync.entrypoints.http import (
    answer_invalid_configuration,
    authenticate,
    error_response,
    json_response,
    raw_body,
)
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.ingest import BadRequest, QueueUnavailable

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()


@app.post("/events")
@tracer.capture_method
def post_events() -> Response:
    caller = authenticate(app.current_event, credentials)
    request_id = app.current_event.request_context.request_id
    report = ingest().accept(raw_body(app.current_event), request_id, datetime.now(UTC), caller)
    metrics.add_metric("EventsReceived", MetricUnit.Count, len(report.results))
    metrics.add_metric("EventsRejected", MetricUnit.Count, len(report.results) - report.accepted)
    logger.info(
        "events ingested", extra={"caller": caller, "accepted": report.accepted, "raw_key": report.raw_key}
    )
    if report.accepted == len(report.results):
        status = 202
    elif report.accepted == 0:
        status = 422
    else:
        status = 207
    return json_response(status, report.to_dict())


@app.post("/devices/health")
@tracer.capture_method
def post_device_health() -> Response:
    caller = authenticate(app.current_event, credentials)
    request_id = app.current_event.request_context.request_id
    report = device_health_intake().accept(raw_body(app.current_event), request_id, datetime.now(UTC), caller)
    refused = len({error["index"] for error in report.rejected})
    metrics.add_metric("DeviceScoresReceived", MetricUnit.Count, report.accepted + refused)
    metrics.add_metric("DeviceScoresRejected", MetricUnit.Count, refused)
    logger.info(
        "device health scores accepted",
        extra={"caller": caller, "accepted": report.accepted, "refused": refused, "raw_key": report.raw_key},
    )
    status = 202 if not refused else (207 if report.accepted else 422)
    return json_response(status, report.to_dict())


answer_invalid_configuration(app, logger)


@app.exception_handler(BadRequest)
def bad_request(exc: BadRequest) -> Response:
    return error_response(400, str(exc))


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return error_response(401, str(exc.msg))


@app.exception_handler(QueueUnavailable)
def queue_unavailable(exc: QueueUnavailable) -> Response:
    logger.error("enqueue failed", extra={"error": str(exc)})
    return error_response(503, "events could not be enqueued; retry the request")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
