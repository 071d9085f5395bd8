"""Promotion mode: which invocations switch it, and what each lane's event source is set to (the
Lambda API answered by botocore's Stubber: the requests are checked as the SDK sends them)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from scrm_sync.adapters.event_sources import EventSourceNotFound, LambdaEventSources
from scrm_sync.domain.promotion import LaneSettings, PromotionPlan, mode_of
from scrm_sync.services.promotion import PromotionMode

INVENTORY_QUEUE = "arn:aws:sqs:us-east-1:123456789012:scrm-InventoryQueue"
INGEST_QUEUE = "arn:aws:sqs:us-east-1:123456789012:scrm-IngestQueue"
INVENTORY_UUID = "6d9bfb9e-9b4c-4d8e-9a6a-1b2c3d4e5f60"
SYNC_UUID = "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
PLAN = PromotionPlan(
    inventory={
        "normal": LaneSettings(batch_size=50, maximum_concurrency=20),
        "promotion": LaneSettings(batch_size=10, maximum_concurrency=100),
    },
    profiles={
        "normal": LaneSettings(batching_window_seconds=1),
        "promotion": LaneSettings(batching_window_seconds=0),
    },
)


def alarm(state: str) -> dict[str, object]:
    message = {"AlarmName": "InventorySurgeAlarm", "NewStateValue": state}
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}


@pytest.mark.parametrize(
    ("event", "mode"),
    [
        ({"mode": "promotion"}, "promotion"),
        ({"mode": "normal"}, "normal"),
        (alarm("ALARM"), "promotion"),
        (alarm("OK"), "normal"),
        (alarm("INSUFFICIENT_DATA"), None),
        ({"mode": "party"}, None),
        ({"Records": [{"Sns": {"Message": "not json"}}]}, None),
    ],
)
def test_what_switches_the_mode(event: dict[str, object], mode: str | None) -> None:
    assert mode_of(event) == mode


def mappings(queue: str, uuid: str) -> dict[str, object]:
    return {"EventSourceMappings": [{"UUID": uuid, "EventSourceArn": queue}]}


def test_promotion_sets_both_lanes_and_normal_restores_them() -> None:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    lanes = {"inventory": ("scrm-Inventory", INVENTORY_QUEUE), "profiles": ("scrm-ProfileSync", INGEST_QUEUE)}
    with Stubber(client) as stub:
        for mode in ("promotion", "normal"):
            stub.add_response(
                "list_event_source_mappings",
                mappings(INVENTORY_QUEUE, INVENTORY_UUID),
                {"FunctionName": "scrm-Inventory", "EventSourceArn": INVENTORY_QUEUE},
            )
            inventory = PLAN.inventory[mode]  # type: ignore[index]
            stub.add_response(
                "update_event_source_mapping",
                {},
                {
                    "UUID": INVENTORY_UUID,
                    "BatchSize": inventory.batch_size,
                    "ScalingConfig": {"MaximumConcurrency": inventory.maximum_concurrency},
                },
            )
            stub.add_response(
                "list_event_source_mappings",
                mappings(INGEST_QUEUE, SYNC_UUID),
                {"FunctionName": "scrm-ProfileSync", "EventSourceArn": INGEST_QUEUE},
            )
            window = PLAN.profiles[mode].batching_window_seconds  # type: ignore[index]
            stub.add_response(
                "update_event_source_mapping",
                {},
                {"UUID": SYNC_UUID, "MaximumBatchingWindowInSeconds": window},
            )
            PromotionMode(LambdaEventSources(client), PLAN, lanes).switch(mode)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


def test_a_lane_without_its_event_source_is_an_error_naming_it() -> None:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_event_source_mappings", {"EventSourceMappings": []})
        with pytest.raises(EventSourceNotFound, match="scrm-Inventory"):
            LambdaEventSources(client).configure(
                "scrm-Inventory", INVENTORY_QUEUE, LaneSettings(batch_size=10)
            )
