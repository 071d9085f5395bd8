"""Promotion mode on and off: from the promotion's schedules (`{"mode": "promotion" | "normal"}`)
or from InventorySurgeAlarm through PromotionTopic (ALARM: on; OK: off). Changes the inventory
and profile lanes' event sources in place (services/promotion.py); the mode in force is the
`InventoryPromotionMode` metric (1 or 0)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import promotion_mode
from scrm_sync.domain.promotion import mode_of
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    mode = mode_of(event)
    if mode is None:
        logger.info("no mode asked for (e.g. the alarm has no data yet): nothing changed")
        return {"mode": None}
    applied = promotion_mode().switch(mode)
    metrics.add_metric("InventoryPromotionMode", MetricUnit.Count, 1 if mode == "promotion" else 0)
    settings = {lane: {k: v for k, v in asdict(s).items() if v is not None} for lane, s in applied.items()}
    logger.info("lanes switched", extra={"mode": mode, "settings": settings})
    return {"mode": mode, "settings": settings}
