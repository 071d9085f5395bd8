"""WebhookSyncFunction: Kinesis batches of push records (what WebhookFunction writes), with the sync
core on the in-memory repository: events synced and counted, a failing record reported for a
retry (the records after it are not blocked), a malformed record skipped, enrichment requests
sent to their queue."""

from __future__ import annotations

import importlib.util
import json
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrm_sync.adapters.memory import (
    InMemoryLanding,
    InMemoryProfileRepository,
    InMemoryPushStream,
    InMemoryQueue,
)
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync
from scrm_sync.services.webhooks import WebhookIngest

from tests.cdc_factories import kinesis_record
from tests.lambda_context import LambdaContext
from tests.unit.services.test_webhook_ingest import EVENT, SECRET, SignedJsonChannel, request

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules({})


class FailingOnce(InMemoryProfileRepository):
    """DynamoDB throttling the first profile creation that claims one identifier (the batch's
    shared identity read is not the event's own write)."""

    def __init__(self, failing_key: str) -> None:
        super().__init__()
        self.failing_key, self.failed = failing_key, False

    def create_profile(self, profile_id, writes, links):
        if any(link.identifier.key == self.failing_key for link in links) and not self.failed:
            self.failed = True
            raise RuntimeError("ProvisionedThroughputExceededException")
        return super().create_profile(profile_id, writes, links)


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def use(repository: InMemoryProfileRepository, enrichment: InMemoryQueue) -> types.ModuleType:
        path = ROOT / "functions" / "webhook_sync" / "app.py"
        spec = importlib.util.spec_from_file_location("webhook_sync_app_under_test", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sync = ProfileSync(repository, lambda: RULES)
        monkeypatch.setattr(module, "sync", lambda: sync)
        monkeypatch.setattr(module, "enrichment_queue", lambda: enrichment)
        return module

    return use


def push_records(*events: dict[str, Any], enrichments: list[dict] | None = None) -> list[bytes]:
    """What the real webhook writes for one signed push per event."""
    stream = InMemoryPushStream()
    credentials = load_credentials({"testchan": {"secret": SECRET}})
    ingest = WebhookIngest({"testchan": SignedJsonChannel()}, lambda: credentials, InMemoryLanding(), stream)
    for event in events:
        assert ingest.handle(request(json.dumps([event]).encode())).status == 200
    records = [data for data, _ in stream.records]
    if enrichments:  # a channel whose pushes ask for enrichment (WeCom's new contacts)
        document = json.loads(records[0])
        document["enrichments"] = enrichments
        records[0] = json.dumps(document).encode()
    return records


def phone_event(event_id: str, phone: str, name: str) -> dict[str, Any]:
    return dict(
        EVENT,
        event_id=event_id,
        occurred_at=datetime.now(UTC).isoformat(),
        identifiers=[{"type": "phone", "value": phone}],
        attributes={"name": name},
    )


def invoke(module, records: list[bytes], capsys) -> tuple[dict[str, Any], dict[str, float]]:
    event = {"Records": [kinesis_record(data, str(100 + i)) for i, data in enumerate(records)]}
    response = module.lambda_handler(event, LambdaContext())
    metrics: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" in document and "source" not in document:
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = document[definition["Name"]]
                metrics[definition["Name"]] = sum(values) if isinstance(values, list) else values
    return response, metrics


def test_the_events_of_a_batch_of_pushes_reach_their_profiles(handler, capsys):
    repo = InMemoryProfileRepository()
    records = push_records(phone_event("e-1", "13800138000", "Li"), phone_event("e-2", "13900139000", "Wang"))
    response, metrics = invoke(handler(repo, InMemoryQueue()), records, capsys)
    assert response == {"batchItemFailures": []}
    assert metrics["EventsSynced"] == 2.0 and "SyncLag" in metrics
    found = ProfileQueries(repo).find(RULES, "phone", "13900139000", None)
    assert found is not None and found["attributes"]["name"] == "Wang"

    _, again = invoke(handler(repo, InMemoryQueue()), records, capsys)  # Kinesis redelivers: no effect
    assert again["EventsDuplicate"] == 2.0


def test_a_failing_record_is_reported_and_the_others_still_sync(handler, capsys):
    repo = FailingOnce("phone##+8613900139000")
    records = push_records(phone_event("e-1", "13800138000", "Li"), phone_event("e-2", "13900139000", "Wang"))
    response, metrics = invoke(handler(repo, InMemoryQueue()), records, capsys)
    assert response == {"batchItemFailures": [{"itemIdentifier": "101"}]}  # retried from here
    assert metrics["EventsFailed"] == 1.0 and metrics["WebhookRecordsFailed"] == 1.0
    assert ProfileQueries(repo).find(RULES, "phone", "13800138000", None) is not None

    response, _ = invoke(handler(repo, InMemoryQueue()), records[1:], capsys)  # Lambda's retry
    assert response == {"batchItemFailures": []}
    assert ProfileQueries(repo).find(RULES, "phone", "13900139000", None) is not None


def test_a_record_that_is_no_push_record_is_counted_and_skipped(handler, capsys):
    repo = InMemoryProfileRepository()
    good = push_records(phone_event("e-1", "13800138000", "Li"))
    response, metrics = invoke(handler(repo, InMemoryQueue()), [b'{"channel": 1', *good], capsys)
    assert response == {"batchItemFailures": []}  # retrying cannot fix it: the raw push is landed
    assert metrics["WebhookRecordsMalformed"] == 1.0 and metrics["EventsSynced"] == 1.0


def test_enrichment_requests_of_a_push_go_to_the_enrichment_queue_and_retry_when_it_refuses(handler, capsys):
    wanted = {"event_id": "e-1", "corp_id": "ww1", "external_userid": "wm-1", "follow_user": "zhangsan"}
    records = push_records(phone_event("e-1", "13800138000", "Li"), enrichments=[wanted])
    queue = InMemoryQueue()
    response, _ = invoke(handler(InMemoryProfileRepository(), queue), records, capsys)
    assert response == {"batchItemFailures": []}
    assert [json.loads(m) for m in queue.messages] == [wanted]

    response, _ = invoke(handler(InMemoryProfileRepository(), InMemoryQueue(fail=True)), records, capsys)
    assert response == {"batchItemFailures": [{"itemIdentifier": "100"}]}


def test_the_sample_event_shared_with_sam_local_invoke_syncs(handler, capsys):
    """events/webhook_sync/push_records.json: what WebhookFunction wrote for the signed Douyin and
    Youzan samples of events/webhook, as Lambda's Kinesis event source delivers it."""
    repo = InMemoryProfileRepository()
    event = json.loads((ROOT / "events" / "webhook_sync" / "push_records.json").read_text())
    response = handler(repo, InMemoryQueue()).lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": []}
    assert ProfileQueries(repo).find(RULES, "phone", "13800138000", None) is not None  # the Youzan buyer
