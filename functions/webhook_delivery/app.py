"""Change documents -> signed POSTs (Standard Webhooks) to the subscribed receivers.

Each message is one subscription's body for one change (the change feed, FIFO per subscription
and profile): signed with the subscription's secret at each attempt, with the same `webhook-id`.
A receiver that does not answer 2xx gets the message again with backoff, then it waits in the
dead-letter queue; a subscription removed or disabled since is dropped and counted.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import outbox, retry_backoff, webhook_delivery
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.outbound import count_delivered, deliver_in_order, retry_later
from scrm_sync.services.change_feed import WEBHOOKS

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def _attribute(record: SQSRecord, name: str) -> str:
    value = (record.raw_event.get("messageAttributes") or {}).get(name) or {}
    return str(value.get("stringValue") or "")


def _defer(receipt: str, delay: int) -> None:
    outbox().defer(WEBHOOKS, receipt, delay)


def record_handler(record: SQSRecord) -> None:
    name = _attribute(record, "subscription")
    try:
        result = webhook_delivery().deliver(name, record.body.encode(), _attribute(record, "delivery_id"))
    except Exception as exc:
        # the reason names no URL or secret
        retry_later(metrics, logger, _defer, WEBHOOKS, record, str(exc)[:200], retry_backoff())
        raise
    if result.delivered:
        count_delivered(metrics, _attribute(record, "changed_at"))
    else:
        metrics.add_metric("OutboundDropped", MetricUnit.Count, 1)
        logger.info("delivery dropped", extra={"subscription": name, "reason": result.reason})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deliver_in_order(metrics, WEBHOOKS, record_handler, event, context, _defer)
