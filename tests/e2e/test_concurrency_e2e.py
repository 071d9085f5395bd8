"""Many requests at once against `scrm local run`: every answer belongs to the request that asked.

Lambda runs one invocation per execution environment; so does the local stack. Module-level
state of a handler (Powertools' resolver holds the current event) is therefore never shared by
two requests, and no caller ever reads another customer's profile.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, RunningStack
from tests.unit.channels.test_youzan import full_order_info
from tests.unit.channels.test_youzan import push_body as youzan_push

pytestmark = pytest.mark.e2e
THREADS = 8
CUSTOMERS = 20
YOUZAN_DEV = json.loads((ROOT / "config" / "channels.dev.json").read_text())["youzan"]


def phone_of(run: str, index: int) -> str:
    """A distinct CN mobile per run and customer (not in the dev blocklist)."""
    return f"139{int(run, 16) % 10_000:04d}{index:04d}"


def seed(stack: RunningStack, run: str) -> dict[str, str]:
    """CUSTOMERS profiles, each with its own phone and name; returns phone -> expected name."""
    expected = {phone_of(run, i): f"顾客{run}-{i}" for i in range(CUSTOMERS)}
    events = [
        {
            "event_id": f"seed-{run}-{i}",
            "source": "pos",
            "type": "profile.updated",
            "occurred_at": "2026-11-01T09:30:00+08:00",
            "identifiers": [{"type": "phone", "value": phone}],
            "attributes": {"name": name, "customer_code": f"{run}-{i}"},
        }
        for i, (phone, name) in enumerate(expected.items())
    ]
    assert stack.call("POST", "/events", {"events": events})[0] == 202
    stack.wait_drained()
    return expected


def lookup(stack: RunningStack, phone: str) -> tuple[str, int, Any]:
    status, body = stack.call("GET", f"/profiles?type=phone&value={urllib.parse.quote(phone)}")
    return phone, status, body


def test_concurrent_lookups_never_cross_customers(local_stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:6]
    expected = seed(local_stack, run)
    phones = [phone for _ in range(400 // CUSTOMERS) for phone in expected]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(lambda phone: lookup(local_stack, phone), phones))
    assert all(status == 200 for _, status, _ in answers), Counter(status for _, status, _ in answers)
    crossed = [
        (phone, body["attributes"].get("name"))
        for phone, _, body in answers
        if body["attributes"].get("name") != expected[phone]
        or f"+86{phone}" not in [i["value"] for i in body["identifiers"] if i["type"] == "phone"]
    ]
    assert crossed == []
    assert len({body["profile_id"] for _, _, body in answers}) == CUSTOMERS


def test_concurrent_event_posts_answer_for_their_own_events(local_stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:6]
    expected = seed(local_stack, run)
    posts = []
    for n in range(80):
        index = n % CUSTOMERS
        phone = list(expected)[index]
        event_id = f"note-{run}-{n}"
        posts.append(
            (
                event_id,
                {
                    "event_id": event_id,
                    "source": "erp",
                    "type": "profile.updated",
                    "occurred_at": f"2026-11-02T09:{n // 60:02d}:{n % 60:02d}+08:00",
                    "identifiers": [{"type": "phone", "value": phone}],
                    "attributes": {"erp_note": f"{run}-{index}"},
                },
            )
        )

    def post(item: tuple[str, dict[str, Any]]) -> tuple[str, int, Any]:
        event_id, event = item
        status, body = local_stack.call("POST", "/events", event)
        return event_id, status, body

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(post, posts))
    assert all(status == 202 for _, status, _ in answers)
    assert [body["results"][0]["event_id"] for _, _, body in answers] == [e for e, _, _ in answers]
    local_stack.wait_drained()
    for index, phone in enumerate(expected):
        body = lookup(local_stack, phone)[2]
        assert body["attributes"]["erp_note"] == f"{run}-{index}"
        assert body["attributes"]["customer_code"] == f"{run}-{index}"


def test_concurrent_webhook_pushes_land_on_their_own_customers(local_stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:6]
    expected = seed(local_stack, run)
    pushes = []
    for index, phone in enumerate(expected):
        msg = full_order_info(phone=phone, yz_open_id=f"yzOpen-{run}-{index}")
        msg["full_order_info"]["order_info"]["tid"] = f"E{run}{index:04d}"
        body = youzan_push(msg=msg, id=f"E{run}{index:04d}", msg_id=f"{run}-{index}")
        secret = YOUZAN_DEV["client_id"].encode() + body + YOUZAN_DEV["client_secret"].encode()
        pushes.append((body, hashlib.md5(secret).hexdigest()))  # noqa: S324 - Youzan's signature

    def push(item: tuple[bytes, str]) -> tuple[int, Any]:
        body, sign = item
        return local_stack.call("POST", "/webhooks/youzan", body, api_key=None, headers={"Event-Sign": sign})

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(push, pushes * 2))  # every push twice: platforms retry
    assert all(status == 200 and body["code"] == 0 for status, body in answers), answers[:3]
    local_stack.wait_drained()
    for index, phone in enumerate(expected):
        profile = lookup(local_stack, phone)[2]
        assert profile["attributes"]["name"] == expected[phone]
        opens = [i["value"] for i in profile["identifiers"] if i["type"] == "youzan_open_id"]
        assert opens == [f"yzOpen-{run}-{index}"]
        status, timeline = local_stack.call("GET", f"/profiles/{profile['profile_id']}/timeline")
        assert status == 200
        orders = [e for e in timeline["entries"] if e["kind"] == "order"]
        assert [o["data"]["order_id"] for o in orders] == [f"E{run}{index:04d}"], orders
