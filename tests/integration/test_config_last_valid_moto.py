"""An invalid rules document put into the real parameter (moto, resources from template.yaml)
while ProfileSyncFunction and ProfileApiFunction run in-process: syncs and reads go on with the
last valid rules (not the shipped defaults), RulesInvalid is counted once, and the next valid
document applies."""

from __future__ import annotations

import copy
import json
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aws_lambda_powertools.utilities import parameters
from scrm_sync import bootstrap

from tests.integration.conftest import AppResources, build_resources, load_function, use_function_environment
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "rules-test-key"
BLOCKED_PHONE = "13900000001"  # the store's front-desk phone: never links customers
GOOD_RULES = {"identifier_blocklist": {"phone": [BLOCKED_PHONE]}}
BAD_RULES = {**GOOD_RULES, "max_identifiers_per_type": "lots"}
TABLES = {  # what ProfileSyncFunction and ProfileApiFunction read
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
    "ACCESS_LOG_TABLE": "AccessLogTable",
}


@dataclass
class Functions:
    resources: AppResources
    sync: types.ModuleType
    api: types.ModuleType

    def put_rules(self, document: dict[str, Any]) -> None:
        self.resources.clients("ssm").put_parameter(
            Name=self.resources.names["RulesParameter"], Value=json.dumps(document), Overwrite=True
        )

    def sync_events(self, *member_nos: str) -> list[dict[str, str]]:
        (record,) = json.loads((ROOT / "events/profile_sync/sqs_batch.json").read_text())["Records"][:1]
        records = []
        for member_no in member_nos:
            body = {
                "event_id": f"pos-{member_no}",
                "source": "pos",
                "type": "profile.updated",
                "occurred_at": "2026-11-01T09:30:00+08:00",
                "identifiers": [
                    {"type": "phone", "value": BLOCKED_PHONE},
                    {"type": "member_no", "value": member_no, "scope": "brand-loyalty"},
                ],
                "attributes": {"member_level": "gold"},
            }
            records.append(
                {**copy.deepcopy(record), "messageId": str(uuid.uuid4()), "body": json.dumps(body)}
            )
        response = self.sync.lambda_handler({"Records": records}, LambdaContext())
        return list(response["batchItemFailures"])

    def find(self, type_: str, value: str, scope: str | None = None) -> int:
        event = json.loads((ROOT / "events/profile_api/find_by_phone.json").read_text())
        query = {"type": type_, "value": value, **({"scope": scope} if scope else {})}
        event["queryStringParameters"], event["rawQueryString"] = query, urlencode(query)
        event["headers"]["x-api-key"] = API_KEY
        return int(self.api.lambda_handler(event, LambdaContext())["statusCode"])


@pytest.fixture
def functions(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Functions]:
    resources = build_resources(moto_endpoint)
    resources.clients("secretsmanager").put_secret_value(
        SecretId=resources.names["ChannelCredentialsSecret"],
        SecretString=json.dumps({"api": {"keys": {"rules-test": API_KEY}}}),
    )
    monkeypatch.setenv("RULES_CACHE_SECONDS", "0")  # every read sees the parameter as it is now
    use_function_environment(monkeypatch, moto_endpoint, resources, TABLES)
    try:
        functions = Functions(resources, load_function("profile_sync"), load_function("profile_api"))
        functions.put_rules(GOOD_RULES)
        yield functions
    finally:
        bootstrap.reset()
        parameters.clear_caches()


def rules_invalid_counts(capsys: pytest.CaptureFixture[str]) -> list[float]:
    values: list[float] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and "RulesInvalid" in (document := json.loads(line)):
            values += document["RulesInvalid"]
    return values


def test_an_invalid_rules_document_changes_nothing_and_the_next_valid_one_applies(functions, capsys):
    assert functions.sync_events("M-BEFORE") == []
    assert functions.find("member_no", "M-BEFORE", "brand-loyalty") == 200
    assert functions.find("phone", BLOCKED_PHONE) == 404  # blocklisted: never linked

    functions.put_rules(BAD_RULES)
    assert functions.sync_events("M-DURING-1", "M-DURING-2") == []  # no 5xx, nothing to retry
    assert functions.find("member_no", "M-DURING-2", "brand-loyalty") == 200
    # the last valid rules, not the shipped defaults (which would have linked the shared phone)
    assert functions.find("phone", BLOCKED_PHONE) == 404
    assert rules_invalid_counts(capsys) == [1.0]  # once for the version, not per call

    functions.put_rules({})  # valid again, without the blocklist
    assert functions.sync_events("M-AFTER") == []
    assert functions.find("phone", BLOCKED_PHONE) == 200
    assert rules_invalid_counts(capsys) == [0.0]


def test_a_cold_start_without_any_valid_rules_answers_503_and_the_sync_is_retried(functions):
    functions.put_rules(BAD_RULES)
    bootstrap.reset()  # a new execution environment: it never read a valid document
    assert functions.find("member_no", "M-COLD", "brand-loyalty") == 503
    assert len(functions.sync_events("M-COLD")) == 1  # reported failed: the queue retries it
    functions.put_rules(GOOD_RULES)
    assert functions.sync_events("M-COLD") == []
    assert functions.find("member_no", "M-COLD", "brand-loyalty") == 200
