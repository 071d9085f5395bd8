"""The marketplace stock push, from the InventoryTable stream in moto through StockPushFunction to
local fakes of the Tmall (TOP) and Doudian APIs that check each request's signature the way the
platforms document it: incremental updates, one idempotency key per change, retried safely."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scrm_sync.adapters.dynamodb_inventory import DynamoInventoryStore
from scrm_sync.adapters.marketplace_stock import DoudianStockApi, TmallStockApi
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
from tests.integration.conftest import AppResources, load_function
from tests.lambda_context import LambdaContext

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SECRET = "dev-marketplace-secret-not-real"


class FakeMarketplace:
    """Both platforms' stock endpoints: TOP's router (form POST) and Doudian's /sku/syncStock.
    Stock is kept per listing; an idempotency key seen before changes nothing, as documented."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stock: dict[str, int] = {}
        self.keys: set[str] = set()
        self.fail_next = 0
        self.top_error: dict[str, Any] | None = None
        self.lock = threading.Lock()

    def top(self, form: dict[str, str]) -> dict[str, Any]:
        sign = form.pop("sign")
        expected = (
            hashlib.md5(  # noqa: S324
                (SECRET + "".join(k + form[k] for k in sorted(form)) + SECRET).encode()
            )
            .hexdigest()
            .upper()
        )
        assert sign == expected, "TOP signature"
        if self.top_error:
            return {"error_response": self.top_error}
        options = json.loads(form["options"])
        assert options["type"] == 2  # incremental
        (line,) = json.loads(form["sku_quantities"])
        self._apply(f"tmall:{form['item_id']}:{line['sku_id']}", line["quantity"], options["outer_biz_key"])
        return {"tmall_item_quantity_update_response": {"item": {"num_iid": form["item_id"]}}}

    def doudian(self, query: dict[str, str], body: str) -> dict[str, Any]:
        pattern = (
            f"app_key{query['app_key']}method{query['method']}param_json{body}timestamp{query['timestamp']}v2"
        )
        expected = hmac.new(
            SECRET.encode(), f"{SECRET}{pattern}{SECRET}".encode(), hashlib.sha256
        ).hexdigest()
        assert query["sign"] == expected and query["sign_method"] == "hmac-sha256", "Doudian signature"
        params = json.loads(body)
        assert params["incremental"] is True
        self._apply(
            f"doudian:{params['product_id']}:{params['sku_id']}", params["stock_num"], params["idempotent_id"]
        )
        return {"err_no": 0, "message": "success"}

    def _apply(self, listing: str, delta: int, key: str) -> None:
        with self.lock:
            if key in self.keys:
                return
            self.keys.add(key)
            self.stock[listing] = max(0, self.stock.get(listing, 0) + delta)


@pytest.fixture
def marketplace() -> Iterator[tuple[FakeMarketplace, str]]:
    fake = FakeMarketplace()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            fake.requests.append({"path": url.path, "query": query, "body": body})
            if fake.fail_next:
                fake.fail_next -= 1
                self.send_response(502)
                self.end_headers()
                return
            if url.path == "/router/rest":
                answer = fake.top(dict(urllib.parse.parse_qsl(body)))
            else:
                answer = fake.doudian(query, body)
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def world(resources: AppResources, base: str, sku: str) -> tuple[Inventory, StockPush]:
    rules = InventoryRules(
        locations={
            "tmall-flagship": Location(kind="channel", channel="tmall"),
            "doudian-shop": Location(kind="channel", channel="doudian", safety_stock=1),
            "wh": Location(kind="warehouse"),
        },
        listings={
            "tmall": {sku: Listing(item_id="612345678901", sku_id="4987654321001")},
            "doudian": {sku: Listing(item_id="3600000001", sku_id="1700000001")},
        },
    )
    store = DynamoInventoryStore(resources.clients("dynamodb"), resources.table("InventoryTable"))
    inventory = Inventory(store, lambda: rules)
    account = MarketplaceAccount(
        app_key="dev-app", app_secret=SECRET, access_token="dev-token", api_base=base
    )
    apis: dict[str, MarketplaceStock] = {
        "tmall": TmallStockApi(account.model_copy(update={"api_base": f"{base}/router/rest"})),
        "doudian": DoudianStockApi(account),
    }
    return inventory, StockPush(lambda: rules, apis.get)


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
    fake, base = marketplace
    sku = f"LIP-{uuid.uuid4().hex[:6]}"
    stream = StreamTail(app_resources.clients, app_resources.table("InventoryTable"))
    inventory, push = world(app_resources, base, sku)
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
    fake, base = marketplace
    sku = f"LIP-{uuid.uuid4().hex[:6]}"
    stream = StreamTail(app_resources.clients, app_resources.table("InventoryTable"))
    inventory, push = world(app_resources, base, sku)
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
