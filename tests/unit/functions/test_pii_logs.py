"""Logs never carry a full phone number or a customer's name, whatever path wrote them: known
fields are erased by Powertools data masking, phones inside any text are shortened."""

from __future__ import annotations

import importlib.util
import json
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.entrypoints.logging import mask_phones, pii_safe_logger
from scrm_sync.services.sync import ProfileSync

ROOT = Path(__file__).resolve().parents[3]
PHONE = "13800138000"


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "scrm-test-ProfileSyncFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:scrm-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call 13800138000 now", "call 138****8000 now"),
        ("+86 138 0013 8000", "138****8000"),
        ("008613800138000", "138****8000"),
        ("+14155550123", "+141****23"),
        ("trade 3912345678901234567", "trade 3912345678901234567"),  # ids are not phones
    ],
)
def test_phones_in_text_are_shortened(text, masked):
    assert mask_phones(text) == masked


def test_known_fields_are_erased_anywhere_in_the_record(capsys):
    logger = pii_safe_logger(service=f"pii-{uuid.uuid4().hex[:8]}", level="DEBUG")
    logger.info(
        "profile update",
        extra={"attributes": {"name": "王小明", "phone": PHONE, "level": "gold"}, "note": f"from {PHONE}"},
    )
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["attributes"] == {"name": "*****", "phone": "*****", "level": "gold"}
    assert record["note"] == "from 138****8000"
    assert PHONE not in line and "王小明" not in line


@pytest.fixture
def load_sync_handler(monkeypatch):
    """Imports functions/profile_sync/app.py afresh; call it inside the test, where capsys'
    stdout is the one Powertools binds the new service's logger to."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def load() -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(
            "sync_app_under_test", ROOT / "functions/profile_sync/app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


class LeakyRepository(InMemoryProfileRepository):
    """A storage error whose message quotes the identifier it was given (as real ones can)."""

    def owners(self, identifier_keys):
        raise RuntimeError(f"throttled while reading {list(identifier_keys)}")


def test_processing_an_event_with_a_phone_logs_no_full_phone(load_sync_handler, monkeypatch, capsys):
    sync_handler = load_sync_handler()
    rules = load_rules({})
    ok = ProfileSync(InMemoryProfileRepository(), lambda: rules)
    leaky = ProfileSync(LeakyRepository(), lambda: rules)
    event = {
        "event_id": "pos-1",
        "source": "pos",
        "type": "profile.updated",
        "occurred_at": "2026-11-01T09:30:00+08:00",
        "identifiers": [{"type": "phone", "value": PHONE}],
        "attributes": {"name": "王小明"},
    }
    records = [
        {
            "messageId": "m-1",
            "receiptHandle": "r",
            "body": json.dumps(event),
            "attributes": {},
            "eventSource": "aws:sqs",
        },
        {
            "messageId": "m-2",
            "receiptHandle": "r",
            "body": json.dumps({**event, "event_id": "pos-2", "occurred_at": "not a time " + PHONE}),
            "attributes": {},
            "eventSource": "aws:sqs",
        },
    ]
    for sync in (ok, leaky):
        monkeypatch.setattr(sync_handler, "container", lambda sync=sync: types.SimpleNamespace(sync=sync))
        sync_handler.lambda_handler({"Records": records}, LambdaContext())
    output = capsys.readouterr()
    text = output.out + output.err
    assert "RuntimeError" in text or "throttled" in text  # the failures were logged...
    assert PHONE not in text and "+8613800138000" not in text  # ...without the phone
    assert "王小明" not in text
