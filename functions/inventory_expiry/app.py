"""Every minute: release reservations held past their expiry (DynamoDB TTL is best-effort and
would not give the units back; reads already show such reservations as expired), and send the
transfers no store acknowledged in time to the next store."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import fulfilment
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    expired, timed_out = fulfilment().expire_due()
    metrics.add_metric("InventoryReservationsExpired", MetricUnit.Count, expired)
    metrics.add_metric("TransfersTimedOut", MetricUnit.Count, timed_out)
    logger.info("expired reservations released", extra={"expired": expired, "transfers_timed_out": timed_out})
    return {"expired": expired, "transfers_timed_out": timed_out}
