"""Profiles and identity table streams -> change documents -> the destination queues.

Each stream record becomes at most one change document per profile it touches
(domain/change_feed.py); the feed enqueues it for every destination that wants it
(services/change_feed.py). A record whose messages could not all be enqueued is reported with
every later one, so Lambda retries from it; records enqueued twice are deduplicated by the FIFO
queues and, after their window, by the destinations (the document id stays the same).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.dynamo_codec import from_item
from scrm_sync.adapters.dynamodb import PROFILE_SK
from scrm_sync.bootstrap import change_feed
from scrm_sync.domain.change_feed import identity_documents, profile_document
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def documents_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    stream = record.get("dynamodb") or {}
    keys = from_item(stream.get("Keys", {}))
    sequence = str(stream.get("SequenceNumber", ""))
    created = stream.get("ApproximateCreationDateTime")
    changed_at = datetime.fromtimestamp(float(created), UTC) if created is not None else datetime.now(UTC)
    old, new = from_item(stream.get("OldImage", {})), from_item(stream.get("NewImage", {}))
    if "identifier_key" in keys:
        return identity_documents(sequence, changed_at, old, new)
    if keys.get("sk") != PROFILE_SK:
        return []  # event evidence beside the profile item: not a profile change
    document = profile_document(str(keys["pk"]), sequence, changed_at, old, new)
    return [document] if document else []


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    keyed: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        keyed.extend((sequence, document) for document in documents_of(record))
    failed = change_feed().publish(keyed) if keyed else set()
    metrics.add_metric("ChangeDocuments", MetricUnit.Count, len(keyed))
    if not failed:
        return {"batchItemFailures": []}
    # in stream order: the first record that failed and everything after it is retried
    sequences = [str((r.get("dynamodb") or {}).get("SequenceNumber", "")) for r in records]
    first = min(sequences.index(sequence) for sequence in failed)
    metrics.add_metric("ChangeFeedEnqueueFailed", MetricUnit.Count, len(sequences) - first)
    logger.warning(
        "change documents could not be enqueued; retrying", extra={"records": len(sequences) - first}
    )
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sequences[first:]]}
