"""SQS batches of canonical events through the sync core, with partial batch failures."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import sync
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor, canonical_identity
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.SQS, logger, workers=8)
metrics_lock = threading.Lock()  # records are processed on several threads
by_source = SourceBreakdown()


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEvent.model_validate_json(record.body)
    outcome = sync().apply(event)
    lag_ms = (datetime.now(UTC) - event.occurred_at).total_seconds() * 1000
    # a redelivered event finds every field version already there: counted, not an error
    duplicate = bool(outcome.duplicates) and not outcome.applied and not outcome.created
    with metrics_lock:
        metrics.add_metric("EventsSynced", MetricUnit.Count, 1)
        metrics.add_metric("SyncLag", MetricUnit.Milliseconds, max(lag_ms, 0.0))
        if outcome.created:
            metrics.add_metric("ProfilesCreated", MetricUnit.Count, 1)
        if outcome.conflicts:
            metrics.add_metric("FieldConflicts", MetricUnit.Count, len(outcome.conflicts))
        if outcome.merged:
            metrics.add_metric("ProfilesMerged", MetricUnit.Count, len(outcome.merged))
        if duplicate:
            metrics.add_metric("EventsDuplicate", MetricUnit.Count, 1)
        if outcome.too_large:
            metrics.add_metric("ProfileItemFull", MetricUnit.Count, 1)
    by_source.count(event.source, "EventsSynced")
    by_source.count(event.source, "FieldConflicts", len(outcome.conflicts))
    by_source.count(event.source, "ProfilesMerged", len(outcome.merged))
    by_source.count(event.source, "EventsDuplicate", int(duplicate))
    by_source.lag(event.source, lag_ms)
    if outcome.too_large:
        # the event is done (links, evidence, timeline); only these fields could not be stored
        logger.warning(
            "profile item at DynamoDB's size limit: fields not stored",
            extra={
                "event": event.idempotency_key,
                "profile_id": outcome.profile_id,
                "fields": outcome.too_large,
            },
        )
    logger.debug(
        "event synced",
        extra={
            "event": event.idempotency_key,
            "profile_id": outcome.profile_id,
            "applied": outcome.applied,
            "conflicts": len(outcome.conflicts),
            "merged": outcome.merged,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sync()  # build the use case once, before the worker threads share it
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    if failed_ids:
        metrics.add_metric("EventsFailed", MetricUnit.Count, len(failed_ids))
        for record in event.get("Records", []):
            if record.get("messageId") in failed_ids:
                source = canonical_identity(record.get("body")).get("source", "unreadable")
                by_source.count(source, "EventsFailed")
    by_source.flush()
    return dict(response)
