"""InventoryTable stream -> marketplace listings: each change of what a channel allocation may
sell is pushed to its marketplace as an incremental, idempotent update (services/stock_push.py).

Records stay in order per balance (one stream shard key each); a push the platform refuses for
good is counted and logged, and the stream moves on; a transient failure fails the record, which
Lambda retries (then bisects, then hands to StockPushFailureQueue). The idempotency key comes
from the stream record (and, for Youzan, the claim from its sequence number), so a retried push
is applied once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.dynamodb_inventory import balance_images
from scrm_sync.bootstrap import stock_push
from scrm_sync.entrypoints.batch import InOrderBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.ports import MarketplaceRejected

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = InOrderBatchProcessor(EventType.DynamoDBStreams, logger)


def record_handler(record: DynamoDBRecord) -> None:
    images = balance_images(record.raw_event)
    if images is None:
        return
    old, new = images
    try:
        sequence = int(record.dynamodb.sequence_number or 0) if record.dynamodb else 0
        outcome = stock_push().apply(old, new, str(record.event_id), sequence)
    except MarketplaceRejected as exc:
        metrics.add_metric("StockPushRejected", MetricUnit.Count, 1)
        logger.error("the marketplace refused a stock push", extra={"reason": str(exc)[:200]})
        return
    if outcome in ("pushed", "set"):
        metrics.add_metric("StockPushed", MetricUnit.Count, 1)
    if outcome == "set":  # an earlier push's outcome was unknown: the listing was set, not added to
        metrics.add_metric("StockPushSetAbsolute", MetricUnit.Count, 1)
    elif outcome in ("no_listing", "no_account"):
        metrics.add_metric("StockPushSkipped", MetricUnit.Count, 1)
        current = new or old
        logger.warning(
            "channel stock changed but cannot be pushed",
            extra={"reason": outcome, "location": current.location if current else None},
        )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
