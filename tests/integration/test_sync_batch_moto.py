"""ProfileSyncFunction's batch-staged sync through the real handler on DynamoDB (moto, tables from
template.yaml): what a full queue batch costs in DynamoDB requests, counted from outside by a
botocore hook on the handler's own client, and that a batch ends where one-by-one processing
ends, events of one customer in the same batch included."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from scrm_sync import bootstrap
from scrm_sync.adapters.dynamodb import DynamoProfileRepository
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync

from tests.integration.conftest import AppResources, build_resources, load_function, use_function_environment
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100  # the largest batch an SQS event source mapping hands a function at once
TABLES = {
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
}


@dataclass
class SyncFunction:
    resources: AppResources
    module: Any
    requests: Counter[str]

    def invoke(self, events: list[dict[str, Any]]) -> list[str]:
        """One SQS batch through the handler; returns the failed message ids."""
        (template,) = json.loads((ROOT / "events/profile_sync/sqs_batch.json").read_text())["Records"][:1]
        records = [
            {**copy.deepcopy(template), "messageId": f"m-{i}", "body": json.dumps(body)}
            for i, body in enumerate(events)
        ]
        self.requests.clear()
        response = self.module.lambda_handler({"Records": records}, LambdaContext())
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def per_event(self, events: int) -> float:
        return sum(self.requests.values()) / events

    def repository(self) -> DynamoProfileRepository:
        clients = self.resources.clients
        return DynamoProfileRepository(
            clients("dynamodb"),
            self.resources.table("ProfilesTable"),
            self.resources.table("IdentityTable"),
            self.resources.table("TimelineTable"),
        )


@pytest.fixture
def sync_function(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncFunction]:
    resources = build_resources(moto_endpoint)
    use_function_environment(monkeypatch, moto_endpoint, resources, TABLES)
    requests: Counter[str] = Counter()

    def count(request: Any, **_: Any) -> None:
        requests[request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]] += 1

    # the very client the handler's repository uses (bootstrap builds one per service)
    bootstrap.client("dynamodb").meta.events.register("before-send.dynamodb", count)
    try:
        yield SyncFunction(resources, load_function("profile_sync"), requests)
    finally:
        bootstrap.client("dynamodb").meta.events.unregister("before-send.dynamodb", count)
        bootstrap.reset()
        parameters.clear_caches()


def customer_event(i: int, event_id: str, occurred_at: str, **attributes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "pos",
        "type": "profile.updated",
        "occurred_at": occurred_at,
        "identifiers": [
            {"type": "phone", "value": f"1390000{i:04d}"},
            {"type": "member_no", "value": f"M{i:05d}", "scope": "brand-loyalty"},
        ],
        "attributes": attributes,
    }


def test_a_full_batch_costs_about_one_request_per_event_for_new_known_and_duplicate(sync_function):
    new = [
        customer_event(i, f"new-{i}", "2026-11-11T00:00:00+08:00", member_level="gold") for i in range(BATCH)
    ]
    assert sync_function.invoke(new) == []
    assert sync_function.per_event(BATCH) <= 1.5, sync_function.requests

    known = [
        customer_event(i, f"upd-{i}", "2026-11-11T00:05:00+08:00", member_level="platinum")
        for i in range(BATCH)
    ]
    assert sync_function.invoke(known) == []
    assert sync_function.per_event(BATCH) <= 1.3, sync_function.requests

    assert sync_function.invoke(known) == []  # the queue delivers the batch again
    assert sync_function.per_event(BATCH) <= 1.3, sync_function.requests

    queries = ProfileQueries(sync_function.repository())
    repo = sync_function.repository()
    for i in (0, 57, 99):
        owners = repo.owners([f"phone##+861390000{i:04d}", f"member_no#brand-loyalty#M{i:05d}"])
        assert len({owner.profile_id for owner in owners.values()}) == 1 and len(owners) == 2
        profile = queries.get(next(iter(owners.values())).profile_id)
        assert profile is not None and profile["attributes"]["member_level"] == "platinum"


def test_events_of_one_customer_in_one_batch_end_as_one_by_one(sync_function):
    """A new customer's first events, its update and a late older change, all in one batch, twice
    (a redelivered message beside its original), end where applying them one by one ends."""
    events = [
        customer_event(1, "a", "2026-11-11T00:00:00+08:00", member_level="silver", city="上海"),
        customer_event(1, "b", "2026-11-11T00:10:00+08:00", member_level="gold"),
        customer_event(1, "c", "2026-11-10T23:00:00+08:00", city="杭州"),  # older: loses on city
        {
            **customer_event(2, "d", "2026-11-11T00:01:00+08:00", nickname="xm"),
            "identifiers": [
                {"type": "member_no", "value": "M00001", "scope": "brand-loyalty"},  # customer 1 too
                {"type": "wechat_openid", "value": "oBatch0001", "scope": "wx-app"},
            ],
        },
    ]
    assert sync_function.invoke(events + events) == []

    reference = build_resources(sync_function.resources.clients.endpoint_url)
    one_by_one_repo = DynamoProfileRepository(
        reference.clients("dynamodb"),
        reference.table("ProfilesTable"),
        reference.table("IdentityTable"),
        reference.table("TimelineTable"),
    )
    one_by_one = ProfileSync(one_by_one_repo, bootstrap.rules_document())
    for event in events:
        one_by_one.apply(CanonicalEvent.model_validate(event))

    def profile(repo: DynamoProfileRepository) -> dict[str, Any]:
        owners = repo.owners(["wechat_openid#wx-app#oBatch0001", "member_no#brand-loyalty#M00001"])
        assert len({owner.profile_id for owner in owners.values()}) == 1  # one customer
        document = ProfileQueries(repo).get(next(iter(owners.values())).profile_id)
        assert document is not None
        return {
            "attributes": document["attributes"],
            "identifiers": sorted(json.dumps(i, sort_keys=True) for i in document["identifiers"]),
        }

    batched = profile(sync_function.repository())
    assert batched == profile(one_by_one_repo)
    assert batched["attributes"] == {"member_level": "gold", "city": "上海", "nickname": "xm"}
