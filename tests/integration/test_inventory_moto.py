"""The inventory ledger on moto (InventoryTable from template.yaml): never oversold under
concurrency, every movement applied once, and any interleaving of receipts, sales, counts,
reservations and releases, with duplicates, ends where a plain reference model ends."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.dynamodb_inventory import DynamoInventoryStore
from scrm_sync.domain.inventory import (
    InventoryMovement,
    InventoryRules,
    Location,
    ReservationLine,
    ReservationRequest,
)
from scrm_sync.services.inventory import Inventory, ReservationConflict, UnknownLocation

from tests.integration.conftest import AppResources, build_resources

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
RULES = InventoryRules(
    locations={
        "wh-1": Location(kind="warehouse", safety_stock=0, latitude=31.23, longitude=121.47),
        "store-a": Location(kind="store", safety_stock=1, latitude=31.22, longitude=121.45),
    }
)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def inventory_on(
    resources: AppResources, rules: InventoryRules = RULES, clock: Clock | None = None
) -> Inventory:
    clock = clock or Clock()
    store = DynamoInventoryStore(resources.clients("dynamodb"), resources.table("InventoryTable"), clock)
    return Inventory(store, lambda: rules, clock)


def movement(
    kind: str, quantity: int, sku: str = "SKU-1", location: str = "wh-1", **more: Any
) -> InventoryMovement:
    return InventoryMovement.model_validate(
        {"kind": kind, "sku": sku, "location": location, "quantity": quantity, **more}
    )


def hold(
    reservation_id: str, quantity: int, channel: str = "tmall", sku: str = "SKU-1"
) -> ReservationRequest:
    return ReservationRequest(
        reservation_id=reservation_id,
        location="wh-1",
        channel=channel,
        lines=[ReservationLine(sku=sku, quantity=quantity)],
    )


def stock_at(inventory: Inventory, location: str, sku: str = "SKU-1") -> dict[str, Any]:
    locations = inventory.stock(sku)["locations"]
    assert isinstance(locations, list)
    return next((entry for entry in locations if entry["location"] == location), {})


def test_eight_workers_from_three_channels_never_take_the_last_ten_units_below_zero(
    app_resources: AppResources,
) -> None:
    inventory = inventory_on(app_resources)
    assert inventory.apply("wms", "receipt-1", T0, movement("receipt", 10)) == "applied"
    held: list[str] = []
    refused: list[tuple[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(number: int) -> None:
        channel = ("tmall", "doudian", "youzan")[number % 3]
        start.wait()
        for attempt in range(4):  # 32 attempts for 10 units
            reservation_id = f"{channel}-{number}-{attempt}"
            result = inventory.reserve(hold(reservation_id, 1, channel))
            with lock:
                (held if result.status == "reserved" else refused).append((reservation_id, result)[0])
                if result.status == "short":
                    refused[-1] = (reservation_id, result.shortfalls)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(held) == 10 and len(refused) == 22
    assert stock_at(inventory, "wh-1") | {"kind": None} == {
        "location": "wh-1",
        "kind": None,
        "on_hand": 10,
        "reserved": 10,
        "safety_stock": 0,
        "available": 0,
        "incoming": 0,
    }
    # every refusal says how many were available where
    _, shortfalls = refused[-1]
    assert [s.to_dict() for s in shortfalls] == [
        {"sku": "SKU-1", "requested": 1, "available": 0, "available_elsewhere": {}}
    ]
    # each success recorded exactly once: one reservation item, one reserve movement
    movements = inventory.movements("SKU-1", "wh-1", limit=100)
    reserve_moves = Counter(m["event_id"] for m in movements if m["kind"] == "reserve")
    assert sorted(reserve_moves) == sorted(held) and set(reserve_moves.values()) == {1}
    # a replay of every request (a client retrying) changes nothing
    for reservation_id in held:
        channel = reservation_id.split("-")[0]
        assert inventory.reserve(hold(reservation_id, 1, channel)).status == "exists"
    assert stock_at(inventory, "wh-1")["reserved"] == 10


def test_a_reservation_holds_all_lines_or_none_and_respects_safety_stock(app_resources: AppResources) -> None:
    inventory = inventory_on(app_resources)
    inventory.apply("pos", "r-a1", T0, movement("receipt", 3, sku="A", location="store-a"))
    inventory.apply("pos", "r-b1", T0, movement("receipt", 5, sku="B", location="store-a"))
    inventory.apply("wms", "r-a2", T0, movement("receipt", 7, sku="A"))
    request = ReservationRequest(
        reservation_id="order-1",
        location="store-a",
        channel="youzan",
        lines=[ReservationLine(sku="A", quantity=3), ReservationLine(sku="B", quantity=2)],
    )
    result = inventory.reserve(request)
    # store-a keeps 1 unit of safety stock: 2 of A can be promised there, 7 at the warehouse
    assert result.status == "short"
    assert [s.to_dict() for s in result.shortfalls] == [
        {"sku": "A", "requested": 3, "available": 2, "available_elsewhere": {"wh-1": 7}}
    ]
    assert stock_at(inventory, "store-a", "B")["reserved"] == 0  # the line that fitted was not held
    assert inventory.reservation("order-1") is None


def test_release_ship_and_expiry_give_back_or_take_off_exactly_once(app_resources: AppResources) -> None:
    clock = Clock()
    inventory = inventory_on(app_resources, clock=clock)
    inventory.apply("wms", "receipt", T0, movement("receipt", 10))
    for reservation_id in ("keep", "ship", "lapse"):
        assert inventory.reserve(hold(reservation_id, 2)).status == "reserved"
    assert inventory.apply("tmall", "ship-evt", T0, movement("ship", 2, reservation_id="ship")) == "applied"
    released = inventory.finish("keep", "released")
    assert released is not None and released.status == "released"
    assert inventory.finish("keep", "released") is not None  # again: nothing changes
    clock.now = T0 + timedelta(minutes=16)  # past the default 15 minutes
    lapse = inventory.reservation("lapse")
    assert lapse is not None and lapse.status_at(clock.now) == "expired"  # shown expired before the sweep
    assert len(inventory.expire_due()) == 1 and inventory.expire_due() == []
    assert {k: stock_at(inventory, "wh-1")[k] for k in ("on_hand", "reserved", "available")} == {
        "on_hand": 8,
        "reserved": 0,
        "available": 8,
    }
    with pytest.raises(ReservationConflict):
        inventory.reserve(hold("ship", 3))  # the id is taken by another request


def test_an_older_count_never_overwrites_a_newer_one_and_unknown_locations_are_refused(
    app_resources: AppResources,
) -> None:
    inventory = inventory_on(app_resources)
    assert inventory.apply("pos", "c2", T0, movement("count", 12, source_version=2)) == "applied"
    assert inventory.apply("pos", "c1", T0, movement("count", 40, source_version=1)) == "superseded"
    assert inventory.apply("pos", "c2", T0, movement("count", 12, source_version=2)) == "duplicate"
    assert stock_at(inventory, "wh-1")["on_hand"] == 12
    with pytest.raises(UnknownLocation, match="store-z"):
        inventory.apply("pos", "x", T0, movement("receipt", 1, location="store-z"))


def test_a_transfer_moves_stock_through_incoming(app_resources: AppResources) -> None:
    inventory = inventory_on(app_resources)
    inventory.apply("wms", "r", T0, movement("receipt", 6))
    inventory.apply("wms", "out", T0, movement("transfer_out", 4, counterpart="store-a"))
    assert stock_at(inventory, "store-a")["incoming"] == 4
    inventory.apply("pos", "in", T0, movement("transfer_in", 4, location="store-a", counterpart="wh-1"))
    assert {k: stock_at(inventory, "store-a")[k] for k in ("on_hand", "incoming")} == {
        "on_hand": 4,
        "incoming": 0,
    }
    assert stock_at(inventory, "wh-1")["on_hand"] == 2


# --- any interleaving, with duplicates, equals the reference model ------------------------------


@dataclass
class ReferenceModel:
    """Stock as a plain fold over the events: no storage, no conditions."""

    safety: int
    on_hand: int = 0
    reserved: int = 0
    count_version: int | None = None
    applied: set[str] = field(default_factory=set)
    reservations: dict[str, tuple[int, str]] = field(default_factory=dict)

    def apply(self, op: tuple[Any, ...]) -> None:
        kind, key, quantity, version = op
        if kind in ("receipt", "sale", "count"):
            if key in self.applied:
                return
            self.applied.add(key)
        if kind == "receipt":
            self.on_hand += quantity
        elif kind == "sale":
            self.on_hand -= quantity
        elif kind == "count":
            if self.count_version is None or version > self.count_version:
                self.on_hand, self.count_version = quantity, version
        elif kind == "reserve":
            if key not in self.reservations and self.on_hand - self.reserved - self.safety >= quantity:
                self.reserved += quantity
                self.reservations[key] = (quantity, "held")
        elif kind in ("release", "ship") and self.reservations.get(key, (0, ""))[1] == "held":
            held = self.reservations[key][0]
            self.reserved -= held
            if kind == "ship":
                self.on_hand -= held
            self.reservations[key] = (held, kind)


operation = st.one_of(
    st.tuples(st.just("receipt"), st.sampled_from(["r1", "r2", "r3"]), st.integers(1, 6), st.none()),
    st.tuples(st.just("sale"), st.sampled_from(["s1", "s2"]), st.integers(1, 4), st.none()),
    st.tuples(st.just("count"), st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 9), st.integers(1, 5)),
    st.tuples(st.just("reserve"), st.sampled_from(["h1", "h2", "h3", "h4"]), st.integers(1, 4), st.none()),
    st.tuples(
        st.sampled_from(["release", "ship"]), st.sampled_from(["h1", "h2", "h3", "h4"]), st.just(0), st.none()
    ),
)


@pytest.fixture(scope="module")
def shared_resources(moto_endpoint: str) -> AppResources:
    return build_resources(moto_endpoint)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=18), safety=st.integers(0, 2), data=st.data())
def test_any_interleaving_with_duplicates_matches_the_reference_model(
    shared_resources: AppResources, ops: list[tuple[Any, ...]], safety: int, data: st.DataObject
) -> None:
    sku = f"P-{uuid.uuid4().hex[:12]}"  # a fresh SKU per example (one table for all); not drawn
    rules = InventoryRules(locations={"wh-1": Location(kind="warehouse", safety_stock=safety)})
    inventory = inventory_on(shared_resources, rules)
    # every event may be delivered twice (at-least-once queues, replays)
    deliveries = [op for op in ops for _ in range(data.draw(st.integers(1, 2)))]
    reference = ReferenceModel(safety)
    for kind, key, quantity, version in deliveries:
        reference.apply((kind, key, quantity, version))
        reservation_id = f"{sku}-{key}"
        if kind == "reserve":
            with contextlib.suppress(ReservationConflict):  # the id is taken by another quantity: refused
                inventory.reserve(hold(reservation_id, quantity, sku=sku))
        elif kind in ("release", "ship"):
            inventory.finish(reservation_id, "released" if kind == "release" else "shipped")
        else:
            extra = {"source_version": version} if kind == "count" else {}
            inventory.apply("pos", f"{sku}-{key}", T0, movement(kind, quantity, sku=sku, **extra))
    balance = stock_at(inventory, "wh-1", sku)
    assert (balance.get("on_hand", 0), balance.get("reserved", 0)) == (reference.on_hand, reference.reserved)
    if balance:
        assert balance["available"] == reference.on_hand - reference.reserved - safety
