from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.template.sam import transformed


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def deployed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    """What CloudFormation receives: SAM's transform of the template (code URIs stubbed)."""
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return transformed()
