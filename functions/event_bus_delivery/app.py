"""Change documents -> `scrm.profile.changed` events on the profile event bus (source
`scrm.sync`), for AWS-native consumers that subscribe with rules.

One PutEvents per ten messages. A failed entry fails its message and the later messages of its
group (they come back together, in order); EventBridge itself does not keep order, the documents'
`sequence` does.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import event_bus, outbox, retry_backoff
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.entrypoints.outbound import count_delivered, release_held_back, retry_later
from scrm_sync.services.change_feed import EVENT_BUS

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


def _defer(receipt: str, delay: int) -> None:
    outbox().defer(EVENT_BUS, receipt, delay)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_dimension("Destination", EVENT_BUS)
    records = [SQSRecord(raw) for raw in event.get("Records") or []]
    failed_indexes = set(event_bus().publish([record.body for record in records]))
    failed_groups: set[str] = set()
    failures, held_back = [], []
    for index, record in enumerate(records):
        group = record.attributes.message_group_id or ""
        if index in failed_indexes or group in failed_groups:
            failed_groups.add(group)
            failures.append({"itemIdentifier": record.message_id})
            if index in failed_indexes:
                retry_later(
                    metrics, logger, _defer, EVENT_BUS, record, "PutEvents entry failed", retry_backoff()
                )
            else:
                held_back.append(record)
        else:
            count_delivered(metrics, json.loads(record.body).get("changed_at"))
    release_held_back(held_back, _defer)
    return {"batchItemFailures": failures}
