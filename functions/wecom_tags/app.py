"""Profile changes -> WeCom corp tags on every member who follows the customer.

Each message names a profile whose tags may need writing (the change feed, FIFO per profile);
the writer reads the profile as it is now and applies the difference from what it last wrote
(services/wecom_tags.py), so duplicates and stale messages make no call. WeCom down, its limits
or the corp's send budget: the message is retried with backoff, then dead-lettered. A request
WeCom rejects for good (the member or contact is gone) is counted and dropped.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.wecom_api import WeComRejected
from scrm_sync.bootstrap import outbox, retry_backoff, wecom_tag_sync
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.outbound import count_delivered, deliver_in_order, retry_later
from scrm_sync.services.change_feed import WECOM_TAGS

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def _defer(receipt: str, delay: int) -> None:
    outbox().defer(WECOM_TAGS, receipt, delay)


def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    try:
        report = wecom_tag_sync().sync(str(message["profile_id"]))
    except WeComRejected as exc:
        metrics.add_metric("OutboundRejected", MetricUnit.Count, 1)
        logger.warning(
            "WeCom rejected the tag write", extra={"errcode": exc.errcode, "delivery": message.get("id")}
        )
        return
    except Exception as exc:
        retry_later(metrics, logger, _defer, WECOM_TAGS, record, type(exc).__name__, retry_backoff())
        raise
    metrics.add_metric("WeComMarkTagCalls", MetricUnit.Count, report.calls)
    count_delivered(metrics, message.get("changed_at"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deliver_in_order(metrics, WECOM_TAGS, record_handler, event, context, _defer)
