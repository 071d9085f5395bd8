"""The priority lane: inventory events (receipts, sales, counts, reservations, transfers) from
the inventory queue into the ledger, each applied once, records of a batch side by side; and
marketplace orders, whose lines are held at their channel's fulfilment location or sent to the
nearest store with stock (services/fulfilment.py).

A reserve that cannot be met is not an error (it is counted, with the SKU and location logged);
a release or ship whose reservation has not arrived yet, and a location the rules stopped
knowing, fail the record: the queue delivers it again, then keeps it in its dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import fulfilment, inventory
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.inventory import ReserveResult

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.SQS, logger, workers=8)
OUTCOME_METRICS = {
    "applied": "InventoryMovementsApplied",
    "superseded": "InventoryCountsSuperseded",
    "duplicate": "InventoryDuplicates",
    "reserved": "InventoryMovementsApplied",
    "exists": "InventoryDuplicates",
    "short": "InventoryReservationsShort",
}


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEvent.model_validate_json(record.body)
    if event.order is not None:
        report = fulfilment().order(event.source, event.order)
        metrics.add_metric("OrderLinesReserved", MetricUnit.Count, len(report.reserved))
        metrics.add_metric("TransfersRequested", MetricUnit.Count, len(report.transfers))
        metrics.add_metric("OrderLinesUnfulfillable", MetricUnit.Count, len(report.unfulfillable))
        if report.unfulfillable:
            logger.warning("order lines no location can meet", extra={"demands": report.unfulfillable})
        return
    if event.inventory is None:
        raise ValueError("neither an inventory event nor an order")
    outcome = inventory().apply(event.source, event.event_id, event.occurred_at, event.inventory)
    status = outcome.status if isinstance(outcome, ReserveResult) else outcome
    metrics.add_metric(OUTCOME_METRICS[status], MetricUnit.Count, 1)
    if status == "short":
        logger.warning(
            "reservation could not be met",
            extra={"sku": event.inventory.sku, "location": event.inventory.location, "source": event.source},
        )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
