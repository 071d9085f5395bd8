"""Scheduled erasure run (services/erasure.py): every pending erasure through every store, the
landing bucket in one pass for all of them (resumed by the next run when this one ends first).
A store that fails is retried by the next run; `GET /erasures/{id}` shows each store's status."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import erasure_run
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = erasure_run().run(lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric("ErasuresCompleted", MetricUnit.Count, report.completed)
    metrics.add_metric("ErasureStoresFailed", MetricUnit.Count, sum(report.failed_stores.values()))
    summary = report.as_dict()
    if report.failed_stores:
        logger.warning("erasure stores failed; the next run retries them", extra={"erasure": summary})
    else:
        logger.info("erasure run", extra={"erasure": summary})
    return summary
