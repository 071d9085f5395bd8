"""One local stack (real moto server on a free port, fixture template) shared by these tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # tests/integration has no __init__.py: make `tests.` importable
    sys.path.insert(0, str(ROOT))

from scrm_local.stack import LocalStack  # noqa: E402

from tests.fixtures.local_stack.support import settings  # noqa: E402


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    (folder / "channels.json").write_text('{"api": {"keys": {"test": "fixture-key"}}}')
    (folder / "rules.json").write_text('{"version": 1}')
    return folder


@pytest.fixture(scope="session")
def stack(config_dir: Path) -> Iterator[LocalStack]:
    running = LocalStack(settings(config_dir)).start()
    try:
        yield running
    finally:
        running.stop()
