"""The composition root: one cached factory per use case, each validating only its own settings;
a missing or invalid variable fails with its name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scrm_sync import bootstrap
from scrm_sync.settings import MissingSettings

SYNC_ENV = {
    "PROFILES_TABLE": "profiles",
    "IDENTITY_TABLE": "identity",
    "TIMELINE_TABLE": "timeline",
    "RULES_PARAMETER_NAME": "rules",
    "PRIVACY_SALT_SECRET_ARN": "privacy-salt",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in (*SYNC_ENV, "AUDIT_TABLE", "RULES_CACHE_SECONDS", "ORDERS_TABLE", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bootstrap.reset()
    yield monkeypatch
    bootstrap.reset()


def test_a_missing_variable_is_named_with_the_function(env):
    env.setenv("AWS_LAMBDA_FUNCTION_NAME", "scrm-sync-dev-AuditChainFunction")
    with pytest.raises(MissingSettings, match="AUDIT_TABLE") as raised:
        bootstrap.audit()
    assert "scrm-sync-dev-AuditChainFunction" in str(raised.value)


def test_an_invalid_variable_is_named(env):
    for key, value in SYNC_ENV.items():
        env.setenv(key, value)
    env.setenv("RULES_CACHE_SECONDS", "-1")
    with pytest.raises(MissingSettings, match="RULES_CACHE_SECONDS"):
        bootstrap.sync()


def test_a_use_case_is_built_once_and_needs_only_its_own_variables(env):
    for key, value in SYNC_ENV.items():
        env.setenv(key, value)
    sync = bootstrap.sync()  # no queue, bucket, secret or audit table in this environment
    assert bootstrap.sync() is sync
    assert bootstrap.order_store() is None  # ORDERS_TABLE unset: order events update no table
    with pytest.raises(MissingSettings, match="CHANNELS_SECRET_ARN"):
        bootstrap.credentials()
    bootstrap.reset()
    assert bootstrap.sync() is not sync
