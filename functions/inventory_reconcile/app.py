"""Scheduled reconciliation: every source's latest stock snapshot against the ledger. Publishes
the share of SKU/location pairs that differ (overall, and per location) as InventoryDifferencePercent;
the InventoryDifferenceAlarm fires above 0.3 %. Corrections, where the rules allow them, are count
events in the movement history (services/reconciliation.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import reconciliation
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = reconciliation().run()
    if run.overall.compared:
        metrics.add_metric("InventoryDifferencePercent", MetricUnit.Percent, run.overall.difference_percent)
        metrics.add_metric(
            "InventoryUnitDifferencePercent", MetricUnit.Percent, run.overall.unit_difference_percent
        )
    metrics.add_metric("InventoryCorrections", MetricUnit.Count, run.corrected)
    for location, compared in run.by_location.items():
        with single_metric(
            name="InventoryDifferencePercent",
            unit=MetricUnit.Percent,
            value=compared.difference_percent,
            namespace=metrics.namespace,
        ) as metric:
            metric.add_dimension("Location", location)
    report = run.to_dict()
    if run.overall.differences:
        logger.warning("stock differs from the sources", extra={"reconciliation": report})
    else:
        logger.info("stock matches the sources", extra={"compared": run.overall.compared})
    return report
