"""Privacy on moto, through the real handlers. Erasure at scale: 1,000 people synced (profiles,
identity, evidence, timeline with orders, landed requests), 1,000 erasures requested through the
privacy API, and one ErasureFunction run completes every one of them, store by store; the people
who shared their landed requests keep their data; late events for an erased person are dropped.
The access log: every profile read through the API is recorded (caller, profile, time, purpose)
before it is answered, and can be read back by profile or by caller."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scrm_sync import bootstrap
from scrm_sync.domain.privacy import STORES

from tests.api_events import http_event
from tests.integration.conftest import AppResources, build_resources, load_function, use_function_environment
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "privacy-test-key"
PEOPLE = 1000
VARIABLES = {
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "ORDERS_TABLE": "OrdersTable",
    "LANDING_BUCKET": "LandingBucket",
    "ARCHIVE_BUCKET": "ArchiveBucket",
    "PRIVACY_TABLE": "PrivacyTable",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
    "CHECKPOINTS_TABLE": "CheckpointsTable",
    "AUDIT_TABLE": "AuditTable",
    "ACCESS_LOG_TABLE": "AccessLogTable",
}


@dataclass
class Stack:
    resources: AppResources
    sync: Any
    api: Any
    erasure: Any
    profiles: Any

    def call(
        self, method: str, path: str, body: Any = None, handler: Any = None, **more: Any
    ) -> tuple[int, Any]:
        headers = {"x-api-key": API_KEY, **more.pop("headers", {})}
        event = http_event(method, path, body, headers=headers, **more)
        answer = (handler or self.api).lambda_handler(event, LambdaContext())
        return int(answer["statusCode"]), json.loads(answer["body"] or "null")

    def sync_events(self, events: list[dict[str, Any]]) -> None:
        records = [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "r",
                "body": json.dumps(e),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                "awsRegion": "us-east-1",
            }
            for e in events
        ]
        answer = self.sync.lambda_handler({"Records": records}, LambdaContext())
        assert answer["batchItemFailures"] == []


@pytest.fixture
def stack(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    resources = build_resources(moto_endpoint)
    resources.clients("secretsmanager").put_secret_value(
        SecretId=resources.names["ChannelCredentialsSecret"],
        SecretString=json.dumps({"api": {"keys": {"privacy-test": API_KEY}}}),
    )
    resources.clients("ssm").put_parameter(Name=resources.names["RulesParameter"], Value="{}", Overwrite=True)
    use_function_environment(monkeypatch, moto_endpoint, resources, VARIABLES, "scrm-privacy")
    try:
        yield Stack(
            resources,
            load_function("profile_sync"),
            load_function("privacy_api"),
            load_function("erasure"),
            load_function("profile_api"),
        )
    finally:
        bootstrap.reset()


def phone(n: int) -> str:
    return f"1390{n:07d}"


def person_events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"profile-{n}",
            "source": "pos",
            "type": "profile.updated",
            "occurred_at": "2026-12-03T09:00:00+08:00",
            "identifiers": [
                {"type": "phone", "value": phone(n)},
                {"type": "member_no", "value": f"MEM-{n:05d}", "scope": "pos"},
            ],
            "attributes": {"name": f"顾客{n:05d}"},
        },
        {
            "event_id": f"order-{n}",
            "source": "pos",
            "type": "order.created",
            "occurred_at": "2026-12-03T09:05:00+08:00",
            "identifiers": [{"type": "phone", "value": phone(n)}],
            "order": {"order_id": f"SO-{n:05d}", "status": "paid", "total": "59.00"},
        },
    ]


def test_a_thousand_erasures_complete_in_one_scheduled_run(stack: Stack) -> None:
    everyone = [*range(PEOPLE), PEOPLE]  # the last one is not erased
    events = [e for n in everyone for e in person_events(n)]
    for start in range(0, len(events), 100):
        stack.sync_events(events[start : start + 100])
    # landed requests, each naming ten people (one of them the person who stays)
    s3 = stack.resources.clients("s3")
    bucket = stack.resources.names["LandingBucket"]
    for start in range(0, PEOPLE, 10):
        request = {"events": [person_events(n)[0] for n in [*range(start, start + 10), PEOPLE]]}
        s3.put_object(
            Bucket=bucket, Key=f"raw/events/dt=2026-12-03/{start:05d}.json", Body=json.dumps(request)
        )

    def erase(n: int) -> str:
        status, body = stack.call(
            "POST", "/erasures", {"identifiers": [{"type": "phone", "value": phone(n)}]}
        )
        assert status == 202, body
        return str(body["erasure_id"])

    # one request at a time: Lambda runs one invocation per execution environment
    erasure_ids = [erase(n) for n in range(PEOPLE)]

    started = time.monotonic()
    report = stack.erasure.lambda_handler({}, LambdaContext(remaining_millis=900_000))
    elapsed = time.monotonic() - started
    assert report["erasures"] == PEOPLE and report["completed"] == PEOPLE, report
    assert report["landing"]["rewritten"] == PEOPLE // 10
    print(f"\n1,000 erasures in one run: {elapsed:.1f} s on moto")

    for erasure_id in erasure_ids[:: PEOPLE // 20]:
        status, body = stack.call("GET", f"/erasures/{erasure_id}")
        assert status == 200 and body["status"] == "complete"
        assert body["stores"] == dict.fromkeys(STORES, "erased")

    dynamodb = stack.resources.clients("dynamodb")
    for table in (
        "ProfilesTable",
        "IdentityTable",
        "TimelineTable",
        "OrdersTable",
        "AuditTable",
        "PrivacyTable",
    ):
        text = json.dumps(dynamodb.scan(TableName=stack.resources.names[table])["Items"], ensure_ascii=False)
        assert phone(7) not in text and "顾客00007" not in text and "MEM-00007" not in text, table
        assert phone(PEOPLE) in text or table not in ("IdentityTable",), table  # the one who stays
    left = [
        json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
    ]
    assert all(len(request["events"]) == 1 for request in left)  # only the person who stays

    # a late event for an erased person is dropped; the person who stays still syncs
    stack.sync_events([*person_events(7), *person_events(PEOPLE)])
    text = json.dumps(dynamodb.scan(TableName=stack.resources.names["IdentityTable"])["Items"])
    assert phone(7) not in text and phone(PEOPLE) in text


def test_every_profile_read_is_recorded_before_it_is_answered(stack: Stack) -> None:
    stack.sync_events(person_events(1))
    status, found = stack.call(
        "GET",
        "/profiles",
        handler=stack.profiles,
        query={"type": "phone", "value": phone(1)},
        headers={"x-purpose": "customer_service"},
    )
    assert status == 200
    profile_id = found["profile_id"]
    by_id = {"handler": stack.profiles, "route": "/profiles/{profile_id}"}
    assert stack.call("GET", f"/profiles/{profile_id}", **by_id)[0] == 200
    timeline = {"handler": stack.profiles, "route": "/profiles/{profile_id}/timeline"}
    assert stack.call("GET", f"/profiles/{profile_id}/timeline", **timeline)[0] == 200
    refused = stack.call("GET", f"/profiles/{profile_id}", **by_id, headers={"x-purpose": "王小明 asked"})
    assert refused[0] == 400 and "X-Purpose" in refused[1]["message"]  # free text never reaches the log

    status, log = stack.call("GET", "/access-log", query={"profile_id": profile_id})
    assert status == 200
    assert [(e["purpose"], e["route"]) for e in log["entries"]] == [
        ("unspecified", "GET /profiles/{profile_id}/timeline"),
        ("unspecified", "GET /profiles/{profile_id}"),
        ("customer_service", "GET /profiles"),
    ]
    assert {e["caller"] for e in log["entries"]} == {"privacy-test"}
    assert phone(1) not in json.dumps(log) and "顾客00001" not in json.dumps(log)
    by_caller = stack.call("GET", "/access-log", query={"caller": "privacy-test"})[1]["entries"]
    assert len(by_caller) == 3
    assert stack.call("GET", "/access-log")[0] == 400  # by profile or by caller
