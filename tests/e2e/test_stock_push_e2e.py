"""Marketplace stock push through `scrm local run`: stock movements and reservations from many
clients at once change what each channel allocation may sell, and StockPushFunction (on the
local stack's InventoryTable stream) brings the Tmall, Doudian and Youzan listings, served by
local fakes, to exactly that number: every change pushed once, incrementally."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.fake_marketplaces import (
    APP_KEY,
    DOUDIAN_SHOP_ID,
    SECRET,
    YOUZAN_SHOP_ID,
    FakeMarketplace,
    serve_marketplace,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SKU = f"PUSH-{uuid.uuid4().hex[:6]}"
LISTINGS = {
    "tmall": {"item_id": "612345678901", "sku_id": "4987654321001"},
    "doudian": {"item_id": "3600000001", "sku_id": "1700000001"},
    "youzan": {"item_id": "520000001", "sku_id": "36000001"},
}
ALLOCATIONS = {"tmall": "tmall-flagship", "doudian": "doudian-shop", "youzan": "youzan-shop"}


@pytest.fixture(scope="module")
def marketplace() -> Iterator[tuple[FakeMarketplace, str]]:
    with serve_marketplace() as served:
        yield served


@pytest.fixture(scope="module")
def stack(
    marketplace: tuple[FakeMarketplace, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    _, base = marketplace
    folder = tmp_path_factory.mktemp("stock-push")
    channels = json.loads((ROOT / "config" / "channels.dev.json").read_text())
    account = {"app_key": APP_KEY, "app_secret": SECRET}
    channels["marketplace_stock"] = {
        "tmall": {**account, "access_token": "dev-session", "api_base": f"{base}/router/rest"},
        "doudian": {**account, "shop_id": DOUDIAN_SHOP_ID, "api_base": base},
        "youzan": {**account, "shop_id": YOUZAN_SHOP_ID, "api_base": base},
    }
    rules = json.loads((ROOT / "config" / "rules.dev.json").read_text())
    rules["inventory"]["locations"]["doudian-shop"] = {
        "kind": "channel",
        "channel": "doudian",
        "safety_stock": 1,
    }
    rules["inventory"]["locations"]["youzan-shop"] = {"kind": "channel", "channel": "youzan"}
    rules["inventory"]["listings"] = {channel: {SKU: listing} for channel, listing in LISTINGS.items()}
    (folder / "channels.json").write_text(json.dumps(channels))
    (folder / "rules.json").write_text(json.dumps(rules))
    env = {"SCRM_CHANNELS_FILE": str(folder / "channels.json"), "SCRM_RULES_FILE": str(folder / "rules.json")}
    with start_local_stack(env) as running:
        yield running


def available(stack: RunningStack) -> dict[str, int]:
    status, body = stack.call("GET", f"/inventory/{SKU}")
    assert status == 200, body
    by_location = {entry["location"]: max(entry["available"], 0) for entry in body["locations"]}
    return {channel: by_location.get(location, 0) for channel, location in ALLOCATIONS.items()}


def listed(fake: FakeMarketplace) -> dict[str, int]:
    with fake.lock:
        return {
            channel: fake.stock.get(f"{channel}:{listing['item_id']}:{listing['sku_id']}", 0)
            for channel, listing in LISTINGS.items()
        }


def test_concurrent_stock_changes_leave_every_listing_at_what_its_channel_may_sell(
    stack: RunningStack, marketplace: tuple[FakeMarketplace, str]
) -> None:
    fake, _ = marketplace

    def receipt(n: int) -> int:
        channel = list(ALLOCATIONS)[n % 3]
        event = {
            "event_id": f"rcv-{SKU}-{n}",
            "source": "wms",
            "type": "inventory",
            "occurred_at": "2026-12-03T10:00:00+08:00",
            "inventory": {"kind": "receipt", "sku": SKU, "location": ALLOCATIONS[channel], "quantity": 2},
        }
        return stack.call("POST", "/events", {"events": [event]})[0]

    def reserve(n: int) -> int:
        channel = list(ALLOCATIONS)[n % 3]
        request = {
            "reservation_id": f"{channel}-{SKU}-{n}",
            "location": ALLOCATIONS[channel],
            "channel": channel,
            "lines": [{"sku": SKU, "quantity": 1}],
        }
        return stack.call("POST", "/inventory/reservations", request)[0]

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert set(pool.map(receipt, range(30))) == {202}  # 10 receipts of 2 per channel
    wait_for(timeout=60.0, interval=0.3, predicate=lambda: sum(available(stack).values()) == 20 + 20 + 20 - 1)
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = Counter(pool.map(reserve, range(36)))  # 12 per channel
    assert answers == {201: 36}
    expected = {"tmall": 20 - 12, "doudian": 20 - 1 - 12, "youzan": 20 - 12}
    assert available(stack) == expected

    wait_for(timeout=60.0, interval=0.3, predicate=lambda: listed(fake) == expected)
    assert listed(fake) == expected
    with fake.lock:
        youzan_types = list(fake.youzan_types)
    assert youzan_types and set(youzan_types) == {1}  # incremental only: no outcome was unknown
    # one token per shop, shared by every execution environment
    assert (fake.tokens_issued, fake.doudian_tokens_issued) == (1, 1)
