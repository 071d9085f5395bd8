"""Audit verification through the real DynamoDB repository (AuditTable from template.yaml on moto)
and through `scrm audit verify`: entries deleted with boto3 are caught, an unknown id is not
reported as intact, and the exit status says which."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from scrm_local import audit_commands, cli
from scrm_sync.adapters.dynamodb_audit import DynamoAuditRepository
from scrm_sync.domain.audit import ChainStatus
from scrm_sync.services.audit import AuditTrail

from tests.integration.conftest import AppResources, build_resources


@pytest.fixture(scope="module")
def resources(moto_endpoint: str) -> AppResources:
    return build_resources(moto_endpoint)


@pytest.fixture
def trail(resources: AppResources) -> AuditTrail:
    return AuditTrail(DynamoAuditRepository(resources.clients("dynamodb"), resources.table("AuditTable")))


def record_chain(trail: AuditTrail, profile_id: str, length: int = 3) -> None:
    for n in range(length):
        trail.record(profile_id, {"kind": "fields", "n": n}, f"{10 + n}/000")


def delete_entry(resources: AppResources, profile_id: str, seq: int) -> None:
    db: Any = resources.clients("dynamodb")
    db.delete_item(
        TableName=resources.table("AuditTable"),
        Key={"pk": {"S": profile_id}, "sk": {"S": f"{seq:012d}"}},
    )


def test_an_untouched_chain_verifies(trail):
    record_chain(trail, "p-intact")
    report = trail.verify("p-intact")
    assert (report.ok, report.entries) == (True, 3)


@pytest.mark.parametrize(("deleted", "first_broken"), [(3, 3), (2, 2), (1, 1)])
def test_a_deleted_entry_breaks_the_chain(trail, resources, deleted, first_broken):
    profile_id = f"p-deleted-{deleted}"
    record_chain(trail, profile_id)
    delete_entry(resources, profile_id, deleted)
    report = trail.verify(profile_id)
    assert (report.ok, report.status, report.first_broken_seq) == (False, ChainStatus.BROKEN, first_broken)


def test_entries_without_their_head_are_broken(trail, resources):
    record_chain(trail, "p-headless")
    resources.clients("dynamodb").delete_item(
        TableName=resources.table("AuditTable"), Key={"pk": {"S": "p-headless"}, "sk": {"S": "HEAD"}}
    )
    assert trail.verify("p-headless").status is ChainStatus.BROKEN


def test_an_id_without_a_chain_is_missing(trail):
    assert trail.verify("p-never-chained").status is ChainStatus.MISSING


# --- `scrm audit verify`, with the command's trail pointed at moto ------------------------------
@pytest.fixture
def scrm_audit_verify(trail, monkeypatch, capsys):
    @contextmanager
    def moto_trail() -> Iterator[AuditTrail]:
        yield trail

    monkeypatch.setattr(audit_commands, "running_stack_audit_trail", moto_trail)

    def run(profile_id: str) -> tuple[int, dict[str, Any], str]:
        status = cli.main(["audit", "verify", profile_id])
        out, err = capsys.readouterr()
        return status, json.loads(out), err

    return run


def test_scrm_audit_verify_exit_status(scrm_audit_verify, trail, resources):
    record_chain(trail, "p-cli")
    status, report, _ = scrm_audit_verify("p-cli")
    assert (status, report["ok"], report["status"], report["entries"]) == (0, True, "ok", 3)

    delete_entry(resources, "p-cli", 3)
    status, report, err = scrm_audit_verify("p-cli")
    assert (status, report["ok"], report["first_broken_seq"]) == (1, False, 3)
    assert "p-cli is broken: entry 3 is missing" in err

    status, report, err = scrm_audit_verify("p-unknown")
    assert (status, report["ok"], report["status"]) == (3, False, "missing")
    assert "no audit chain for p-unknown" in err


def test_the_retention_sweep_removes_old_content_from_dynamodb_and_the_chain_verifies(trail, resources):
    record_chain(trail, "p-old", length=2)
    db: Any = resources.clients("dynamodb")
    table = resources.table("AuditTable")
    db.update_item(  # entry 1 was appended years ago
        TableName=table,
        Key={"pk": {"S": "p-old"}, "sk": {"S": f"{1:012d}"}},
        UpdateExpression="SET recorded_at = :old",
        ExpressionAttributeValues={":old": {"S": "2020-01-01T00:00:00+00:00"}},
    )
    assert trail.expire_all("2021-12-03T00:00:00+00:00") == 1
    first = db.get_item(TableName=table, Key={"pk": {"S": "p-old"}, "sk": {"S": f"{1:012d}"}})["Item"]
    assert first["change"]["S"] == "" and first["digest"]["S"]
    assert trail.verify("p-old").ok
    assert trail.expire_all("2021-12-03T00:00:00+00:00") == 0
