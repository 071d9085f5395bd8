"""Kinesis batches of webhook pushes (one record per push, written by WebhookFunction) into the
sync core; the same records reach the landing bucket through the Firehose delivery stream.

Records are independent (the sync core's result does not depend on order or concurrency), so
the batch goes through the staged sync core like ProfileSyncFunction's (one identity read, one
conditional write per event on a few threads, the evidence last); a record whose events fail is
reported and Lambda retries from it (events already applied are duplicates then: no effect). A
record that is not a push record cannot succeed later: it is counted and skipped, and its raw
push is in the landing bucket for `scrm replay`. Enrichment requests travel in the record and
go to the enrichment queue from here, after the platform's ack.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import enrichment_queue, late_arrivals, sync
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown
from scrm_sync.entrypoints.staged_sync import StagedInvocation, with_failures
from scrm_sync.services.ingest import QueueUnavailable
from scrm_sync.services.push_records import PushEvents, read_push_events

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.KinesisDataStreams, logger, workers=8)
metrics_lock = threading.Lock()  # records are processed on several threads
by_source = SourceBreakdown()


class Invocation:
    """The batch being processed, shared by the records' worker threads (Lambda runs one
    invocation per execution environment at a time)."""

    pushes: dict[str, PushEvents]  # sequence number -> its push, for the records that read
    staged: StagedInvocation | None = None


current = Invocation()


def read_records(records: list[dict[str, Any]]) -> dict[str, PushEvents]:
    pushes = {}
    for raw in records:
        record = KinesisStreamRecord(raw)
        try:
            pushes[record.kinesis.sequence_number] = read_push_events(record.kinesis.data_as_bytes())
        except (ValueError, KeyError, TypeError):
            continue  # its record handler meets the same error and counts it
    return pushes


def record_handler(record: KinesisStreamRecord) -> None:
    push = current.pushes.get(record.kinesis.sequence_number)
    if push is None:
        try:
            push = read_push_events(record.kinesis.data_as_bytes())
        except ValueError as exc:  # not base64, not JSON, not a push record: retrying cannot fix it
            with metrics_lock:
                metrics.add_metric("WebhookRecordsMalformed", MetricUnit.Count, 1)
            logger.error("malformed webhook record skipped", extra={"reason": type(exc).__name__})
            return
    if current.staged is None:
        raise RuntimeError("record handler called outside lambda_handler")
    logger.thread_safe_append_keys(channel=push.channel, request_id=push.request_id)
    for event in push.events:
        try:
            current.staged.apply(event, by_source)
        except Exception:
            with metrics_lock:
                metrics.add_metric("EventsFailed", MetricUnit.Count, 1)
            by_source.count(event.source, "EventsFailed")
            raise
    if push.enrichments:
        requests = [(str(i), json.dumps(r)) for i, r in enumerate(push.enrichments)]
        if enrichment_queue().send(requests):  # sent again on the retry: harmless
            raise QueueUnavailable("enrichment requests could not be enqueued")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    current.pushes = read_records(event.get("Records", []))
    events = [e for push in current.pushes.values() for e in push.events]
    current.staged = StagedInvocation(sync(), events, logger)
    try:
        partial = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        unwritten = current.staged.finish(
            {sequence: [e.idempotency_key for e in push.events] for sequence, push in current.pushes.items()}
        )
        response = with_failures(partial, unwritten)
        current.staged.add_metrics(metrics)
        # the delivery stream's batched layout, and the per-channel one of oversized pushes
        channels = {push.channel for push in current.pushes.values()}
        bases = ["raw/webhooks/", *(f"raw/webhooks/{channel}/" for channel in channels)]
        current.staged.note_late_arrivals(late_arrivals, bases)
    finally:
        current.pushes, current.staged = {}, None
    failures = len(response["batchItemFailures"])
    if failures:
        metrics.add_metric("WebhookRecordsFailed", MetricUnit.Count, failures)
    by_source.flush()
    return response
