"""Kinesis batches of webhook pushes (one record per push, written by WebhookFunction) into the
sync core; the same records reach the landing bucket through the Firehose delivery stream.

Records are independent (the sync core's result does not depend on order or concurrency), so a
batch's records overlap on a few threads; a record whose events fail is reported and Lambda
retries from it (events already applied are duplicates then: no effect). A record that is not a
push record cannot succeed later: it is counted and skipped, and its raw push is in the landing
bucket for `scrm replay`. Enrichment requests travel in the record and go to the enrichment queue
from here, after the platform's ack.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import enrichment_queue, sync
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown
from scrm_sync.services.ingest import QueueUnavailable
from scrm_sync.services.push_records import read_push_events

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.KinesisDataStreams, logger, workers=8)
metrics_lock = threading.Lock()  # records are processed on several threads
by_source = SourceBreakdown()


def record_handler(record: KinesisStreamRecord) -> None:
    try:
        push = read_push_events(record.kinesis.data_as_bytes())
    except ValueError as exc:  # not base64, not JSON, not a push record: retrying cannot fix it
        with metrics_lock:
            metrics.add_metric("WebhookRecordsMalformed", MetricUnit.Count, 1)
        logger.error("malformed webhook record skipped", extra={"reason": type(exc).__name__})
        return
    logger.thread_safe_append_keys(channel=push.channel, request_id=push.request_id)
    for event in push.events:
        try:
            outcome = sync().apply(event)
        except Exception:
            with metrics_lock:
                metrics.add_metric("EventsFailed", MetricUnit.Count, 1)
            by_source.count(event.source, "EventsFailed")
            raise
        lag_ms = (datetime.now(UTC) - event.occurred_at).total_seconds() * 1000
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
        by_source.count(event.source, "EventsDuplicate", int(duplicate))
        by_source.lag(event.source, lag_ms)
        if outcome.too_large:
            logger.warning(
                "profile item at DynamoDB's size limit: fields not stored",
                extra={"event": event.idempotency_key, "fields": outcome.too_large},
            )
    if push.enrichments:
        requests = [(str(i), json.dumps(r)) for i, r in enumerate(push.enrichments)]
        if enrichment_queue().send(requests):  # sent again on the retry: harmless
            raise QueueUnavailable("enrichment requests could not be enqueued")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sync()  # build the use case once, before the worker threads share it
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric("WebhookRecordsFailed", MetricUnit.Count, failures)
    by_source.flush()
    return dict(response)
