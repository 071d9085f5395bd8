"""Device health through the real handlers on the application's resources in moto: POST
/devices/health (EventsApiFunction) lands the request, refuses bad scores naming their fields and
writes the rest to DeviceHealthStream by device; DeviceHealthFunction reads the stream, keeps each
(device, window) once, moves the device's state and sends zone changes to the ingest queue, and
the profile sync puts them on the timeline of the profile the device is registered to."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrm_local.event_records import kinesis_record

from tests.integration.conftest import AppResources, build_resources, load_function, use_function_environment
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
POST = json.loads((ROOT / "events/events_api/post_device_health.json").read_text())
SAMPLE = json.loads(POST["body"])["scores"][0]
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
VELOCITY = {"A": 0.7, "B": 2.0, "C": 3.6, "D": 6.0}  # group 2 rigid: boundaries 1.4 / 2.8 / 4.5

VARIABLES = {
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "LANDING_BUCKET": "LandingBucket",
    "INGEST_QUEUE_URL": "IngestQueue",
    "INVENTORY_QUEUE_URL": "InventoryQueue",
    "DEVICE_HEALTH_STREAM_NAME": "DeviceHealthStream",
    "DEVICE_HEALTH_TABLE": "DeviceHealthTable",
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
}


def score(window: int, zone: str, device: str = "pump-0042", **overrides: Any) -> dict[str, Any]:
    start = (START + timedelta(seconds=10 * window)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    features = {**SAMPLE["features"], "velocity_rms_mm_s": VELOCITY[zone]}
    return {
        **SAMPLE,
        "device_id": device,
        "window_start": start,
        "zone": zone,
        "features": features,
    } | overrides


class World:
    def __init__(self, resources: AppResources) -> None:
        self.resources = resources
        self.api = load_function("events_api")
        self.devices = load_function("device_health")
        self.sync = load_function("profile_sync")
        self.iterators: dict[str, str] = {}
        kinesis = resources.clients("kinesis")
        stream = resources.names["DeviceHealthStream"]
        self.stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            self.iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def post(self, body: Any) -> tuple[int, dict[str, Any]]:
        request = copy.deepcopy(POST)
        request["body"] = body if isinstance(body, str) else json.dumps(body)
        response = self.api.lambda_handler(request, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    def stream_records(self) -> list[dict[str, Any]]:
        """New records of every shard, as Lambda shows them (in order within a shard)."""
        kinesis, records = self.resources.clients("kinesis"), []
        for shard, iterator in self.iterators.items():
            answer = kinesis.get_records(ShardIterator=iterator)
            self.iterators[shard] = answer["NextShardIterator"]
            records += [kinesis_record(r, shard, self.stream_arn) for r in answer["Records"]]
        return records

    def consume(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.devices.lambda_handler({"Records": records}, LambdaContext()))

    def queued(self) -> list[dict[str, Any]]:
        sqs, url, bodies = self.resources.clients("sqs"), self.resources.names["IngestQueue"], []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return bodies

    def sync_events(self, events: list[dict[str, Any]]) -> None:
        records = [
            {
                "messageId": f"m-{i}",
                "receiptHandle": "r",
                "body": json.dumps(e),
                "attributes": {},
                "eventSource": "aws:sqs",
            }
            for i, e in enumerate(events)
        ]
        assert self.sync.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}

    def device_items(self, device: str) -> list[dict[str, Any]]:
        db = self.resources.clients("dynamodb")
        return db.query(
            TableName=self.resources.names["DeviceHealthTable"],
            KeyConditionExpression="device_id = :d",
            ExpressionAttributeValues={":d": {"S": device}},
        )["Items"]

    def objects(self, prefix: str) -> list[str]:
        s3 = self.resources.clients("s3")
        found = s3.list_objects_v2(Bucket=self.resources.names["LandingBucket"], Prefix=prefix)
        return [item["Key"] for item in found.get("Contents", [])]


@pytest.fixture
def world(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    resources = build_resources(moto_endpoint)
    resources.clients("secretsmanager").put_secret_value(  # the dev API key
        SecretId=resources.names["ChannelCredentialsSecret"],
        SecretString=(ROOT / "config/channels.dev.json").read_text(),
    )
    use_function_environment(monkeypatch, moto_endpoint, resources, VARIABLES)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    yield World(resources)


def test_posted_scores_reach_the_stream_by_device_and_bad_ones_are_refused_by_field(world):
    status, body = world.post(
        {
            "scores": [
                score(0, "A"),
                score(0, "A", device="fan-7"),
                {**score(1, "A"), "zone": "E"},
                {"schema": "x"},
            ]
        }
    )
    assert status == 207
    assert body["accepted"] == 2
    refused = {(r["index"], r["field"]) for r in body["rejected"]}
    assert (2, "zone") in refused and (3, "schema") in refused and (3, "device_id") in refused
    records = world.stream_records()
    assert sorted(r["kinesis"]["partitionKey"] for r in records) == ["fan-7", "pump-0042"]
    assert len(world.objects("raw/devices/")) == 1 and len(world.objects("quarantine/devices/")) == 1

    status, body = world.post({"scores": [score(0, "A", machine_class="group9")]})
    assert status == 422 and body["rejected"][0]["field"] == "machine_class"
    assert "group2_rigid" in body["rejected"][0]["message"]
    assert world.post("not json")[0] == 400
    assert world.post({"events": []})[0] == 400


def test_a_device_in_zone_c_reaches_its_owners_timeline_once_however_often_it_is_delivered(world):
    registration = {
        "event_id": "device-registry-pump-0042",
        "source": "device_registry",
        "type": "interaction",
        "occurred_at": "2026-12-01T10:00:00+08:00",
        "identifiers": [
            {"type": "device_id", "value": "pump-0042"},
            {"type": "phone", "value": "13800138000"},
        ],
        "interaction": {
            "kind": "device_registered",
            "content": "Pump P-200 installed",
            "channel_ref": "pump-0042",
        },
    }
    world.sync_events([registration])
    zones = ["A", "A", "C", "C", "C", "C"]
    status, body = world.post({"scores": [score(i, z) for i, z in enumerate(zones)]})
    assert (status, body["accepted"]) == (202, 6)
    records = world.stream_records()
    assert world.consume(records) == {"batchItemFailures": []}
    assert world.consume(records) == {"batchItemFailures": []}  # Lambda's retry of the same batch
    events = world.queued()
    kinds = [e["interaction"]["kind"] for e in events]
    # the first score, then C believed after three windows, and the service request; the retried
    # batch sent the same event ids again, which the profile sync drops as duplicates
    assert sorted(set(kinds)) == ["device_health", "device_service_needed"]
    assert len({e["event_id"] for e in events}) == 3
    world.sync_events(events)

    items = world.device_items("pump-0042")
    assert sum(item["sk"]["S"].startswith("score#") for item in items) == 6
    (state,) = [item for item in items if item["sk"]["S"] == "state"]
    assert state["zone"]["S"] == "C" and state["service_zone"]["S"] == "C"
    kept = next(item for item in items if item["sk"]["S"] == "score#2026-12-03T08:00:50.000Z")
    assert int(kept["expire_at"]["N"]) > int(START.timestamp()) + 394 * 86400  # DeviceHealthRetentionDays

    db, timeline = world.resources.clients("dynamodb"), world.resources.names["TimelineTable"]
    entries = db.scan(TableName=timeline)["Items"]
    interactions = [entry["data"]["M"] for entry in entries if entry["kind"]["S"] == "interaction"]
    kinds_on_timeline = sorted(data["kind"]["S"] for data in interactions)
    assert kinds_on_timeline == [
        "device_health",
        "device_health",
        "device_registered",
        "device_service_needed",
    ]
    assert len({entry["profile_id"]["S"] for entry in entries}) == 1  # all on the owner's profile


def test_a_malformed_stream_record_is_quarantined_and_skipped(world):
    kinesis = world.resources.clients("kinesis")
    stream = world.resources.names["DeviceHealthStream"]
    kinesis.put_record(StreamName=stream, Data=b'{"schema": "scrm.device_health/1"}', PartitionKey="pump-9")
    kinesis.put_record(
        StreamName=stream, Data=json.dumps(score(0, "B", device="pump-9")).encode(), PartitionKey="pump-9"
    )
    assert world.consume(world.stream_records()) == {"batchItemFailures": []}
    (quarantined,) = world.objects("quarantine/devices/stream/pump-9/")
    assert quarantined.endswith(".json")
    assert any(item["sk"]["S"] == "state" for item in world.device_items("pump-9"))
