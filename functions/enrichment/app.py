"""SQS batches of contact enrichment requests: WeCom's API, then one more canonical event.

A WeCom outage never holds back sync (the push already updated the profile): failed requests
are retried with exponential backoff and jitter (the message's visibility is pushed out), and after the
queue's maxReceiveCount they wait in the dead-letter queue. Rejections (the contact no longer
exists for the corp) cannot succeed later and are counted, not retried.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.adapters.wecom_api import WeComRejected, WeComUnavailable
from scrm_sync.bootstrap import enrichment, enrichment_queue, retry_backoff
from scrm_sync.channels.wecom_contact import ContactEnrichmentRequest
from scrm_sync.entrypoints.batch import RecordBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = RecordBatchProcessor(EventType.SQS, logger)


def record_handler(record: SQSRecord) -> None:
    request = ContactEnrichmentRequest.model_validate_json(record.body)
    try:
        enrichment().enrich(request)
    except WeComRejected as exc:
        metrics.add_metric("EnrichmentRejected", MetricUnit.Count, 1)
        logger.warning(
            "contact enrichment rejected", extra={"event": request.event_id, "errcode": exc.errcode}
        )
        return
    except WeComUnavailable:
        delay = retry_backoff().seconds(int(record.attributes.approximate_receive_count or 1))
        enrichment_queue().defer(record.receipt_handle, delay)
        metrics.add_metric("EnrichmentDeferred", MetricUnit.Count, 1)
        logger.info(
            "WeCom API unavailable; retrying later", extra={"event": request.event_id, "delay": delay}
        )
        raise
    metrics.add_metric("ContactsEnriched", MetricUnit.Count, 1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
