"""Hot and cold orders through `scrm local run`: orders dated 200 and 10 days ago arrive as
events; `scrm schedule ArchiveOrdersFunction` moves the old one to the archive bucket (gzip JSON
Lines with a manifest) and keeps the recent one hot; a second run changes nothing; the timeline
says older orders are archived; `scrm archive restore` brings the old order back."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import RunningStack, start_local_stack

pytestmark = pytest.mark.e2e
PHONE = "13500135000"


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with start_local_stack() as running:
        yield running


def aws(stack: RunningStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{stack.env['MOTO_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def order_event(order_id: str, days_ago: int) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0).isoformat()
    return {
        "event_id": f"pos-{order_id}",
        "source": "pos",
        "type": "order.created",
        "occurred_at": at,
        "identifiers": [{"type": "phone", "value": PHONE}],
        "order": {"order_id": order_id, "status": "paid", "total": "128.00", "created_at": at},
    }


def archive_objects(stack: RunningStack) -> dict[str, bytes]:
    s3 = aws(stack, "s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if "archivebucket" in b["Name"].lower()]
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def schedule_archive(stack: RunningStack) -> None:
    result = stack.scrm("schedule", "ArchiveOrdersFunction")
    assert result.returncode == 0, result.stderr


def test_old_orders_move_to_the_archive_and_come_back(stack):
    status, _ = stack.call(
        "POST", "/events", {"events": [order_event("OLD-1", 200), order_event("NEW-1", 10)]}
    )
    assert status == 202
    stack.wait_drained()

    schedule_archive(stack)
    objects = archive_objects(stack)
    old_day = (datetime.now(UTC) - timedelta(days=200)).date().isoformat()
    data = {k: v for k, v in objects.items() if k.startswith("orders/") and k.endswith(".jsonl.gz")}
    manifests = [k for k in objects if k.startswith("manifests/")]
    (key,) = data
    assert f"dt={old_day}/" in key and len(manifests) == 1
    rows = [json.loads(line) for line in gzip.decompress(data[key]).splitlines()]
    assert [r["order_id"] for r in rows] == ["OLD-1"]

    schedule_archive(stack)  # again: nothing new to archive, nothing duplicated
    assert archive_objects(stack).keys() == objects.keys()

    status, found = stack.call("GET", f"/profiles?type=phone&value={PHONE}")
    assert status == 200
    status, timeline = stack.call("GET", f"/profiles/{found['profile_id']}/timeline")
    assert status == 200 and timeline["archived_orders"]["older_orders_archived"] is True

    restored = stack.scrm("archive", "restore", "--order-id", "OLD-1")
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["restored"] and not report["not_found"]
    again = json.loads(stack.scrm("archive", "restore", "--order-id", "OLD-1").stdout)
    assert again["already_hot"] and not again["restored"]
