"""ArchiveOrdersFunction: the scheduled event in, the archive run on in-memory ports, metrics
out, and a failed run failing the invocation (so the archive-failure alarm fires)."""

from __future__ import annotations

import importlib.util
import json
import types
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrm_sync.adapters.memory import (
    InMemoryArchiveCheckpoints,
    InMemoryArchiveStore,
    InMemoryOrderStore,
)
from scrm_sync.domain.orders import order_state
from scrm_sync.services.archive import ArchiveOrders
from scrm_sync.settings import ArchiveSettings

from tests.archive_support import order_event
from tests.lambda_context import LambdaContext as BaseContext

ROOT = Path(__file__).resolve().parents[3]
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": "123456789012",
    "time": "2026-11-25T03:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/scrm-ArchiveOrders"],
    "detail": {},
}


def LambdaContext() -> BaseContext:
    return BaseContext(
        function_name="scrm-test-ArchiveOrdersFunction", memory_limit_in_mb=1024, remaining_millis=600_000
    )


class DownStore(InMemoryArchiveStore):
    def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
        raise ConnectionError("S3 unreachable")


@pytest.fixture
def handler(monkeypatch):
    """functions/archive_orders/app.py imported afresh inside the test (Powertools binds its
    logger to the stdout capsys sees then), with a use case of in-memory ports."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def use(
        orders: InMemoryOrderStore, store: InMemoryArchiveStore, after_days: int = 90
    ) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(
            "archive_app_under_test", ROOT / "functions/archive_orders/app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        settings = ArchiveSettings.from_env(
            {
                "ORDERS_TABLE": "o",
                "ARCHIVE_BUCKET": "b",
                "CHECKPOINTS_TABLE": "c",
                "ARCHIVE_AFTER_DAYS": str(after_days),
            }
        )
        archive = ArchiveOrders(orders, store, InMemoryArchiveCheckpoints(), batch_orders=2)
        monkeypatch.setattr(module, "settings", lambda model: settings)
        monkeypatch.setattr(module, "archive", lambda: archive)
        return module

    return use


def emitted_metrics(capsys) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" in document:
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = document[definition["Name"]]
                metrics[definition["Name"]] = sum(values) if isinstance(values, list) else values
    return metrics


def orders_aged(*days: int) -> InMemoryOrderStore:
    orders = InMemoryOrderStore()
    now = datetime.now(UTC)  # the handler cuts off from today's date
    for i, age in enumerate(days):
        order = order_state(order_event(f"T{i}", created=now - timedelta(days=age)), "p-1")
        assert order is not None
        orders.upsert(order)
    return orders


def test_a_scheduled_run_archives_orders_older_than_the_configured_days(handler, capsys):
    orders = orders_aged(200, 150, 95, 60, 10)
    store = InMemoryArchiveStore()
    response = handler(orders, store, after_days=90).lambda_handler(SCHEDULED_EVENT, LambdaContext())

    assert response["orders_archived"] == 3 and response["stopped"] == "done"
    assert sum(item.live for item in orders.items.values()) == 2
    assert emitted_metrics(capsys) == {"OrdersArchived": 3.0, "ArchiveBatches": 3.0, "ArchiveFailures": 0.0}


def test_the_cutoff_follows_archive_after_days(handler, capsys):
    orders = orders_aged(200, 150, 95, 60, 10)
    response = handler(orders, InMemoryArchiveStore(), after_days=30).lambda_handler(
        SCHEDULED_EVENT, LambdaContext()
    )
    assert response["orders_archived"] == 4
    capsys.readouterr()


def test_a_failed_run_fails_the_invocation_and_counts_a_failure(handler, capsys):
    orders = orders_aged(200, 150)
    module = handler(orders, DownStore())

    with pytest.raises(module.ArchiveRunFailed, match="ConnectionError"):
        module.lambda_handler(SCHEDULED_EVENT, LambdaContext())

    assert emitted_metrics(capsys) == {"OrdersArchived": 0.0, "ArchiveBatches": 0.0, "ArchiveFailures": 1.0}
    assert all(item.live for item in orders.items.values())
