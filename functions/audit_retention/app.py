"""Daily audit retention sweep: the content of audit entries older than AuditRetentionDays is
removed, recorded in each chain by an `expired` entry, and the chains stay verifiable (their
digests stay; services/audit.py). AuditRetentionDays 0 keeps the content for the profile's life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import audit, settings
from scrm_sync.entrypoints.logging import pii_safe_logger
from scrm_sync.settings import AuditRetentionSettings

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    days = settings(AuditRetentionSettings).audit_retention_days
    if not days:
        return {"retention_days": 0, "redacted": 0}
    before = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    redacted = audit().expire_all(before)
    metrics.add_metric("AuditEntriesExpired", MetricUnit.Count, redacted)
    logger.info("audit retention sweep", extra={"before": before, "redacted": redacted})
    return {"retention_days": days, "before": before, "redacted": redacted}
