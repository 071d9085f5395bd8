"""SQS batches of canonical events through the sync core, in stages, with partial batch failures.

The batch's identity read happens before the records are processed (one read for all of them),
each record then makes its own conditional write on a worker thread, and the evidence of the
whole batch is written after (see services/sync.py). Records whose evidence could not be
written are reported failed with the others: the queue delivers them again, harmlessly."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from scrm_sync.bootstrap import sync
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.entrypoints.batch import ConcurrentBatchProcessor, canonical_identity
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown
from scrm_sync.services.sync import EvidenceNotWritten, SyncBatch

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = ConcurrentBatchProcessor(EventType.SQS, logger, workers=8)
metrics_lock = threading.Lock()  # records are processed on several threads
by_source = SourceBreakdown()


class Invocation:
    """The batch being processed: Lambda runs one invocation per execution environment at a
    time, so the records' worker threads share it through this module."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events: dict[str, CanonicalEvent] = {}  # message id -> its body, for those that parse
        self.staged: SyncBatch | None = None
        # the batch's metrics, added once at its end (Powertools' add_metric is not cheap)
        self.counts: Counter[str] = Counter()
        self.lags_ms: list[float] = []


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
    outcome = current.staged.apply(event)
    lag_ms = (datetime.now(UTC) - event.occurred_at).total_seconds() * 1000
    # a redelivered event finds every field version already there: counted, not an error
    duplicate = bool(outcome.duplicates) and not outcome.applied and not outcome.created
    with metrics_lock:
        current.counts.update(
            EventsSynced=1,
            ProfilesCreated=int(outcome.created),
            FieldConflicts=len(outcome.conflicts),
            ProfilesMerged=len(outcome.merged),
            EventsDuplicate=int(duplicate),
            ProfileItemFull=int(bool(outcome.too_large)),
        )
        current.lags_ms.append(max(lag_ms, 0.0))
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
    current.events = parse_records(event.get("Records", []))
    current.staged = sync().batch(list(current.events.values()))  # one identity read for all
    try:
        response: dict[str, Any] = dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
        failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        try:
            current.staged.finish()
        except EvidenceNotWritten as exc:
            logger.warning(
                "evidence not written; the batch's events will be retried",
                extra={"events": len(exc.event_keys), "error": type(exc.__cause__).__name__},
            )
            unwritten = {
                message_id
                for message_id, parsed in current.events.items()
                if parsed.idempotency_key in exc.event_keys and message_id not in failed_ids
            }
            failed_ids |= unwritten
            response["batchItemFailures"] = [
                *response.get("batchItemFailures", []),
                *({"itemIdentifier": message_id} for message_id in sorted(unwritten)),
            ]
        for name, count in sorted(current.counts.items()):
            if count:
                metrics.add_metric(name, MetricUnit.Count, count)
        for lag_ms in current.lags_ms:
            metrics.add_metric("SyncLag", MetricUnit.Milliseconds, lag_ms)
    finally:
        current.reset()
    if failed_ids:
        metrics.add_metric("EventsFailed", MetricUnit.Count, len(failed_ids))
        for record in event.get("Records", []):
            if record.get("messageId") in failed_ids:
                source = canonical_identity(record.get("body")).get("source", "unreadable")
                by_source.count(source, "EventsFailed")
    by_source.flush()
    return response
