"""API keys: the HttpApi Lambda authorizer (the events/api_authorizer samples, shared with
`sam local invoke`) and the handlers' `authenticate`, which trusts the authorizer's verdict and
checks the key itself only when a request arrives without one."""

from __future__ import annotations

import copy
import importlib.util
import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from scrm_sync.domain.credentials import ChannelCredentials, load_credentials
from scrm_sync.entrypoints.http import authenticate

from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "events" / "api_authorizer"
DEV_KEY = "dev-api-key-not-secret"  # the dev-only key in config/channels.dev.json
CREDENTIALS = load_credentials(json.loads((ROOT / "config" / "channels.dev.json").read_text()))


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / f"{name}.json").read_text()))


class SecretReads:
    """The composition root's credentials: counts the reads, can fail like an unreadable secret."""

    def __init__(self, credentials: ChannelCredentials, error: Exception | None = None) -> None:
        self.credentials, self.error, self.reads = credentials, error, 0

    def __call__(self) -> ChannelCredentials:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.credentials


@pytest.fixture
def authorizer(monkeypatch):
    """Imports functions/api_authorizer/app.py afresh, inside the test (capsys' stdout is the one
    Powertools binds a new service's logger to), with bootstrap's credentials replaced."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")

    def load(credentials: SecretReads) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(
            "api_authorizer_under_test", ROOT / "functions/api_authorizer/app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        monkeypatch.setattr(module, "credentials", credentials)
        return module

    return load


def test_a_valid_key_is_authorized_with_the_caller_name(authorizer, capsys):
    module = authorizer(SecretReads(CREDENTIALS))
    answer = module.lambda_handler(sample("valid_key"), LambdaContext())
    assert answer == {"isAuthorized": True, "context": {"caller": "dev-integrator"}}
    assert DEV_KEY not in capsys.readouterr().out  # keys never reach the logs


def test_a_wrong_key_is_refused_and_not_logged(authorizer, capsys):
    module = authorizer(SecretReads(CREDENTIALS))
    event = sample("wrong_key")
    assert module.lambda_handler(event, LambdaContext()) == {"isAuthorized": False}
    logs = capsys.readouterr().out
    assert "API key refused" in logs
    assert event["headers"]["x-api-key"] not in logs


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_or_blank_key_is_refused(authorizer, value):
    """API Gateway answers 401 itself before calling the authorizer; a direct invoke still fails."""
    module = authorizer(SecretReads(CREDENTIALS))
    event = sample("valid_key")
    event["identitySource"] = [] if value is None else [value]
    if value is None:
        del event["headers"]["x-api-key"]
    else:
        event["headers"]["x-api-key"] = value
    assert module.lambda_handler(event, LambdaContext()) == {"isAuthorized": False}


def test_the_header_name_is_case_insensitive(authorizer):
    module = authorizer(SecretReads(CREDENTIALS))
    event = sample("valid_key")
    event["headers"]["X-Api-Key"] = event["headers"].pop("x-api-key")
    assert module.lambda_handler(event, LambdaContext())["isAuthorized"] is True


def test_rotation_both_keys_work_while_both_are_listed(authorizer):
    rotating = load_credentials({"api": {"keys": {"pos-2026-01": "old-key", "pos-2026-07": "new-key"}}})
    module = authorizer(SecretReads(rotating))
    for key, caller in (("old-key", "pos-2026-01"), ("new-key", "pos-2026-07")):
        event = sample("valid_key")
        event["headers"]["x-api-key"] = key
        assert module.lambda_handler(event, LambdaContext()) == {
            "isAuthorized": True,
            "context": {"caller": caller},
        }


def test_an_unreadable_secret_fails_closed(authorizer):
    """The error propagates: API Gateway answers 500 and lets nothing through (and caches nothing)."""
    module = authorizer(SecretReads(CREDENTIALS, error=RuntimeError("AccessDeniedException")))
    with pytest.raises(RuntimeError, match="AccessDenied"):
        module.lambda_handler(sample("valid_key"), LambdaContext())


# --- authenticate: the handlers' side -----------------------------------------------------------------
def route_event(key: str | None, authorizer_context: dict[str, Any] | None = None) -> APIGatewayProxyEventV2:
    raw = copy.deepcopy(json.loads((ROOT / "events/profile_api/find_by_phone.json").read_text()))
    raw["headers"].pop("x-api-key", None)
    if key is not None:
        raw["headers"]["x-api-key"] = key
    if authorizer_context is not None:
        raw["requestContext"]["authorizer"] = {"lambda": authorizer_context}
    return APIGatewayProxyEventV2(raw)


def test_the_authorizers_caller_is_used_without_reading_the_secret():
    reads = SecretReads(CREDENTIALS)
    assert authenticate(route_event(None, {"caller": "dev-integrator"}), reads) == "dev-integrator"
    assert reads.reads == 0


@pytest.mark.parametrize("context", [None, {}, {"caller": ""}, {"caller": 7}, {"other": "x"}])
def test_without_an_authorizer_verdict_the_key_is_checked_here(context):
    reads = SecretReads(CREDENTIALS)
    assert authenticate(route_event(DEV_KEY, context), reads) == "dev-integrator"
    assert reads.reads == 1
    with pytest.raises(UnauthorizedError):
        authenticate(route_event("wrong", context), reads)
    with pytest.raises(UnauthorizedError):
        authenticate(route_event(None, context), reads)


def test_a_null_authorizer_context_falls_back_to_the_key():
    event = route_event(DEV_KEY)
    event.raw_event["requestContext"]["authorizer"] = {"lambda": None}
    assert authenticate(event, SecretReads(CREDENTIALS)) == "dev-integrator"
