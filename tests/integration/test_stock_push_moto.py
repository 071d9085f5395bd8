"""The marketplace stock push, from the InventoryTable stream in moto through StockPushFunction to
local fakes of the Tmall (TOP), Doudian and Youzan APIs: TOP and Doudian check each request's
signature the way the platforms document it and dedupe by idempotency key; Youzan dedupes
nothing and issues short-lived tokens, so its pushes are claimed in the checkpoints table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from scrm_sync.adapters.credential_cache import DynamoCredentialCache
from scrm_sync.adapters.dynamodb_inventory import DynamoInventoryStore
from scrm_sync.adapters.dynamodb_push_attempts import DynamoPushAttempts
from scrm_sync.adapters.marketplace_stock import DoudianStockApi, TmallStockApi, YouzanStockApi
from scrm_sync.domain.inventory import (
    InventoryMovement,
    InventoryRules,
    Listing,
    Location,
    ReservationLine,
    ReservationRequest,
)
from scrm_sync.domain.stock_push import MarketplaceAccount
from scrm_sync.services.inventory import Inventory
from scrm_sync.services.ports import MarketplaceStock
from scrm_sync.services.stock_push import StockPush

from tests.dynamodb_streams import StreamTail
from tests.fake_marketplaces import (
    DOUDIAN_SHOP_ID,
    FIXED_DOUDIAN_TOKEN,
    SECRET,
    YOUZAN_SHOP_ID,
    FakeMarketplace,
    serve_marketplace,
)
from tests.integration.conftest import AppResources, load_function
from tests.lambda_context import LambdaContext

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def marketplace() -> Iterator[tuple[FakeMarketplace, str]]:
    with serve_marketplace() as served:
        yield served


def world(
    resources: AppResources, base: str, sku: str, doudian_shop_id: str | None = None
) -> tuple[Inventory, StockPush]:
    rules = InventoryRules(
        locations={
            "tmall-flagship": Location(kind="channel", channel="tmall"),
            "doudian-shop": Location(kind="channel", channel="doudian", safety_stock=1),
            "youzan-shop": Location(kind="channel", channel="youzan"),
            "wh": Location(kind="warehouse"),
        },
        listings={
            "tmall": {sku: Listing(item_id="612345678901", sku_id="4987654321001")},
            "doudian": {sku: Listing(item_id="3600000001", sku_id="1700000001")},
            "youzan": {sku: Listing(item_id="520000001", sku_id="36000001")},
        },
    )
    store = DynamoInventoryStore(resources.clients("dynamodb"), resources.table("InventoryTable"))
    inventory = Inventory(store, lambda: rules)
    account = MarketplaceAccount(
        app_key="dev-app", app_secret=SECRET, access_token=FIXED_DOUDIAN_TOKEN, api_base=base
    )
    checkpoints = resources.table("CheckpointsTable")
    youzan = account.model_copy(update={"access_token": None, "shop_id": YOUZAN_SHOP_ID})
    tokens = DynamoCredentialCache(resources.clients("dynamodb"), checkpoints)
    apis: dict[str, MarketplaceStock] = {
        "tmall": TmallStockApi(account.model_copy(update={"api_base": f"{base}/router/rest"})),
        "doudian": DoudianStockApi(
            account.model_copy(update={"access_token": None, "shop_id": doudian_shop_id})
            if doudian_shop_id
            else account,
            tokens,
        ),
        "youzan": YouzanStockApi(youzan, tokens),
    }
    attempts = DynamoPushAttempts(resources.clients("dynamodb"), checkpoints)
    return inventory, StockPush(lambda: rules, apis.get, attempts)


def scene(
    resources: AppResources, marketplace: tuple[FakeMarketplace, str], doudian_shop_id: str | None = None
) -> tuple[FakeMarketplace, StreamTail, Inventory, StockPush, str]:
    """A fresh SKU in a world of channel allocations, the marketplace fakes and the stream tail."""
    fake, base = marketplace
    sku = f"LIP-{uuid.uuid4().hex[:6]}"
    stream = StreamTail(resources.clients, resources.table("InventoryTable"))
    inventory, push = world(resources, base, sku, doudian_shop_id)
    return fake, stream, inventory, push, sku


def run_handler(
    push: StockPush, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"stock-push-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    app = load_function("stock_push")
    monkeypatch.setattr(app, "stock_push", lambda: push)
    return dict(app.lambda_handler({"Records": records}, LambdaContext()))


def test_channel_stock_changes_reach_both_marketplaces_once_each(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, stream, inventory, push, sku = scene(app_resources, marketplace)
    inventory.apply(
        "wms", "r1", T0, InventoryMovement(kind="receipt", sku=sku, location="tmall-flagship", quantity=10)
    )
    inventory.apply(
        "wms", "r2", T0, InventoryMovement(kind="receipt", sku=sku, location="doudian-shop", quantity=5)
    )
    inventory.apply("wms", "r3", T0, InventoryMovement(kind="receipt", sku=sku, location="wh", quantity=50))
    held = ReservationRequest(
        reservation_id=f"o-{sku}",
        location="tmall-flagship",
        channel="tmall",
        lines=[ReservationLine(sku=sku, quantity=3)],
    )
    inventory.reserve(held)
    records = stream.read()

    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {"tmall:612345678901:4987654321001": 7, "doudian:3600000001:1700000001": 4}
    assert len(fake.requests) == 3  # the warehouse is no channel: nothing pushed for it

    # Lambda delivers the same records again (a retried batch): every key was seen, nothing moves
    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {"tmall:612345678901:4987654321001": 7, "doudian:3600000001:1700000001": 4}
    assert len(fake.keys) == 3


def test_a_platform_outage_fails_the_record_and_a_refusal_is_set_aside(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, stream, inventory, push, sku = scene(app_resources, marketplace)
    inventory.apply(
        "wms", "r1", T0, InventoryMovement(kind="receipt", sku=sku, location="tmall-flagship", quantity=2)
    )
    records = stream.read()
    fake.fail_next = 1
    answer = run_handler(push, records, monkeypatch)
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert failed and failed == sequence[sequence.index(failed[0]) :]  # it and what follows come again
    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}  # the retry gets through
    assert fake.stock == {"tmall:612345678901:4987654321001": 2}

    fake.top_error = {"code": 15, "msg": "Remote service error", "sub_code": "isv.item-not-exist"}
    inventory.apply(
        "wms", "r2", T0, InventoryMovement(kind="receipt", sku=sku, location="tmall-flagship", quantity=1)
    )
    assert run_handler(push, stream.read(), monkeypatch) == {
        "batchItemFailures": []
    }  # refused for good: moved on


YOUZAN_LISTING = "youzan:520000001:36000001"


def test_youzan_pushes_are_incremental_and_a_redelivered_record_is_not_applied_twice(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, stream, inventory, push, sku = scene(app_resources, marketplace)
    for n, quantity in enumerate((6, 3, 2)):
        inventory.apply(
            "wms",
            f"y{n}",
            T0,
            InventoryMovement(kind="receipt", sku=sku, location="youzan-shop", quantity=quantity),
        )
    inventory.apply(
        "pos", "s1", T0, InventoryMovement(kind="sale", sku=sku, location="youzan-shop", quantity=4)
    )
    records = stream.read()

    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {YOUZAN_LISTING: 7}
    assert fake.youzan_types == [1, 1, 1, 1]  # incremental: +6 +3 +2 -4
    assert fake.tokens_issued == 1  # one token, shared through the checkpoints table

    # Youzan would add every delta again: the claims in the checkpoints table keep it from it
    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {YOUZAN_LISTING: 7} and len(fake.youzan_types) == 4


def test_a_youzan_push_with_an_unknown_outcome_is_followed_by_setting_the_listing(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, stream, inventory, push, sku = scene(app_resources, marketplace)
    inventory.apply(
        "wms", "y1", T0, InventoryMovement(kind="receipt", sku=sku, location="youzan-shop", quantity=5)
    )
    records = stream.read()
    fake.youzan_drop_after_apply = 1  # Youzan applies +5, the answer never arrives
    assert run_handler(push, records, monkeypatch)["batchItemFailures"]
    assert fake.stock == {YOUZAN_LISTING: 5}

    # the retry cannot know whether +5 landed: it sets 5 instead of adding 5 again
    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {YOUZAN_LISTING: 5}
    assert fake.youzan_types == [1, 0]

    # an error answer says nothing was applied: the retry adds again, no set needed
    fake.youzan_error = {"err_code": 500, "err_msg": "系统繁忙"}
    inventory.apply(
        "wms", "y2", T0, InventoryMovement(kind="receipt", sku=sku, location="youzan-shop", quantity=2)
    )
    records = stream.read()
    assert run_handler(push, records, monkeypatch)["batchItemFailures"]
    fake.youzan_error = None
    assert run_handler(push, records, monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {YOUZAN_LISTING: 7}
    assert fake.youzan_types == [1, 0, 1]


def test_a_revoked_youzan_token_is_replaced_once_and_the_push_goes_through(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, stream, inventory, push, sku = scene(app_resources, marketplace)
    inventory.apply(
        "wms", "y1", T0, InventoryMovement(kind="receipt", sku=sku, location="youzan-shop", quantity=3)
    )
    assert run_handler(push, stream.read(), monkeypatch) == {"batchItemFailures": []}
    fake.tokens.clear()  # the shop re-authorized: the shared token is refused
    inventory.apply(
        "wms", "y2", T0, InventoryMovement(kind="receipt", sku=sku, location="youzan-shop", quantity=1)
    )
    assert run_handler(push, stream.read(), monkeypatch) == {"batchItemFailures": []}
    assert fake.stock == {YOUZAN_LISTING: 4}
    assert fake.tokens_issued == 2


def test_a_doudian_self_use_app_fetches_its_token_and_replaces_it_when_refused(
    app_resources: AppResources, marketplace: tuple[FakeMarketplace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With shop_id and no access_token, the Doudian token comes from token.create, is shared
    through the checkpoints table, and is created again when Doudian refuses it."""
    fake, stream, inventory, push, sku = scene(app_resources, marketplace, doudian_shop_id=DOUDIAN_SHOP_ID)
    for n in range(2):
        inventory.apply(
            "wms",
            f"d{n}",
            T0,
            InventoryMovement(kind="receipt", sku=sku, location="doudian-shop", quantity=4),
        )
    assert run_handler(push, stream.read(), monkeypatch) == {"batchItemFailures": []}
    assert fake.doudian_tokens_issued == 1
    fake.doudian_tokens.clear()  # expired early
    inventory.apply(
        "wms", "d2", T0, InventoryMovement(kind="receipt", sku=sku, location="doudian-shop", quantity=1)
    )
    assert run_handler(push, stream.read(), monkeypatch) == {"batchItemFailures": []}
    assert fake.doudian_tokens_issued == 2
    assert fake.stock == {"doudian:3600000001:1700000001": 9 - 1}  # safety stock 1
