"""SQS batches of canonical events through the sync core, with partial batch failures."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import container
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(event_type=EventType.SQS, workers=8)
metrics_lock = threading.Lock()  # records are processed on several threads


def record_handler(record: SQSRecord) -> None:
    event = CanonicalEvent.model_validate_json(record.body)
    outcome = container().sync.apply(event)
    lag_ms = (datetime.now(UTC) - event.occurred_at).total_seconds() * 1000
    with metrics_lock:
        metrics.add_metric("EventsSynced", MetricUnit.Count, 1)
        metrics.add_metric("SyncLag", MetricUnit.Milliseconds, max(lag_ms, 0.0))
        if outcome.created:
            metrics.add_metric("ProfilesCreated", MetricUnit.Count, 1)
        if outcome.conflicts:
            metrics.add_metric("FieldConflicts", MetricUnit.Count, len(outcome.conflicts))
        if outcome.merged:
            metrics.add_metric("ProfilesMerged", MetricUnit.Count, len(outcome.merged))
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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    container()  # build the adapters once, before the worker threads share them
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric("EventsFailed", MetricUnit.Count, failures)
    return dict(response)
