"""PIPL erasure through `scrm local run`: a person seeded through every path (a signed Youzan
webhook, POST /events, a POS member row through the incremental pull, an order old enough to be
archived to S3) is erased; afterwards no table and no bucket holds their phone number, name or
open ids; a platform retry, a replay of the landed pushes and a re-read of the POS row bring
nothing back; the audit chain still verifies; and the person who shared their requests stays."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.mariadb import MariaDB
from tests.unit.channels.test_youzan import full_order_info, push_body
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]
ROOT = Path(__file__).resolve().parents[2]
DEV_CHANNELS = json.loads((ROOT / "config" / "channels.dev.json").read_text())
YOUZAN = DEV_CHANNELS["youzan"]
MP_APP_ID = DEV_CHANNELS["wechat_mp"]["app_id"]

PHONE, NAME, OPEN_ID, YZ_OPEN_ID, MEMBER_NO = (
    "13722223333",
    "钱七七",
    "oErase-openid-7",
    "yzOpen-erase-7",
    "M-ERASE-7",
)
OTHER_PHONE, OTHER_NAME = "13744445555", "孙八八"
PERSONAL = (PHONE, NAME, OPEN_ID, YZ_OPEN_ID, MEMBER_NO)
# while the POS still holds the row, re-reading it may leave its primary key (the member number)
# as the incremental pull's position in CheckpointsTable: the brand deletes the row at the source
SOURCE_POSITION = ("CheckpointsTable", MEMBER_NO)


@pytest.fixture(scope="module")
def mariadb(mariadb: MariaDB) -> MariaDB:
    mariadb.run_sql_file(ROOT / "config" / "pos_schema.sql")
    return mariadb


@pytest.fixture(scope="module")
def stack(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    rules = json.loads((ROOT / "config" / "rules.dev.json").read_text())
    rules["incremental_pull"] = [
        {"table": "pos.members", "primary_key": ["member_no"], "last_modified_column": "updated_at"}
    ]
    path = tmp_path_factory.mktemp("rules") / "rules.json"
    path.write_text(json.dumps(rules))
    env = {"SCRM_CDC_MYSQL_URL": mariadb.url("pos"), "SCRM_RULES_FILE": str(path)}
    with start_local_stack(env) as running:
        yield running


def youzan_push(phone: str, yz_open_id: str, tid: str) -> tuple[bytes, str]:
    info = full_order_info(phone=phone, yz_open_id=yz_open_id)
    info["full_order_info"]["order_info"]["tid"] = tid
    body = push_body(msg=info, id=tid, msg_id=f"msg-{tid}", client_id=YOUZAN["client_id"])
    sign = hashlib.md5(YOUZAN["client_id"].encode() + body + YOUZAN["client_secret"].encode()).hexdigest()  # noqa: S324
    return body, sign


def post_youzan(stack: RunningStack, body: bytes, sign: str) -> int:
    request = urllib.request.Request(
        stack.base_url + "/webhooks/youzan",
        data=body,
        method="POST",
        headers={"Event-Sign": sign, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def events(phone: str, name: str, open_id: str, order_id: str) -> list[dict[str, Any]]:
    old = (datetime.now(UTC) - timedelta(days=200)).replace(microsecond=0).isoformat()
    return [
        {
            "event_id": f"mp-{open_id}",
            "source": "wechat_mp",
            "type": "profile.updated",
            "occurred_at": "2026-12-03T09:00:00+08:00",
            "identifiers": [
                {"type": "phone", "value": phone},
                {"type": "wechat_openid", "value": open_id, "scope": MP_APP_ID},
            ],
            "attributes": {"name": name, "city": "杭州"},
        },
        {
            "event_id": f"pos-{order_id}",
            "source": "pos",
            "type": "order.created",
            "occurred_at": old,
            "identifiers": [{"type": "phone", "value": phone}],
            "order": {"order_id": order_id, "status": "paid", "total": "128.00", "created_at": old},
        },
    ]


def find(stack: RunningStack, type_: str, value: str, scope: str = "") -> dict[str, Any] | None:
    status, body = stack.call(
        "GET", f"/profiles?type={type_}&value={value}" + (f"&scope={scope}" if scope else "")
    )
    return body if status == 200 else None


def everything(stack: RunningStack) -> list[tuple[str, str, str]]:
    """Every table item and bucket object version (unzipped) that holds one of the person's values."""
    found = []
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                text = json.dumps(item, ensure_ascii=False)
                found += [(table, "item", v) for v in PERSONAL if v in text]
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for listed in page.get("Versions", []):  # every version: the buckets are versioned
                body = s3.get_object(Bucket=bucket, Key=listed["Key"], VersionId=listed["VersionId"])[
                    "Body"
                ].read()
                text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode("utf-8", "replace")
                escaped = [json.dumps(v)[1:-1] for v in PERSONAL]  # as JSON writes non-ASCII
                found += [
                    (bucket, listed["Key"], v)
                    for v, e in zip(PERSONAL, escaped, strict=True)
                    if v in text or e in text
                ]
    return found


def run(stack: RunningStack, *args: str) -> dict[str, Any]:
    result = stack.scrm(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def test_an_erased_person_is_gone_from_every_store_and_stays_gone(stack, mariadb):
    # -- seeded through every path ---------------------------------------------------------------
    assert post_youzan(stack, *youzan_push(PHONE, YZ_OPEN_ID, "E2026120310000000007")) == 200
    assert post_youzan(stack, *youzan_push(OTHER_PHONE, "yzOpen-stays-8", "E2026120310000000008")) == 200
    both = events(PHONE, NAME, OPEN_ID, "OLD-ERASE-7") + events(
        OTHER_PHONE, OTHER_NAME, "oStays-8", "OLD-STAYS-8"
    )
    status, _ = stack.call("POST", "/events", {"events": both})  # one request names both people
    assert status == 202
    mariadb.execute(
        "INSERT INTO pos.members (member_no, phone, name, level, store) VALUES (%s, %s, %s, %s, %s)",
        (MEMBER_NO, PHONE, NAME, "gold", "SH-017"),
    )
    run(stack, "schedule", "IncrementalPullFunction")
    stack.wait_drained()
    person = wait_for(
        timeout=30.0,
        interval=0.3,
        predicate=lambda: (p := find(stack, "phone", PHONE)) and len(p["identifiers"]) >= 4 and p,
    )
    run(stack, "schedule", "ArchiveOrdersFunction")  # the 200-day-old orders go to the archive bucket
    assert {v for _, _, v in everything(stack)} == set(PERSONAL)  # everywhere, before

    # -- erased ---------------------------------------------------------------------------------
    status, erasure = stack.call("POST", "/erasures", {"identifiers": [{"type": "phone", "value": PHONE}]})
    assert status == 202 and erasure["profiles"] >= 1
    report = run(stack, "schedule", "ErasureFunction")
    assert report["completed"] == 1, report
    status, done = stack.call("GET", f"/erasures/{erasure['erasure_id']}")
    assert status == 200 and done["status"] == "complete"
    assert set(done["stores"].values()) == {"erased"}
    assert everything(stack) == []  # the member number too: the pull's position was rewound
    assert find(stack, "phone", PHONE) is None
    assert find(stack, "phone", OTHER_PHONE)["attributes"]["name"] == OTHER_NAME  # the other one stays

    # -- and stays gone: a platform retry, a replay, a re-read of the POS row ---------------------
    assert post_youzan(stack, *youzan_push(PHONE, YZ_OPEN_ID, "E2026120310000000007")) == 200
    mariadb.execute("UPDATE pos.members SET level = 'platinum' WHERE member_no = %s", (MEMBER_NO,))
    run(stack, "schedule", "IncrementalPullFunction")
    today = datetime.now(UTC).date().isoformat()
    run(stack, "replay", "--source", "youzan", "--since", today, "--run-id", "after-erasure")
    stack.wait_drained()
    assert find(stack, "phone", PHONE) is None and find(stack, "member_no", MEMBER_NO, "pos") is None
    # the retry was landed before the sync dropped it: the next run scrubs that day of the landing
    wait_for(timeout=30.0, interval=0.5, predicate=lambda: any(v == PHONE for _, _, v in everything(stack)))
    later = run(stack, "schedule", "ErasureFunction")
    assert later["late_arrivals"] >= 1, later
    left = [(where, value) for where, _, value in everything(stack)]
    assert all(where.endswith(SOURCE_POSITION[0]) and value == SOURCE_POSITION[1] for where, value in left), (
        left
    )

    verified = stack.scrm("audit", "verify", person["profile_id"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"]
