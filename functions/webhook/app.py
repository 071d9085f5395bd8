"""POST/GET /webhooks/{channel}: verify the platform's signature, map, write the push to the ingest
stream (one PutRecord: Firehose lands it raw in S3, WebhookSyncFunction syncs it), ack fast."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import webhooks
from scrm_sync.channels.base import WebhookRequest
from scrm_sync.domain.config_documents import NoValidConfiguration
from scrm_sync.entrypoints.http import raw_body
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.ingest import QueueUnavailable

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    http = APIGatewayProxyEventV2(event)
    channel = (http.path_parameters or {}).get("channel", "")
    request = WebhookRequest(
        channel=channel,
        method=http.request_context.http.method.upper(),
        headers={k.lower(): v for k, v in (http.headers or {}).items()},
        query=http.query_string_parameters or {},
        body=raw_body(http),
        received_at=datetime.now(UTC),
        request_id=http.request_context.request_id,
    )
    try:
        reply = webhooks().handle(request)
    except QueueUnavailable:  # StreamUnavailable: the ingest stream did not take the push's record
        logger.exception("webhook push not accepted by the ingest stream", extra={"channel": channel})
        # nothing was acked; a 503 makes the platform retry, and retries are harmless
        return {"statusCode": 503, "headers": {"content-type": "text/plain"}, "body": "retry later"}
    except NoValidConfiguration as exc:
        # no valid channels or rules document yet: the platform retries once it is fixed
        logger.error("no valid configuration", extra={"channel": channel, "error": str(exc)})
        return {"statusCode": 503, "headers": {"content-type": "text/plain"}, "body": "retry later"}
    metrics.add_dimension("channel", channel if reply.status != 404 else "unknown")
    metrics.add_metric("WebhooksReceived", MetricUnit.Count, 1)
    if reply.status >= 400:
        metrics.add_metric("WebhooksRejected", MetricUnit.Count, 1)
    if reply.drift_kinds:
        metrics.add_metric("SchemaDrift", MetricUnit.Count, len(reply.drift_kinds))
        logger.warning("schema drift", extra={"channel": channel, "kinds": list(reply.drift_kinds)})
    if reply.unmappable:
        # authentic, landed and acked, but (partly) not mapped: listed by `scrm mapping-failures`
        metrics.add_metric("WebhooksUnmappable", MetricUnit.Count, reply.unmappable)
        service_total = EphemeralMetrics()  # without the channel dimension: one series to alarm on
        service_total.add_metric("WebhooksUnmappable", MetricUnit.Count, reply.unmappable)
        service_total.flush_metrics()
    # one line per push would cost more CloudWatch Logs ingestion than the push's own compute at
    # peak: the metrics count every push, the log keeps the ones that were refused
    if reply.status >= 400:
        logger.warning("webhook refused", extra={"channel": channel, "status": reply.status})
    else:
        logger.debug("webhook answered", extra={"channel": channel, "status": reply.status})
    return {"statusCode": reply.status, "headers": {"content-type": reply.content_type}, "body": reply.body}
