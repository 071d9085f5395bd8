"""A moto server with the application's resources created from the real template.yaml."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from scrm_local.aws import Clients
from scrm_local.moto_server import SerializedMotoServer
from scrm_local.resources import create_resources
from scrm_local.settings import Settings
from scrm_local.template import Template

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AppResources:
    clients: Clients
    names: dict[str, str]  # logical id -> physical name (tables, bucket) or URL (queues)

    def table(self, logical_id: str) -> str:
        return self.names[logical_id]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = SerializedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def build_resources(endpoint: str) -> AppResources:
    """Every resource of template.yaml under a fresh stack name, so tests never share state."""
    settings = Settings(
        template_path=ROOT / "template.yaml", project_root=ROOT, stack_name=f"it{uuid.uuid4().hex[:8]}"
    )
    template = Template.load(settings)
    clients = Clients(endpoint)
    created = create_resources(template, clients)
    names = {lid: template.resolver.resource(lid).name for lid in created}
    return AppResources(clients, names)


@pytest.fixture
def app_resources(moto_endpoint: str) -> AppResources:
    return build_resources(moto_endpoint)


@pytest.fixture
def dynamodb(app_resources: AppResources) -> Any:
    return app_resources.clients("dynamodb")


@pytest.fixture
def in_process_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process mock for boto3 clients made inside the test. Endpoints another test left
    in the environment are removed: they would send the calls to a real moto server instead."""
    for variable in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")] + ["AWS_PROFILE"]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def load_function(name: str) -> Any:
    """functions/<name>/app.py imported afresh (its module-level Powertools objects too)."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_under_test_{uuid.uuid4().hex[:6]}", ROOT / f"functions/{name}/app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What SidebarApiFunction reads, by variable -> logical id (shared with bench/sidebar_customer.py),
# plus the rules the sync that seeds its customers reads.
SIDEBAR_RESOURCES = {
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "CHECKPOINTS_TABLE": "CheckpointsTable",
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "ORDERS_TABLE": "OrdersTable",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
    "ACCESS_LOG_TABLE": "AccessLogTable",
}


def use_function_environment(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    resources: AppResources,
    variables: dict[str, str],
    service: str = "scrm-sync",
) -> None:
    """The environment a handler run in-process against the moto server needs: its resources
    (variable -> logical id), the endpoint, dummy credentials and a Powertools service name of its
    own; the parameter providers and clients earlier tests built (other endpoints) are dropped."""
    from aws_lambda_powertools.utilities import parameters
    from scrm_sync import bootstrap

    for variable, logical_id in variables.items():
        monkeypatch.setenv(variable, resources.names[logical_id])
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSync")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"{service}-{uuid.uuid4().hex[:8]}")
    parameters.clear_caches()
    bootstrap.reset()
