"""Fixtures of the handler tests."""

from __future__ import annotations

import importlib.util
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def load_handler(monkeypatch):
    """Imports functions/<name>/app.py afresh under a service name of its own. Call it inside the
    test: Powertools binds a new service's logger to sys.stdout as it is then (capsys')."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def load(name: str, **factories: Any) -> types.ModuleType:
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-{name}-{uuid.uuid4().hex[:8]}")
        spec = importlib.util.spec_from_file_location(
            f"{name}_app_under_test", ROOT / "functions" / name / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for factory, built in factories.items():  # the handler's bootstrap factories
            monkeypatch.setattr(module, factory, lambda built=built: built)
        return module

    return load
