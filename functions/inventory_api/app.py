"""Inventory API (API keys, like /events):
GET  /inventory/{sku}                                       stock per location, and totals
GET  /inventory/{sku}/locations/{location}/movements        the history there, newest first
POST /inventory/reservations                                hold stock (all lines or none)
GET  /inventory/reservations/{reservation_id}
POST /inventory/reservations/{reservation_id}/release|ship  give it back / take it off the shelf
POST /inventory/snapshots                                   a source's stock count at a location, for
                                                            the scheduled reconciliation
GET  /inventory/transfers/{transfer_id}
POST /inventory/transfers/{transfer_id}/ack                 a store's answer: {"status": "accepted" |
                                                            "rejected" | "shipped", "reason": "..."}

A reservation answers 201 when held, 200 when the same request was held before (retries are
safe), 409 with the shortfall (how many are available, here and elsewhere) when it cannot be met.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from scrm_sync.bootstrap import credentials, fulfilment, inventory, reconciliation
from scrm_sync.domain.inventory import ReservationRequest, ReservationStatus, StockSnapshot, TransferAck
from scrm_sync.domain.untrusted_json import UnreadableJson, parse_json
from scrm_sync.entrypoints.http import (
    answer_invalid_configuration,
    authenticate,
    error_response,
    json_response,
    raw_body,
)
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.fulfilment import TransferNotFound, TransferTransitionRefused
from scrm_sync.services.ingest import validation_errors
from scrm_sync.services.inventory import ReservationConflict, UnknownLocation

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
MAX_MOVEMENTS = 500


FINISHING: dict[str, ReservationStatus] = {"release": "released", "ship": "shipped"}


@app.get("/inventory/<sku>")
@tracer.capture_method
def get_stock(sku: str) -> Response:
    authenticate(app.current_event, credentials)
    return json_response(200, inventory().stock(sku))


@app.get("/inventory/<sku>/locations/<location>/movements")
@tracer.capture_method
def get_movements(sku: str, location: str) -> Response:
    authenticate(app.current_event, credentials)
    limit_text = app.current_event.get_query_string_value("limit", "100") or "100"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_MOVEMENTS:
        return error_response(400, f"'limit' must be an integer from 1 to {MAX_MOVEMENTS}")
    movements = inventory().movements(sku, location, int(limit_text))
    return json_response(200, {"sku": sku, "location": location, "movements": movements})


@app.post("/inventory/reservations")
@tracer.capture_method
def reserve() -> Response:
    caller = authenticate(app.current_event, credentials)
    request = ReservationRequest.model_validate(parse_json(raw_body(app.current_event)))
    service = inventory()
    result = service.reserve(request)
    metrics.add_metric(f"InventoryReservations{result.status.capitalize()}", MetricUnit.Count, 1)
    logger.info(
        "reservation",
        extra={
            "caller": caller,
            "status": result.status,
            "location": request.location,
            "lines": len(request.lines),
        },
    )
    body = result.reservation.to_dict(service.now())
    if result.status == "short":
        return error_response(
            409,
            "not enough stock at this location",
            reservation_id=request.reservation_id,
            shortfalls=[s.to_dict() for s in result.shortfalls],
        )
    return json_response(201 if result.status == "reserved" else 200, body)


@app.get("/inventory/reservations/<reservation_id>")
@tracer.capture_method
def get_reservation(reservation_id: str) -> Response:
    authenticate(app.current_event, credentials)
    service = inventory()
    found = service.reservation(reservation_id)
    if found is None:
        return error_response(404, "reservation not found")
    return json_response(200, found.to_dict(service.now()))


@app.post("/inventory/reservations/<reservation_id>/<action>")
@tracer.capture_method
def finish_reservation(reservation_id: str, action: str) -> Response:
    authenticate(app.current_event, credentials)
    if action not in FINISHING:
        return error_response(404, f"unknown action {action!r}: use release or ship")
    service = inventory()
    wanted = FINISHING[action]
    found = service.finish(reservation_id, wanted)
    if found is None:
        return error_response(404, "reservation not found")
    body = found.to_dict(service.now())
    if found.status != wanted and not (action == "release" and found.status == "expired"):
        return error_response(409, f"reservation is {found.status}; it cannot be {wanted}", reservation=body)
    return json_response(200, body)


@app.post("/inventory/snapshots")
@tracer.capture_method
def post_snapshot() -> Response:
    caller = authenticate(app.current_event, credentials)
    snapshot = StockSnapshot.model_validate(parse_json(raw_body(app.current_event)))
    if not reconciliation().accept(snapshot):
        return error_response(409, "a newer snapshot of this source and location is kept already")
    logger.info(
        "stock snapshot",
        extra={
            "caller": caller,
            "source": snapshot.source,
            "location": snapshot.location,
            "items": len(snapshot.items),
        },
    )
    return json_response(
        202, {"source": snapshot.source, "location": snapshot.location, "version": snapshot.version}
    )


@app.get("/inventory/transfers/<transfer_id>")
@tracer.capture_method
def get_transfer(transfer_id: str) -> Response:
    authenticate(app.current_event, credentials)
    found = fulfilment().transfer(transfer_id)
    if found is None:
        return error_response(404, "transfer not found")
    return json_response(200, found.to_dict())


@app.post("/inventory/transfers/<transfer_id>/ack")
@tracer.capture_method
def acknowledge_transfer(transfer_id: str) -> Response:
    caller = authenticate(app.current_event, credentials)
    answer = TransferAck.model_validate(parse_json(raw_body(app.current_event)))
    status, reason = answer.status, answer.reason
    transfer = fulfilment().acknowledge(transfer_id, status, reason)
    logger.info(
        "transfer acknowledged", extra={"caller": caller, "transfer_id": transfer_id, "status": status}
    )
    metrics.add_metric(f"Transfers{status.capitalize()}", MetricUnit.Count, 1)
    return json_response(200, transfer.to_dict())


answer_invalid_configuration(app, logger)


@app.exception_handler(UnreadableJson)
def unreadable_body(exc: UnreadableJson) -> Response:
    return error_response(400, str(exc))


@app.exception_handler(ValidationError)
def invalid_body(exc: ValidationError) -> Response:
    return error_response(422, "invalid request body", errors=validation_errors(exc))


@app.exception_handler(TransferNotFound)
def transfer_not_found(exc: TransferNotFound) -> Response:
    return error_response(404, "transfer not found")


@app.exception_handler(TransferTransitionRefused)
def transfer_transition_refused(exc: TransferTransitionRefused) -> Response:
    return error_response(409, str(exc), transfer=exc.transfer.to_dict())


@app.exception_handler(UnknownLocation)
def unknown_location(exc: UnknownLocation) -> Response:
    return error_response(422, str(exc), errors=[{"field": "location", "message": str(exc)}])


@app.exception_handler(ReservationConflict)
def reservation_conflict(exc: ReservationConflict) -> Response:
    return error_response(409, str(exc))


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return error_response(401, str(exc.msg))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
