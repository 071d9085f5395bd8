"""CloudWatch alarm notifications to the operations team's WeCom group robot.

In AWS the alarm topic delivers to AlarmQueue (raw message delivery off: each body is the SNS
envelope) and SQS batches arrive here; alarms that could not be posted (robot limit reached,
robot failing) are reported as batch item failures, come back after the visibility timeout, and
after maxReceiveCount wait in the alarm dead-letter queue. A plain SNS event (Records[].Sns) is
accepted too, for `scrm invoke` and a direct subscription; then any failure fails the invocation.
Logs carry counts and message ids, never the robot's URL.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import alarms
from scrm_sync.entrypoints.batch import RecordBatchProcessor
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.services.alarms import ForwardReport, Notification

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()
processor = RecordBatchProcessor(EventType.SQS, logger)


class AlarmsNotForwarded(RuntimeError):
    """Some alarms could not be posted (retried by the queue, or by Lambda for SNS events)."""


def sns_message(record: SQSRecord) -> str:
    """The SNS Message an SQS record carries (its body is the SNS envelope), or the body itself
    when the subscription uses raw message delivery."""
    try:
        envelope = json.loads(record.body)
    except ValueError:
        return record.body
    if isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "Message" in envelope:
        return record.decoded_nested_sns_event.message
    return record.body


def forward(notifications: list[Notification], context: LambdaContext) -> ForwardReport:
    report = alarms().forward(notifications, time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    for name, value in (
        ("AlarmsReceived", len(notifications)),
        ("AlarmPosts", report.posts),
        ("AlarmsGrouped", len(report.grouped)),
        ("AlarmsDeferred", len(report.deferred)),
        ("AlarmsUndelivered", len(report.undelivered)),
        ("AlarmsUnparseable", len(report.not_alarms)),
    ):
        metrics.add_metric(name, MetricUnit.Count, value)
    if report.failed:
        logger.warning("some alarms not forwarded; they will be retried", extra=report.as_log())
    else:
        logger.info("alarms forwarded", extra=report.as_log())
    return report


def fail_unless_forwarded(record: SQSRecord, failed: frozenset[str], problem: str) -> None:
    """The record handler: the alarms were forwarded together, each record reports its own."""
    if record.message_id in failed:
        raise AlarmsNotForwarded(problem)


def forward_sqs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = [SQSRecord(raw) for raw in event["Records"]]
    report = forward([Notification(r.message_id, sns_message(r)) for r in records], context)
    record_handler = partial(fail_unless_forwarded, failed=frozenset(report.failed), problem=report.problem)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


def forward_sns(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = list(SNSEvent(event).records)
    report = forward([Notification(r.sns.message_id, r.sns.message) for r in records], context)
    if report.failed:
        raise AlarmsNotForwarded(f"{len(report.failed)} of {len(records)} alarms: {report.problem}")
    return {"posts": report.posts, "alarms": len(records)}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and "Sns" in records[0]:
        return forward_sns(event, context)
    return forward_sqs(event, context)
