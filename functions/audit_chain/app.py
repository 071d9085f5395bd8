"""Profiles table stream -> per-profile tamper-evident audit chain (and, when an erasure deletes
a profile, the erasure's entry and the removal of the chain's content; services/audit.py).

Stream records of one profile arrive in order; they are chained strictly in that order: the
first failure stops the batch (InOrderBatchProcessor) and it and every later record are reported,
so Lambda retries from there and nothing after it is chained early. Redelivered records are
recognized by their stream position and skipped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.dynamo_codec import from_item
from scrm_sync.adapters.dynamodb import PROFILE_SK
from scrm_sync.bootstrap import audit
from scrm_sync.domain.audit import ERASED, profile_changes
from scrm_sync.entrypoints.batch import InOrderBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = InOrderBatchProcessor(EventType.DynamoDBStreams, logger)


def record_handler(record: DynamoDBRecord) -> None:
    stream = record.raw_event["dynamodb"]  # the wire format, which from_item reads
    keys = from_item(stream.get("Keys", {}))
    if keys.get("sk") != PROFILE_SK:
        return  # event evidence items are not profile changes
    profile_id = str(keys["pk"])
    logger.thread_safe_append_keys(profile_id=profile_id)  # for this record's lines only
    changes = profile_changes(from_item(stream.get("OldImage", {})), from_item(stream.get("NewImage", {})))
    trail = audit()
    for index, change in enumerate(changes):
        if change["kind"] == ERASED:  # the profile was erased: record it, remove the content
            redacted = trail.erase(profile_id, change)
            metrics.add_metric("AuditEntriesRedacted", MetricUnit.Count, len(redacted))
        else:
            trail.record(profile_id, change, f"{stream['SequenceNumber']}/{index:03d}")
    metrics.add_metric("AuditEntriesAppended", MetricUnit.Count, len(changes))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    if response.get("batchItemFailures"):
        metrics.add_metric("AuditAppendFailed", MetricUnit.Count, 1)  # in order: one failed, the rest wait
    return dict(response)
