"""The change feed's destinations, one function each, each on its own FIFO queue (+ DLQ):

- `wecom_tags_handler`: the profile's tags on every following member (services/wecom_tags.py);
- `webhooks_handler`: a signed POST to one subscribed receiver (services/outbound_webhooks.py);
- `event_bus_handler`: `scrm.profile.changed` events on the profile event bus.

A message that fails stays on its queue with its visibility pushed out (exponential backoff
with jitter), holding back only the later messages of its group (one profile; one profile and
subscription for webhooks); after the queue's maxReceiveCount it moves to the dead-letter queue,
where `scrm outbound replay` finds it. Metrics per destination: deliveries, failures, and the
lag from the profile change to its delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.wecom_api import WeComRejected
from scrm_sync.bootstrap import event_bus, outbox, webhook_delivery, wecom_tag_sync
from scrm_sync.domain.retry import backoff_seconds
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.change_feed import EVENT_BUS, WEBHOOKS, WECOM_TAGS

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def lag_seconds(changed_at: Any) -> float | None:
    try:
        when = datetime.fromisoformat(str(changed_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - when).total_seconds())


def delivered(changed_at: Any) -> None:
    metrics.add_metric("OutboundDelivered", MetricUnit.Count, 1)
    lag = lag_seconds(changed_at)
    if lag is not None:
        metrics.add_metric("OutboundLagSeconds", MetricUnit.Seconds, lag)


def retry_later(destination: str, record: SQSRecord, reason: str) -> None:
    """Push the message's next attempt out (backoff with jitter); the caller re-raises."""
    delay = backoff_seconds(int(record.attributes.approximate_receive_count or 1))
    try:
        outbox().defer(destination, record.receipt_handle, delay)
    except Exception:  # noqa: BLE001 - the queue's own visibility timeout still applies
        logger.warning("could not defer the message", extra={"destination": destination})
    metrics.add_metric("OutboundFailed", MetricUnit.Count, 1)
    logger.info("delivery failed; retrying later", extra={"destination": destination, "reason": reason, "delay": delay})


def _handle(
    destination: str, record_handler: Callable[[SQSRecord], None], event: dict[str, Any], context: LambdaContext
) -> dict[str, Any]:
    metrics.add_dimension("Destination", destination)
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )


# --- WeCom tags -------------------------------------------------------------------------------------
def wecom_tags_record(record: SQSRecord) -> None:
    message = json.loads(record.body)
    try:
        report = wecom_tag_sync().sync(str(message["profile_id"]))
    except WeComRejected as exc:  # this request can never succeed (the member or tag is gone)
        metrics.add_metric("OutboundRejected", MetricUnit.Count, 1)
        logger.warning("WeCom rejected the tag write", extra={"errcode": exc.errcode, "delivery": message.get("id")})
        return
    except Exception as exc:
        retry_later(WECOM_TAGS, record, type(exc).__name__)
        raise
    metrics.add_metric("WeComMarkTagCalls", MetricUnit.Count, report.calls)
    delivered(message.get("changed_at"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def wecom_tags_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _handle(WECOM_TAGS, wecom_tags_record, event, context)


# --- signed webhooks --------------------------------------------------------------------------------
def webhooks_record(record: SQSRecord) -> None:
    attributes = record.message_attributes
    name = attributes["subscription"].string_value or ""
    delivery_id = attributes["delivery_id"].string_value or ""
    changed_at = attributes["changed_at"].string_value if "changed_at" in attributes else None
    try:
        result = webhook_delivery().deliver(name, record.body.encode(), delivery_id)
    except Exception as exc:
        retry_later(WEBHOOKS, record, str(exc)[:200])
        raise
    if result.delivered:
        delivered(changed_at)
    else:
        metrics.add_metric("OutboundDropped", MetricUnit.Count, 1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def webhooks_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _handle(WEBHOOKS, webhooks_record, event, context)


# --- the event bus ----------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def event_bus_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One PutEvents per ten messages; a failed entry fails its message and the later messages of
    its group (the bus does not order events anyway: `sequence` in each document does)."""
    metrics.add_dimension("Destination", EVENT_BUS)
    records = [SQSRecord(raw) for raw in event.get("Records") or []]
    failed_indexes = set(event_bus().publish([record.body for record in records]))
    failed_groups: set[str] = set()
    failures = []
    for index, record in enumerate(records):
        group = record.attributes.message_group_id or ""
        if index in failed_indexes or group in failed_groups:
            failed_groups.add(group)
            failures.append({"itemIdentifier": record.message_id})
            if index in failed_indexes:
                retry_later(EVENT_BUS, record, "PutEvents entry failed")
        else:
            delivered(json.loads(record.body).get("changed_at"))
    return {"batchItemFailures": failures}
