"""CdcFunction: Kinesis batches of DMS documents, with the sync core on the in-memory repository.
The events/cdc samples (shared with `sam local invoke`) go through the same handler."""

from __future__ import annotations

import base64
import importlib.util
import json
import types
import uuid
from pathlib import Path
from typing import Any

import pytest
from scrm_sync.adapters.memory import InMemoryChangeLedger, InMemoryProfileRepository
from scrm_sync.domain.cdc import RowChange, decode_dms, encode_dms
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.table_mapping import events_for_change
from scrm_sync.services.cdc import CdcSync
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

from tests.cdc_factories import change, dms_record, jdp_row, kinesis_record, pos_member, pos_order
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "events" / "cdc"
RULES = load_rules({})


class FlakyRepository(InMemoryProfileRepository):
    """DynamoDB throttling the first lookups of one identifier."""

    def __init__(self, failing_key: str, failures: int) -> None:
        super().__init__()
        self.failing_key, self.failures = failing_key, failures

    def owners(self, identifier_keys):
        if self.failing_key in identifier_keys and self.failures:
            self.failures -= 1
            raise RuntimeError("ProvisionedThroughputExceededException")
        return super().owners(identifier_keys)


@pytest.fixture
def handler(monkeypatch):
    """Imports functions/cdc/app.py afresh, with its use case built from in-memory pieces.

    Import it inside the test: Powertools binds a service's logger to sys.stdout as it is at the
    first Logger(), which is capsys' stream only while the test runs, and only for a service name
    the process has not seen yet."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def use(repository: InMemoryProfileRepository) -> types.ModuleType:
        path = ROOT / "functions" / "cdc" / "app.py"
        spec = importlib.util.spec_from_file_location("cdc_app_under_test", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cdc = CdcSync(ProfileSync(repository, lambda: RULES), lambda: RULES, InMemoryChangeLedger())
        monkeypatch.setattr(module, "cdc", lambda: cdc)
        return module

    return use


def invoke(module: types.ModuleType, event: dict[str, Any], capsys) -> tuple[dict[str, Any], dict[str, Any]]:
    """The handler's response and the metrics it emitted (EMF on stdout)."""
    response = module.lambda_handler(event, LambdaContext())
    metrics: dict[str, Any] = {}
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" in document and "source" not in document:  # service level, not the per-table breakdown
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values = document[definition["Name"]]
                metrics[definition["Name"]] = sum(values) if isinstance(values, list) else values
    return response, metrics


def find(repo, type_, value, scope=None):
    return ProfileQueries(repo).find(RULES, type_, value, scope)


def test_a_batch_applies_in_order_and_surfaces_control_and_unmapped_records(handler, capsys):
    repo = InMemoryProfileRepository()
    control = {
        "control": {"table-def": {"columns": {"member_no": {"type": "STRING"}}}},
        "metadata": {
            "timestamp": "2026-11-10T16:00:40.000000Z",
            "record-type": "control",
            "operation": "add-column",
            "partition-key-type": "task-id",
            "schema-name": "pos",
            "table-name": "members",
        },
    }
    event = {
        "Records": [
            dms_record(change("pos.members", "insert", pos_member()), "101"),
            dms_record(change("pos.orders", "insert", pos_order()), "102"),
            dms_record(change("pos.audit_log", "insert", {"id": 1}), "103"),
            kinesis_record(encode_dms(control), "104"),
            dms_record(change("pos.members", "delete", pos_member()), "105"),
        ]
    }
    response, metrics = invoke(handler(repo), event, capsys)
    assert response == {"batchItemFailures": []}
    assert metrics["CdcChangesApplied"] == 3.0
    assert metrics["CdcChangesSkipped"] == 1.0 and metrics["CdcControlRecords"] == 1.0
    assert "SyncLag" in metrics
    # the delete ran after the insert: the member number is detached, the order stays on the profile
    assert find(repo, "member_no", "M0001234", "pos") is None
    profile = find(repo, "phone", "13800138000")
    assert profile["attributes"]["last_store"] == "SH-017"


def test_a_malformed_record_is_logged_by_position_and_skipped_not_retried(handler, capsys):
    repo = InMemoryProfileRepository()
    event = {
        "Records": [
            kinesis_record(b'{"data": {"phone": "13800138000"', "201"),  # cut off mid-record
            dms_record(change("sys_info.jdp_tb_trade", "insert", jdp_row(jdp_response="{")), "202"),
            {
                **kinesis_record(b"", "203"),
                "kinesis": {**kinesis_record(b"", "203")["kinesis"], "data": "abc"},
            },
            dms_record(change("pos.members", "insert", pos_member()), "204"),
        ]
    }
    module = handler(repo)
    response = module.lambda_handler(event, LambdaContext())
    output = capsys.readouterr().out
    assert response == {"batchItemFailures": []}
    assert find(repo, "member_no", "M0001234", "pos") is not None  # the poison records did not block it
    logged = [json.loads(line) for line in output.splitlines() if '"malformed CDC record skipped"' in line]
    assert [(entry["sequence_number"], entry["shard"]) for entry in logged] == [
        ("201", "shardId-000000000003"),
        ("202", "shardId-000000000003"),
        ("203", "shardId-000000000003"),
    ]
    assert "13800138000" not in output and "王小明" not in output  # no personal data in the logs
    # the service-level document (per-table breakdowns are separate EMF documents)
    metrics = next(json.loads(line) for line in output.splitlines() if '"CdcMalformed"' in line)
    assert metrics["CdcMalformed"] == [1.0, 1.0, 1.0]


def test_a_failing_record_fails_with_every_later_record_of_its_shard_then_the_retry_applies(handler, capsys):
    repo = FlakyRepository("member_no#pos#M2", failures=1)
    module = handler(repo)
    m2_insert = change("pos.members", "insert", pos_member("M2", phone="13800000002"))
    m2_delete = change("pos.members", "delete", pos_member("M2", phone="13800000002"))
    event = {
        "Records": [
            dms_record(change("pos.members", "insert", pos_member("M1", phone="13800000001")), "301"),
            dms_record(m2_insert, "302"),
            dms_record(m2_delete, "303"),  # must not run before its insert
        ]
    }
    response, metrics = invoke(module, event, capsys)
    assert response == {"batchItemFailures": [{"itemIdentifier": "302"}, {"itemIdentifier": "303"}]}
    assert metrics["CdcChangesApplied"] == 1.0 and metrics["CdcChangesFailed"] == 2.0
    assert find(repo, "member_no", "M2", "pos") is None and find(repo, "phone", "13800000002") is None

    # Lambda retries the shard from the lowest failed sequence number
    retry = {"Records": event["Records"][1:]}
    response, _ = invoke(module, retry, capsys)
    assert response == {"batchItemFailures": []}
    assert find(repo, "member_no", "M2", "pos") is None  # inserted, then detached by the delete
    assert find(repo, "phone", "13800000002")["attributes"]["name"] == "王小明"


def test_a_batch_retried_after_a_timeout_skips_the_changes_it_applied(handler, capsys):
    repo = InMemoryProfileRepository()
    module = handler(repo)
    member = pos_member(phone=None)
    event = {
        "Records": [
            dms_record(change("pos.members", "insert", member), "501"),
            dms_record(change("pos.members", "delete", member), "502"),
        ]
    }
    invoke(module, event, capsys)
    response, metrics = invoke(module, event, capsys)  # the same batch again
    assert response == {"batchItemFailures": []}
    assert metrics["CdcChangesReplayed"] == 2.0 and "CdcChangesApplied" not in metrics
    assert find(repo, "member_no", "M0001234", "pos") is None  # the old insert did not link it again


def test_a_batch_that_fails_entirely_is_a_partial_response_not_an_error(handler, capsys):
    repo = FlakyRepository("member_no#pos#M0001234", failures=5)
    record = dms_record(change("pos.members", "insert", pos_member()), "401")
    response, _ = invoke(handler(repo), {"Records": [record]}, capsys)
    assert response == {"batchItemFailures": [{"itemIdentifier": "401"}]}


# -- the events/cdc samples -----------------------------------------------------------------------
EXPECTED_SAMPLES = {
    "jdp_tb_trade_insert.json": ("sys_info.jdp_tb_trade", "insert", "order.created"),
    "jdp_tb_trade_update.json": ("sys_info.jdp_tb_trade", "update", "order.updated"),
    "pos_member_insert.json": ("pos.members", "insert", "profile.updated"),
    "pos_member_delete.json": ("pos.members", "delete", "identifiers.removed"),
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED_SAMPLES))
def test_each_sample_is_a_dms_change_that_maps_to_its_event(name):
    table_key, operation, event_type = EXPECTED_SAMPLES[name]
    (record,) = sample(name)["Records"]
    row_change = decode_dms(base64.b64decode(record["kinesis"]["data"]), record["kinesis"]["sequenceNumber"])
    assert isinstance(row_change, RowChange)
    assert (row_change.table_key, row_change.operation) == (table_key, operation)
    (event,) = events_for_change(row_change, RULES.table_mapping(table_key))
    assert event.type == event_type


def test_the_samples_run_through_the_handler_in_order(handler, capsys):
    repo = InMemoryProfileRepository()
    module = handler(repo)
    for name in ["pos_member_insert.json", "jdp_tb_trade_insert.json", "jdp_tb_trade_update.json"]:
        response, _ = invoke(module, sample(name), capsys)
        assert response == {"batchItemFailures": []}
    profile = find(repo, "member_no", "M0001234", "pos")
    assert {i["type"] for i in profile["identifiers"]} == {"member_no", "phone", "taobao_open_uid"}
    timeline = ProfileQueries(repo).timeline(profile["profile_id"], 10)["entries"]
    assert [e["data"]["status"] for e in timeline] == ["WAIT_BUYER_CONFIRM_GOODS", "WAIT_SELLER_SEND_GOODS"]
    response, _ = invoke(module, sample("pos_member_delete.json"), capsys)
    assert response == {"batchItemFailures": []}
    assert find(repo, "member_no", "M0001234", "pos") is None
    assert find(repo, "phone", "13800138000")["profile_id"] == profile["profile_id"]
