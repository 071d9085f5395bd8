"""Health scores from edge gateways (DeviceHealthStream: IoT Core's topic rule and POST
/devices/health write there, partitioned by device) into each device's history and state, and the
zone changes into the owner's timeline. Records run one by one in shard order, so a device's
scores apply in window order. A record that is not a valid score is kept in the landing bucket's
quarantine and skipped (retrying cannot fix it); any other failure fails the record and Lambda
retries the shard from it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import device_health, landing
from scrm_sync.entrypoints.batch import InOrderBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.device_health import MalformedScore, ScoreOutcome, outcome_counts

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = InOrderBatchProcessor(EventType.KinesisDataStreams, logger)
outcomes: list[ScoreOutcome] = []  # of the batch being handled (one invocation at a time)


def record_handler(record: KinesisStreamRecord) -> None:
    data = record.kinesis.data_as_bytes()
    try:
        report = device_health().parse(data)
    except MalformedScore as exc:
        device, position = record.kinesis.partition_key[:128], record.kinesis.sequence_number
        key = f"quarantine/devices/stream/{device}/{position}.json"
        landing().put(key, data, {"reason": str(exc)[:200]})
        metrics.add_metric("DeviceScoresMalformed", MetricUnit.Count, 1)
        logger.error("malformed device health score quarantined", extra={"reason": str(exc), "key": key})
        return
    logger.thread_safe_append_keys(device=report.device_id, window_start=report.window_key)
    outcome = device_health().apply(report)
    outcomes.append(outcome)
    if outcome.zone_change is not None:
        logger.info(
            "device zone changed",
            extra={
                "from": outcome.zone_change[0],
                "to": outcome.zone_change[1],
                "service": outcome.service_needed,
            },
        )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes.clear()
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    for name, value in outcome_counts(outcomes).items():
        metrics.add_metric(name, MetricUnit.Count, value)
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric("DeviceScoresFailed", MetricUnit.Count, failures)
    return dict(response)
