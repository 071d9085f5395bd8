"""Thousands of random and mutated requests through the real WebhookFunction handler (API Gateway
payload v2 in, HTTP response out) for every channel: never a 5xx, never an exception, always an
answer. Seeds are the signed samples in events/webhook, mutated byte- and field-wise, so the
fuzzer reaches past signature checks into decryption and parsing."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream, InMemorySchemaRegistry
from scrm_sync.channels import ADAPTERS
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.schema_watch import SchemaWatch
from scrm_sync.services.webhooks import WebhookIngest

from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = [json.loads(p.read_text()) for p in sorted((ROOT / "events" / "webhook").glob("*.json"))]
CREDENTIALS = load_credentials(json.loads((ROOT / "config" / "channels.dev.json").read_text()))
RULES = load_rules({})
CHANNELS = [*sorted(ADAPTERS), "unknown", ""]
HEADER_NAMES = [
    "content-type",
    "x-douyin-signature",
    "msg-id",
    "event-sign",
    "app-id",
    "event-type",
    "x-api-key",
    "content-length",
]
QUERY_NAMES = ["msg_signature", "signature", "timestamp", "nonce", "echostr", "encrypt_type", "openid"]
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def handler() -> types.ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
        patch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        patch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        spec = importlib.util.spec_from_file_location(
            "webhook_app_under_test", ROOT / "functions/webhook/app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    webhooks = WebhookIngest(
        ADAPTERS,
        lambda: CREDENTIALS,
        InMemoryLanding(),
        InMemoryPushStream(),
        lambda: RULES,
        SchemaWatch(InMemorySchemaRegistry(), lambda: RULES),
    )
    module.webhooks = lambda: webhooks  # type: ignore[attr-defined]
    return module


def answer(handler: types.ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response = handler.lambda_handler(event, LambdaContext())
    assert isinstance(response["body"], str)
    assert 200 <= response["statusCode"] < 500, response
    return response


def test_every_sample_is_accepted_unchanged(handler):
    for sample in SAMPLES:
        assert answer(handler, copy.deepcopy(sample))["statusCode"] == 200, sample["rawPath"]


def _event(channel: str, method: str, headers: dict, query: dict, body: bytes, as_base64: bool) -> dict:
    event = copy.deepcopy(SAMPLES[0])
    event["rawPath"] = f"/webhooks/{channel}"
    event["pathParameters"] = {"channel": channel}
    event["requestContext"]["http"]["method"] = method
    event["headers"] = headers
    event["queryStringParameters"] = query or None
    if as_base64:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body.decode("utf-8", "replace"), False
    return event


texts = st.one_of(st.text(max_size=60), st.sampled_from(["", "0", "1764061200", "aes", "A" * 43]))


@FUZZ
@given(
    channel=st.sampled_from(CHANNELS),
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), texts, max_size=5),
    query=st.dictionaries(st.sampled_from(QUERY_NAMES), texts, max_size=5),
    body=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode)),
    as_base64=st.booleans(),
)
def test_random_requests_are_answered_below_500(handler, channel, method, headers, query, body, as_base64):
    answer(handler, _event(channel, method, headers, query, body, as_base64))


@FUZZ
@given(
    sample=st.sampled_from(SAMPLES),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 2_000)),
    drop_header=st.one_of(st.none(), st.sampled_from(HEADER_NAMES)),
    drop_query=st.one_of(st.none(), st.sampled_from(QUERY_NAMES)),
    swap_channel=st.one_of(st.none(), st.sampled_from(CHANNELS)),
)
def test_mutated_signed_samples_are_answered_below_500(
    handler, sample, flips, cut, drop_header, drop_query, swap_channel
):
    event = copy.deepcopy(sample)
    body = bytearray((event.get("body") or "").encode())
    for position, value in flips:
        if body:
            body[position % len(body)] = value
    if cut is not None:
        body = body[:cut]
    event["body"], event["isBase64Encoded"] = base64.b64encode(bytes(body)).decode(), True
    event["headers"].pop(drop_header, None)
    if event.get("queryStringParameters"):
        event["queryStringParameters"].pop(drop_query, None)
    if swap_channel is not None:
        event["pathParameters"] = {"channel": swap_channel}
    answer(handler, event)
