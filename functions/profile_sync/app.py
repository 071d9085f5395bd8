"""SQS batches of canonical events through the sync core, in stages, with partial batch failures.

The batch's identity read happens before the records are processed (one read for all of them),
each record then makes its own conditional write on a worker thread, and the evidence of the
whole batch is written after (see services/sync.py). Records whose evidence could not be
written are reported failed with the others: the queue delivers them again, harmlessly."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from scrm_sync.bootstrap import late_arrivals, sync
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor, canonical_identity
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown
from scrm_sync.entrypoints.staged_sync import StagedInvocation, with_failures

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.SQS, logger, workers=8)
by_source = SourceBreakdown()


class Invocation:
    """The batch being processed, shared by the records' worker threads (Lambda runs one
    invocation per execution environment at a time)."""

    events: dict[str, CanonicalEvent]  # message id -> its body, for the bodies that parse
    staged: StagedInvocation | None = None


current = Invocation()


def parse_records(records: list[dict[str, Any]]) -> dict[str, CanonicalEvent]:
    events = {}
    for record in records:
        try:
            events[str(record["messageId"])] = CanonicalEvent.model_validate_json(record["body"])
        except (ValidationError, KeyError, TypeError):
            continue  # its record handler raises the same error, logged in the record's context
    return events


def record_handler(record: SQSRecord) -> None:
    event = current.events.get(record.message_id) or CanonicalEvent.model_validate_json(record.body)
    if current.staged is None:
        raise RuntimeError("record handler called outside lambda_handler")
    current.staged.apply(event, by_source)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    current.events = parse_records(event.get("Records", []))
    current.staged = StagedInvocation(sync(), list(current.events.values()), logger)
    try:
        partial = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        unwritten = current.staged.finish(
            {message_id: [parsed.idempotency_key] for message_id, parsed in current.events.items()}
        )
        response = with_failures(partial, unwritten)
        current.staged.add_metrics(metrics)
        current.staged.note_late_arrivals(late_arrivals, ["raw/events/"])  # POST /events landing
    finally:
        current.events, current.staged = {}, None
    failed_ids = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    if failed_ids:
        metrics.add_metric("EventsFailed", MetricUnit.Count, len(failed_ids))
        for record in event.get("Records", []):
            if record.get("messageId") in failed_ids:
                source = canonical_identity(record.get("body")).get("source", "unreadable")
                by_source.count(source, "EventsFailed")
    by_source.flush()
    return response
