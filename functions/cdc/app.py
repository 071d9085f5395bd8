"""Kinesis batches of AWS DMS row changes (MySQL binlog) through the table mappings into the sync
core. Records run one by one in shard order: a row's changes must apply in their source order.
A record that is not a readable change is logged and skipped, so a poison record never blocks
its shard; any other failure fails the record and Lambda retries the shard from it."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import cdc
from scrm_sync.domain.cdc import ControlChange, MalformedChange, RowChange, decode_dms
from scrm_sync.entrypoints.batch import InOrderBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.observability import SourceBreakdown
from scrm_sync.services.cdc import CdcOutcome

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
# in order; every log line of a record names its shard and sequence number
processor = InOrderBatchProcessor(EventType.KinesisDataStreams, logger)
by_table = SourceBreakdown()  # the "source" of a change is its table


def record_handler(record: KinesisStreamRecord) -> None:
    try:
        change = decode_dms(record.kinesis.data_as_bytes(), fallback_position=record.kinesis.sequence_number)
        logger.thread_safe_append_keys(table=change.table_key)  # for this record's lines only
        outcome = cdc().apply(change)
    except (MalformedChange, binascii.Error) as exc:
        # retrying cannot fix it; the record stays in the stream for its retention period
        metrics.add_metric("CdcMalformed", MetricUnit.Count, 1)
        # the processor's record keys name its shard and sequence number
        logger.error("malformed CDC record skipped", extra={"reason": str(exc)})
        return
    _report(change, outcome)


def _report(change: RowChange | ControlChange, outcome: CdcOutcome) -> None:
    """Metrics and a log line per change: table, operation and source position, never row values
    (nor event ids, which carry the row's primary key)."""
    if outcome.control is not None:
        metrics.add_metric("CdcControlRecords", MetricUnit.Count, 1)
        # a mapped table's columns may no longer match its mapping: that is worth a warning
        log = logger.warning if outcome.mapped else logger.info
        log(
            "source table definition changed",
            extra={
                "table": outcome.table_key,
                "operation": change.operation,
                "position": change.position,
                "mapped": outcome.mapped,
                "detail": dict(outcome.control.detail),  # the table definition: names and types
            },
        )
        return
    if outcome.skipped:
        metrics.add_metric("CdcChangesSkipped", MetricUnit.Count, 1)
        logger.debug("change of an unmapped table skipped", extra={"table": outcome.table_key})
        return
    if outcome.replayed:
        metrics.add_metric("CdcChangesReplayed", MetricUnit.Count, 1)  # applied before: skipped
        return
    metrics.add_metric("CdcChangesApplied", MetricUnit.Count, 1)
    lag_ms = (datetime.now(UTC) - change.committed_at).total_seconds() * 1000
    metrics.add_metric("SyncLag", MetricUnit.Milliseconds, max(lag_ms, 0.0))
    by_table.count(change.table_key, "CdcChangesApplied")
    by_table.lag(change.table_key, lag_ms)
    context = {"table": outcome.table_key, "operation": change.operation, "position": change.position}
    if outcome.unlinkable:
        metrics.add_metric("CdcUnlinkable", MetricUnit.Count, len(outcome.unlinkable))
        logger.warning("change names no identifier that can link a profile", extra=context)
    if outcome.field_errors:
        logger.warning(
            "change applied without unusable values",
            extra={**context, "field_errors": list(outcome.field_errors)},  # paths, not values
        )
    logger.debug(
        "change applied", extra={**context, "events": len(outcome.applied), "unchanged": outcome.unchanged}
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric("CdcChangesFailed", MetricUnit.Count, failures)
    by_table.flush()
    return dict(response)
