"""Inventory through `scrm local run`, as an integrator uses it: stock movements as canonical
events (POST /events, the inventory queue, InventoryFunction), stock per location (GET
/inventory/{sku}), and reservations from many clients at once that never oversell."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
WAREHOUSE = "wh-shanghai"  # config/rules.dev.json


def movement_event(event_id: str, kind: str, sku: str, quantity: int, **more: Any) -> dict[str, Any]:
    location = more.pop("location", WAREHOUSE)
    return {
        "event_id": event_id,
        "source": "wms",
        "type": "inventory",
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "inventory": {"kind": kind, "sku": sku, "location": location, "quantity": quantity, **more},
    }


def location_of(stack: RunningStack, sku: str, location: str = WAREHOUSE) -> dict[str, Any]:
    status, body = stack.call("GET", f"/inventory/{sku}")
    assert status == 200, body
    return next((entry for entry in body["locations"] if entry["location"] == location), {})


def reservation(reservation_id: str, sku: str, quantity: int = 1, channel: str = "tmall") -> dict[str, Any]:
    return {
        "reservation_id": reservation_id,
        "location": WAREHOUSE,
        "channel": channel,
        "lines": [{"sku": sku, "quantity": quantity}],
    }


def test_movements_are_applied_once_and_bad_ones_are_refused_naming_the_field(
    local_stack: RunningStack,
) -> None:
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    receipt = movement_event(f"rcv-{sku}", "receipt", sku, 10)
    status, report = local_stack.call(
        "POST",
        "/events",
        {
            "events": [
                receipt,
                receipt,  # a duplicate in the same request
                movement_event(f"bad-loc-{sku}", "receipt", sku, 1, location="store-nowhere"),
                movement_event(f"bad-qty-{sku}", "sale", sku, -2),
                movement_event(f"count-{sku}", "count", sku, 7),  # a count needs its source_version
            ]
        },
    )
    assert status == 207, report
    errors = {r["index"]: r.get("errors", []) for r in report["results"] if r["status"] == "rejected"}
    assert [e["field"] for e in errors[2]] == ["inventory.location"]
    assert "store-nowhere" in errors[2][0]["message"]
    assert [e["field"] for e in errors[3]] == ["inventory"] and "negative" in errors[3][0]["message"]
    assert [e["field"] for e in errors[4]] == ["inventory"] and "source_version" in errors[4][0]["message"]

    wait_for(lambda: location_of(local_stack, sku).get("on_hand") == 10, timeout=60)
    local_stack.call("POST", "/events", receipt)  # redelivered later: still once
    sale = movement_event(f"sale-{sku}", "sale", sku, 3)
    local_stack.call("POST", "/events", sale)
    wait_for(lambda: location_of(local_stack, sku).get("on_hand") == 7, timeout=60)
    status, history = local_stack.call("GET", f"/inventory/{sku}/locations/{WAREHOUSE}/movements")
    assert status == 200
    assert Counter(m["kind"] for m in history["movements"]) == {"receipt": 1, "sale": 1}


def test_concurrent_reservations_from_three_channels_never_oversell(local_stack: RunningStack) -> None:
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    local_stack.call("POST", "/events", movement_event(f"rcv-{sku}", "receipt", sku, 10))
    wait_for(lambda: location_of(local_stack, sku).get("on_hand") == 10, timeout=60)

    attempts = [
        (f"{channel}-{sku}-{n}", channel) for n in range(8) for channel in ("tmall", "doudian", "youzan")
    ]

    def reserve(attempt: tuple[str, str]) -> tuple[str, int, Any]:
        reservation_id, channel = attempt
        status, body = local_stack.call(
            "POST", "/inventory/reservations", reservation(reservation_id, sku, 1, channel)
        )
        return reservation_id, status, body

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(reserve, attempts))
    held = [rid for rid, status, _ in answers if status == 201]
    short = [body for _, status, body in answers if status == 409]
    assert len(held) == 10 and len(short) == 14, Counter(status for _, status, _ in answers)
    assert short[-1]["shortfalls"] == [
        {"sku": sku, "requested": 1, "available": 0, "available_elsewhere": {}}
    ]
    assert {k: location_of(local_stack, sku)[k] for k in ("on_hand", "reserved", "available")} == {
        "on_hand": 10,
        "reserved": 10,
        "available": 0,
    }

    # a client retrying a held reservation gets it back, nothing more is held
    status, again = local_stack.call(
        "POST", "/inventory/reservations", reservation(held[0], sku, 1, held[0].split("-")[0])
    )
    assert status == 200 and again["status"] == "held"
    # the same id with other lines is a conflict, not a second reservation
    status, _ = local_stack.call(
        "POST", "/inventory/reservations", reservation(held[0], sku, 2, held[0].split("-")[0])
    )
    assert status == 409

    status, released = local_stack.call("POST", f"/inventory/reservations/{held[0]}/release")
    assert status == 200 and released["status"] == "released"
    status, shipped = local_stack.call("POST", f"/inventory/reservations/{held[1]}/ship")
    assert status == 200 and shipped["status"] == "shipped"
    status, _ = local_stack.call("POST", f"/inventory/reservations/{held[1]}/release")
    assert status == 409  # shipped goods are not given back by a release
    assert {k: location_of(local_stack, sku)[k] for k in ("on_hand", "reserved", "available")} == {
        "on_hand": 9,
        "reserved": 8,
        "available": 1,
    }


def test_reservation_input_errors_are_4xx_naming_the_field(local_stack: RunningStack) -> None:
    status, body = local_stack.call(
        "POST", "/inventory/reservations", {"reservation_id": "x", "location": WAREHOUSE}
    )
    assert status == 422 and {e["field"] for e in body["errors"]} == {"channel", "lines"}
    status, body = local_stack.call("POST", "/inventory/reservations", b"{not json")
    assert status == 400
    status, body = local_stack.call(
        "POST", "/inventory/reservations", {**reservation("y", "SKU-1"), "location": "store-nowhere"}
    )
    assert status == 422 and "store-nowhere" in body["message"]
    status, _ = local_stack.call("GET", "/inventory/SKU-1", api_key=None)
    assert status == 401
    status, _ = local_stack.call("GET", "/inventory/reservations/never-made")
    assert status == 404
    status, body = local_stack.call("POST", "/inventory/transfers/tmall:1:2~1/ack", {"status": "maybe"})
    assert status == 422 and [e["field"] for e in body["errors"]] == ["status"]
    status, _ = local_stack.call("POST", "/inventory/transfers/tmall:1:2~1/ack", {"status": "accepted"})
    assert status == 404
