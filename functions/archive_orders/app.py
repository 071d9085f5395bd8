"""Scheduled archive of old orders: orders dated more than ARCHIVE_AFTER_DAYS (default 90) days
ago move from the orders table to the archive bucket (services/archive.py). A run cut short by
the deadline, or by a failure, is continued by the next one from its checkpoint.

Logs and metrics carry counts and object keys, never order contents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import archive, settings
from scrm_sync.domain.orders import archive_cutoff
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.settings import ArchiveSettings

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


class ArchiveRunFailed(RuntimeError):
    """A batch could not be archived: fail the invocation so the archive-failure alarm fires.
    Nothing unarchived was deleted; the next run finishes the batch from the checkpoint."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cutoff = archive_cutoff(datetime.now(UTC).date(), settings(ArchiveSettings).archive_after_days)
    report = archive().run(cutoff, lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric("OrdersArchived", MetricUnit.Count, report.orders_archived)
    metrics.add_metric("ArchiveBatches", MetricUnit.Count, report.batches)
    metrics.add_metric("ArchiveFailures", MetricUnit.Count, report.failures)
    details = report.as_log()
    if report.failures:
        logger.error("order archive failed", extra=details)
        raise ArchiveRunFailed(report.error or "archive run failed")
    if report.stopped in ("deadline", "busy"):
        logger.warning("order archive stopped early", extra=details)
    else:
        logger.info("order archive", extra=details)
    return details
