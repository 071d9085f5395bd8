"""Profiles table stream -> per-profile tamper-evident audit chain.

Stream records of one profile arrive in order; they are chained strictly in that order: the
first failure stops the batch and is reported, so Lambda retries from there and nothing after it
is chained early. Redelivered records are recognized by their stream position and skipped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.dynamo_codec import from_item
from scrm_sync.adapters.dynamodb import PROFILE_SK
from scrm_sync.bootstrap import container
from scrm_sync.domain.audit import profile_changes
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def chain_record(record: dict[str, Any]) -> int:
    stream = record["dynamodb"]
    keys = from_item(stream.get("Keys", {}))
    if keys.get("sk") != PROFILE_SK:
        return 0  # event evidence items are not profile changes
    changes = profile_changes(from_item(stream.get("OldImage", {})), from_item(stream.get("NewImage", {})))
    trail = container().audit
    for index, change in enumerate(changes):
        trail.record(str(keys["pk"]), change, f"{stream['SequenceNumber']}/{index:03d}")
    return len(changes)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    chained = 0
    for record in event.get("Records", []):
        try:
            chained += chain_record(record)
        except Exception:
            logger.exception("audit append failed", extra={"event_id": record.get("eventID")})
            metrics.add_metric("AuditAppendFailed", MetricUnit.Count, 1)
            # stop here: Lambda retries from this record, keeping each profile's chain in order
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    metrics.add_metric("AuditEntriesAppended", MetricUnit.Count, chained)
    return {"batchItemFailures": []}
