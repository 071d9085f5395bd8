"""Marketplace orders against the ledger on moto: a line held at the fulfilment location, or sent
to the nearest store with stock; a store's rejection or silence asks the next store; closing the
order gives everything back; every delivery of the same order changes nothing more."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from scrm_sync.adapters.dynamodb_inventory import DynamoInventoryStore, DynamoTransferStore
from scrm_sync.domain.events import Order, OrderLine
from scrm_sync.domain.inventory import InventoryMovement, InventoryRules, Location
from scrm_sync.services.fulfilment import Fulfilment, TransferTransitionRefused
from scrm_sync.services.inventory import Inventory

from tests.integration.conftest import AppResources

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
# a warehouse in central Shanghai; Xuhui (~5 km) and Pudong (~7 km) stores; Hangzhou (~165 km)
RULES = InventoryRules(
    locations={
        "wh-shanghai": Location(kind="warehouse", latitude=31.2304, longitude=121.4737),
        "store-xuhui": Location(latitude=31.1886, longitude=121.4365),
        "store-pudong": Location(latitude=31.2215, longitude=121.5440),
        "store-hangzhou": Location(latitude=30.2590, longitude=120.1639, priority=1),
        "tmall-flagship": Location(kind="channel", channel="tmall"),
    },
    fulfilment={"tmall": "wh-shanghai"},
    transfer_ack_seconds=600,
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Published:
    def __init__(self) -> None:
        self.documents: list[dict[str, object]] = []

    def publish(self, documents: list[str]) -> list[int]:
        self.documents.extend(json.loads(d) for d in documents)
        return []

    def events(self) -> list[tuple[object, object]]:
        return [(d["event"], d.get("source")) for d in self.documents]


class World:
    def __init__(self, resources: AppResources) -> None:
        self.clock = Clock()
        db, table = resources.clients("dynamodb"), resources.table("InventoryTable")
        self.inventory = Inventory(DynamoInventoryStore(db, table, self.clock), lambda: RULES, self.clock)
        self.published = Published()
        self.fulfilment = Fulfilment(
            self.inventory,
            DynamoTransferStore(db, table, self.clock),
            self.published,
            lambda: RULES,
            self.clock,
        )
        self.sku = f"SKU-{uuid.uuid4().hex[:8]}"

    def stock(self, location: str, units: int) -> None:
        movement = InventoryMovement(kind="receipt", sku=self.sku, location=location, quantity=units)
        self.inventory.apply("pos", f"seed-{location}-{self.sku}", T0, movement)

    def order(self, status: str = "WAIT_SELLER_SEND_GOODS", quantity: int = 2) -> Order:
        line = OrderLine(line_id="9001", sku=self.sku, quantity=Decimal(quantity))
        return Order(order_id="4001", status=status, lines=[line])

    def available(self, location: str) -> int:
        locations = self.inventory.stock(self.sku)["locations"]
        assert isinstance(locations, list)
        return next((int(e["available"]) for e in locations if e["location"] == location), 0)


@pytest.fixture
def world(app_resources: AppResources) -> World:
    return World(app_resources)


def test_a_line_the_warehouse_can_meet_is_held_there_once(world: World) -> None:
    world.stock("wh-shanghai", 5)
    assert world.fulfilment.order("tmall", world.order()).reserved == ["tmall:4001:9001"]
    assert world.fulfilment.order("tmall", world.order()).reserved == ["tmall:4001:9001"]  # redelivered
    assert world.available("wh-shanghai") == 3
    world.fulfilment.order("tmall", world.order("WAIT_BUYER_CONFIRM_GOODS"))  # the seller shipped
    assert world.inventory.stock(world.sku)["total"] == {
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "incoming": 0,
    }


def test_out_of_stock_at_the_warehouse_goes_to_the_nearest_store_then_the_next_on_rejection(
    world: World,
) -> None:
    world.stock("wh-shanghai", 1)
    world.stock("store-pudong", 4)
    world.stock("store-xuhui", 2)
    world.stock("store-hangzhou", 9)  # the best priority, but 165 km away
    report = world.fulfilment.order("tmall", world.order(quantity=2))
    assert report.transfers == ["tmall:4001:9001~1"]
    first = world.fulfilment.transfer("tmall:4001:9001~1")
    assert first is not None and (first.source, first.status) == ("store-xuhui", "requested")
    assert world.available("store-xuhui") == 0 and world.available("wh-shanghai") == 1
    assert world.published.events() == [("transfer.requested", "store-xuhui")]

    assert world.fulfilment.order("tmall", world.order(quantity=2)).transfers == []  # redelivered: no new ask

    rejected = world.fulfilment.acknowledge("tmall:4001:9001~1", "rejected", "shelf is empty")
    assert (rejected.status, rejected.reason) == ("rejected", "shelf is empty")
    second = world.fulfilment.transfer("tmall:4001:9001~2")
    assert second is not None and (second.source, second.tried) == ("store-pudong", ("store-xuhui",))
    assert world.available("store-xuhui") == 2 and world.available("store-pudong") == 2

    assert world.fulfilment.acknowledge("tmall:4001:9001~2", "accepted").status == "accepted"
    assert world.fulfilment.acknowledge("tmall:4001:9001~2", "accepted").status == "accepted"  # again
    assert world.fulfilment.acknowledge("tmall:4001:9001~2", "shipped").status == "shipped"
    with pytest.raises(TransferTransitionRefused):
        world.fulfilment.acknowledge("tmall:4001:9001~2", "rejected")
    totals = world.inventory.stock(world.sku)["total"]
    assert totals == {"on_hand": 14, "reserved": 0, "available": 14, "incoming": 0}


def test_a_store_that_does_not_answer_in_time_is_passed_over(world: World) -> None:
    world.stock("store-xuhui", 3)
    world.stock("store-pudong", 3)
    world.fulfilment.order("tmall", world.order())
    world.clock.now = T0 + timedelta(seconds=601)
    assert world.fulfilment.expire_due() == (1, 1)
    late = world.fulfilment.transfer("tmall:4001:9001~1")
    assert late is not None and (late.status, late.reason) == ("rejected", "no acknowledgement in time")
    second = world.fulfilment.transfer("tmall:4001:9001~2")
    assert second is not None and second.source == "store-pudong"
    assert world.available("store-xuhui") == 3 and world.available("store-pudong") == 1


def test_closing_the_order_cancels_the_open_transfer_and_gives_the_units_back(world: World) -> None:
    world.stock("store-xuhui", 3)
    world.fulfilment.order("tmall", world.order())
    world.fulfilment.order("tmall", world.order("TRADE_CLOSED"))
    cancelled = world.fulfilment.transfer("tmall:4001:9001~1")
    assert cancelled is not None and cancelled.status == "cancelled"
    assert world.available("store-xuhui") == 3
    assert [event for event, _ in world.published.events()] == ["transfer.requested", "transfer.cancelled"]


def test_when_no_store_can_meet_a_line_it_is_reported_unfulfillable(world: World) -> None:
    world.stock("store-xuhui", 1)
    report = world.fulfilment.order("tmall", world.order(quantity=2))
    assert report.unfulfillable == ["tmall:4001:9001"] and report.transfers == []
    assert world.published.events() == [("transfer.unfulfillable", None)]
