"""Inventory rules: what each movement does to a balance, what an event must carry, and the
rules document's inventory section."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.inventory import (
    Balance,
    InventoryMovement,
    InventoryRules,
    Location,
    balance_view,
    movement_delta,
)


def movement(kind: str, quantity: int, **more: Any) -> InventoryMovement:
    return InventoryMovement.model_validate(
        {"kind": kind, "sku": "A", "location": "wh", "quantity": quantity, **more}
    )


@pytest.mark.parametrize(
    ("kind", "more", "expected"),
    [
        ("receipt", {}, (3, 0, 0)),
        ("return", {}, (3, 0, 0)),
        ("sale", {}, (-3, 0, 0)),
        ("transfer_out", {"counterpart": "store"}, (-3, 0, 0)),
        ("reserve", {"reservation_id": "r"}, (0, 3, 0)),
        ("release", {"reservation_id": "r"}, (0, -3, 0)),
        ("ship", {"reservation_id": "r"}, (-3, -3, 0)),
    ],
)
def test_each_kind_moves_the_quantities_it_names(
    kind: str, more: dict[str, Any], expected: tuple[int, ...]
) -> None:
    delta = movement_delta(movement(kind, 3, **more), Balance("A", "wh", on_hand=5, reserved=1, incoming=2))
    assert delta is not None and (delta.on_hand, delta.reserved, delta.incoming) == expected


def test_a_transfer_in_takes_from_incoming_but_never_below_zero() -> None:
    delta = movement_delta(movement("transfer_in", 5, counterpart="wh2"), Balance("A", "wh", incoming=2))
    assert delta is not None and (delta.on_hand, delta.incoming) == (5, -2)


@given(
    on_hand=st.integers(-50, 50),
    counted=st.integers(0, 100),
    seen=st.integers(0, 9),
    version=st.integers(0, 9),
)
def test_a_count_sets_on_hand_only_when_newer(on_hand: int, counted: int, seen: int, version: int) -> None:
    current = Balance("A", "wh", on_hand=on_hand, count_version=seen)
    delta = movement_delta(movement("count", counted, source_version=version), current)
    if version <= seen:
        assert delta is None
    else:
        assert delta is not None and current.plus(delta).on_hand == counted
        assert current.plus(delta).count_version == version


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "sale", "quantity": -1}, "negative"),
        ({"kind": "count", "quantity": 1}, "source_version"),
        ({"kind": "release", "quantity": 1}, "reservation_id"),
        ({"kind": "transfer_out", "quantity": 1}, "counterpart"),
        ({"kind": "transfer_out", "quantity": 1, "counterpart": "wh"}, "differ"),
        ({"kind": "receipt", "quantity": 1, "sku": "A/B"}, "sku"),
    ],
)
def test_a_movement_names_what_it_is_missing(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InventoryMovement.model_validate({"sku": "A", "location": "wh", **payload})


EVENT = {"event_id": "e", "source": "pos", "occurred_at": "2026-12-03T10:00:00+08:00"}


def test_an_inventory_event_needs_no_identifiers_and_carries_nothing_else() -> None:
    inventory = {"kind": "receipt", "sku": "A", "location": "wh", "quantity": 1}
    assert CanonicalEvent.model_validate({**EVENT, "type": "inventory", "inventory": inventory}).inventory
    with pytest.raises(ValidationError, match="need an 'inventory'"):
        CanonicalEvent.model_validate({**EVENT, "type": "inventory"})
    with pytest.raises(ValidationError, match="inventory' only"):
        CanonicalEvent.model_validate(
            {**EVENT, "type": "inventory", "inventory": inventory, "attributes": {"name": "x"}}
        )
    with pytest.raises(ValidationError, match="only inventory events"):
        CanonicalEvent.model_validate(
            {
                **EVENT,
                "type": "profile.updated",
                "identifiers": [{"type": "phone", "value": "13800000000"}],
                "inventory": inventory,
            }
        )
    with pytest.raises(ValidationError) as missing:
        CanonicalEvent.model_validate({**EVENT, "type": "profile.updated"})
    assert missing.value.errors()[0]["loc"] == ("identifiers",)


def test_safety_stock_per_location_with_per_sku_overrides_and_the_view_totals() -> None:
    rules = InventoryRules(
        locations={"wh": Location(kind="warehouse"), "store": Location(safety_stock=2)},
        safety_stock={"A": {"wh": 1}},
    )
    assert (rules.safety_stock_of("A", "wh"), rules.safety_stock_of("B", "wh")) == (1, 0)
    assert rules.safety_stock_of("A", "store") == 2
    view = balance_view([Balance("A", "wh", on_hand=5, reserved=1), Balance("A", "store", on_hand=1)], rules)
    assert view["total"] == {"on_hand": 6, "reserved": 1, "available": 3, "incoming": 0}
    with pytest.raises(ValidationError, match="unknown locations: nowhere"):
        InventoryRules(locations={"wh": Location()}, safety_stock={"A": {"nowhere": 1}})
    with pytest.raises(ValidationError, match="latitude and longitude"):
        Location(latitude=31.2)
