"""What `POST /events` accepts is storable, through `scrm local run`: values at the edge of
DynamoDB's number type sync and read back exactly; values past it are refused with a 422 naming
the field; nothing ends in a dead-letter queue either way."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def canonical(run: str, n: int, attributes: dict[str, Any], occurred_at: Any = None) -> dict[str, Any]:
    return {
        "event_id": f"edge-{run}-{n}",
        "source": "erp",
        "type": "profile.updated",
        "occurred_at": occurred_at or "2026-11-03T10:00:00+08:00",
        "identifiers": [{"type": "member_no", "value": f"EDGE-{run}", "scope": "erp"}],
        "attributes": attributes,
    }


def post_raw(stack: RunningStack, body: bytes) -> tuple[int, Any]:
    return stack.call("POST", "/events", body)


def test_values_at_the_edge_sync_and_values_past_it_are_refused(local_stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:6]
    storable = {
        "points": 10**37 + 1,  # 38 significant digits
        "ratio": 0.1,
        "tiny": 1e-130,
        # the largest float in range (a 38-digit float literal rounds to 1e126, past it)
        "huge": 9.999999999999998e125,
        "negative": -12345.678,
        "notes": "长" * 4096,
        **{f"extra_{i}": i for i in range(58)},  # 64 attributes in all
    }
    status, body = local_stack.call("POST", "/events", canonical(run, 0, storable))
    assert status == 202, body

    refused = [
        ({"points": 10**39}, "attributes.points"),
        ({"points": -1e308}, "attributes.points"),
        ({f"a{i}": i for i in range(65)}, "attributes"),
        ({"notes": "长" * 4097}, "attributes.notes"),
    ]
    for n, (attributes, field) in enumerate(refused, start=1):
        status, body = local_stack.call("POST", "/events", canonical(run, n, attributes))
        assert status == 422, (field, body)
        assert field in str(body["results"][0]["errors"]), body
    status, body = local_stack.call("POST", "/events", canonical(run, 9, {"a": 1}, occurred_at=1700000000))
    assert status == 422 and "occurred_at" in str(body["results"][0]["errors"])
    for literal in (b"NaN", b"Infinity", b"1e400"):
        raw = (
            b'{"event_id": "nan-' + run.encode() + b'", "source": "erp", "type": "profile.updated", '
            b'"occurred_at": "2026-11-03T10:00:00+08:00", '
            b'"identifiers": [{"type": "member_no", "value": "X", "scope": "erp"}], '
            b'"attributes": {"points": ' + literal + b"}}"
        )
        status, body = post_raw(local_stack, raw)
        assert status == 422 and "attributes.points" in str(body["results"][0]["errors"]), literal
    deep = b'{"events": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert post_raw(local_stack, deep)[0] == 400

    local_stack.wait_drained()
    assert all(depth == 0 for depth in local_stack.dead_letters().values()), local_stack.dead_letters()
    status, profile = local_stack.call("GET", f"/profiles?type=member_no&value=EDGE-{run}&scope=erp")
    assert status == 200, profile
    attributes = profile["attributes"]
    assert attributes["points"] == 10**37 + 1 and attributes["ratio"] == 0.1
    assert attributes["tiny"] == 1e-130 and Decimal(attributes["huge"]) == Decimal(repr(storable["huge"]))
    assert attributes["notes"] == "长" * 4096 and attributes["extra_57"] == 57
