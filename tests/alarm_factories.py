"""CloudWatch alarm notifications in the shapes AlarmForwarderFunction receives, built from the
samples in events/alarms (shared with `scrm invoke`)."""

from __future__ import annotations

import copy
import importlib.util
import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_context import LambdaContext as BaseContext

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "events" / "alarms"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def sample_alarm(name: str = "sync_success_rate_alarm.json") -> dict[str, Any]:
    """The CloudWatch alarm document inside a sample SQS event."""
    body = json.loads(sample(name)["Records"][0]["body"])
    return json.loads(body["Message"])


def alarm_message(name: str, state: str = "ALARM", **changes: Any) -> str:
    """An SNS Message: the sync success-rate alarm under another name and state."""
    old = "OK" if state == "ALARM" else "ALARM"
    doc = dict(sample_alarm(), AlarmName=name, NewStateValue=state, OldStateValue=old, **changes)
    return json.dumps(doc)


def sns_envelope(message: str, message_id: str | None = None) -> dict[str, Any]:
    envelope = json.loads(sample("sync_success_rate_alarm.json")["Records"][0]["body"])
    return dict(envelope, Message=message, MessageId=message_id or str(uuid.uuid4()))


def sqs_record(message: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    record = copy.deepcopy(sample("sync_success_rate_alarm.json")["Records"][0])
    record["messageId"] = message_id or str(uuid.uuid4())
    record["receiptHandle"] = f"AQEB{record['messageId']}"
    record["body"] = json.dumps(sns_envelope(message))
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return record


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def LambdaContext(remaining_millis: int = 30_000) -> BaseContext:
    return BaseContext(
        function_name="scrm-sync-dev-AlarmForwarderFunction", remaining_millis=remaining_millis
    )


def load_handler(monkeypatch: pytest.MonkeyPatch, alarms: Any) -> types.ModuleType:
    """functions/alarm_forwarder/app.py imported afresh, its bootstrap factory alarms() giving `alarms`.

    Call it inside the test: Powertools binds a service's logger to sys.stdout as it is at the
    first Logger(), which is capsys' stream only while the test runs, and only for a service name
    the process has not seen yet."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    path = ROOT / "functions" / "alarm_forwarder" / "app.py"
    spec = importlib.util.spec_from_file_location(f"alarm_forwarder_{uuid.uuid4().hex[:8]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "alarms", lambda: alarms)
    return module


def create_checkpoints_table(client: Any, name: str) -> None:
    """The CheckpointsTable of template.yaml (a string `pk` hash key), for moto."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
