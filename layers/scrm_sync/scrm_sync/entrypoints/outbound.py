"""What the change feed's destination handlers share: the delivery metrics (per `Destination`
dimension: delivered, failed, and the lag from the profile change to its delivery) and the retry
of a failed message with backoff (its visibility is pushed out; the queue's maxReceiveCount then
moves it to the dead-letter queue, where `scrm outbound replay` finds it)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..domain.retry import Backoff


def deliver_in_order(
    metrics: Metrics,
    destination: str,
    record_handler: Callable[[SQSRecord], None],
    event: dict[str, Any],
    context: LambdaContext,
    defer: Callable[[str, int], None],
) -> dict[str, Any]:
    """One destination's batch: records in order per message group; a failure holds back only
    the later records of its group (released at once, see release_held_back). A batch that failed
    entirely is reported like any partial failure, not raised: a destination being down is the
    dead-letter and lag alarms' business, not a function error."""
    metrics.add_dimension("Destination", destination)
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    processor.raise_on_entire_batch_failure = False
    attempted: set[str] = set()

    def attempt(record: SQSRecord) -> None:
        attempted.add(record.message_id)
        record_handler(record)

    response = process_partial_response(
        event=event, record_handler=attempt, processor=processor, context=context
    )
    failed = {str(failure["itemIdentifier"]) for failure in response.get("batchItemFailures", [])}
    records = [SQSRecord(raw) for raw in event.get("Records") or []]
    release_held_back([r for r in records if r.message_id in failed - attempted], defer)
    return dict(response)


def release_held_back(records: list[SQSRecord], defer: Callable[[str, int], None]) -> None:
    """Records reported failed only because an earlier record of their FIFO group failed: visible
    again now. Left invisible for the queue's VisibilityTimeout they would block their group that
    long (SQS returns no message of a group while one of its messages is in flight), whatever the
    failed record's backoff says; visible, they still wait behind it, as SQS keeps a group's order.
    If this fails they come back after the visibility timeout, later but in order."""
    for record in records:
        with suppress(Exception):
            defer(record.receipt_handle, 0)


def lag_seconds(changed_at: Any, now: datetime | None = None) -> float | None:
    """Seconds from the change (the document's `changed_at`) to now; None when it is unreadable."""
    try:
        when = datetime.fromisoformat(str(changed_at).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - when).total_seconds())


def count_delivered(metrics: Metrics, changed_at: Any) -> None:
    metrics.add_metric("OutboundDelivered", MetricUnit.Count, 1)
    lag = lag_seconds(changed_at)
    if lag is not None:
        metrics.add_metric("OutboundLagSeconds", MetricUnit.Seconds, lag)


def retry_later(
    metrics: Metrics,
    logger: Logger,
    defer: Callable[[str, int], None],
    destination: str,
    record: SQSRecord,
    reason: str,
    backoff: Backoff,
) -> None:
    """Push the message's next attempt out (exponential backoff with jitter); the caller re-raises
    so the message is reported failed. `reason` must not carry personal data or secrets."""
    delay = backoff.seconds(int(record.attributes.approximate_receive_count or 1))
    try:
        defer(record.receipt_handle, delay)
    except Exception:
        logger.warning("could not defer the message", extra={"destination": destination})
    metrics.add_metric("OutboundFailed", MetricUnit.Count, 1)
    logger.info(
        "delivery failed; retrying later",
        extra={"destination": destination, "reason": reason, "delay": delay},
    )
