"""Local fakes of the marketplaces' stock APIs, for the tests (moto and `scrm local run`):
TOP's router (form POST, md5 signature), Doudian's /sku/syncStock (hmac-sha256 signature) and
Youzan's /auth/token + youzan.item.quantity.update. Tmall and Doudian dedupe by idempotency key,
as documented; Youzan dedupes nothing and issues tokens that can be revoked."""

from __future__ import annotations

import contextlib
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

SECRET = "dev-marketplace-secret-not-real"
APP_KEY = "dev-app"
YOUZAN_SHOP_ID = "91234"
DOUDIAN_SHOP_ID = "4463798"
FIXED_DOUDIAN_TOKEN = "dev-token"  # an access_token configured as it is (not fetched)


class FakeMarketplace:
    """The three platforms' stock endpoints. Stock is kept per listing ("tmall:<item>:<sku>");
    a Tmall or Doudian idempotency key seen before changes nothing, as documented."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stock: dict[str, int] = {}
        self.keys: set[str] = set()
        self.fail_next = 0
        self.top_error: dict[str, Any] | None = None
        self.lock = threading.Lock()
        self.doudian_tokens: set[str] = set()
        self.doudian_tokens_issued = 0
        # Youzan
        self.tokens: set[str] = set()
        self.youzan_types: list[int] = []
        self.tokens_issued = 0
        self.youzan_drop_after_apply = 0  # apply the update, then close without answering
        self.youzan_error: dict[str, Any] | None = None

    def youzan_token(self, body: str) -> dict[str, Any]:
        request = json.loads(body)
        assert request["authorize_type"] == "silent" and request["grant_id"] == YOUZAN_SHOP_ID
        if (request["client_id"], request["client_secret"]) != (APP_KEY, SECRET):
            return {"success": False, "code": 4001, "message": "client 不合法"}
        with self.lock:
            self.tokens_issued += 1
            token = f"yz-{self.tokens_issued}-{uuid.uuid4().hex[:8]}"
            self.tokens.add(token)
        expires_ms = int((datetime.now(UTC).timestamp() + 7 * 86400) * 1000)
        return {"success": True, "code": 200, "data": {"access_token": token, "expires": expires_ms}}

    def youzan_quantity(self, query: dict[str, str], body: str) -> dict[str, Any] | None:
        if query.get("access_token") not in self.tokens:
            return {"gw_err_resp": {"err_code": 4201, "err_msg": "token 不合法"}}
        if self.youzan_error:
            return {"gw_err_resp": dict(self.youzan_error)}
        params = json.loads(body)
        assert params["type"] in (0, 1)
        listing = f"youzan:{params['item_id']}:{params['sku_id']}"
        with self.lock:
            self.youzan_types.append(params["type"])
            if params["type"] == 0:
                self.stock[listing] = params["quantity"]
            else:
                self.stock[listing] = max(0, self.stock.get(listing, 0) + params["quantity"])
            if self.youzan_drop_after_apply:
                self.youzan_drop_after_apply -= 1
                return None
        return {"success": True, "code": 200, "data": {"is_success": True}}

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
        if query["method"] == "token.create":
            assert query["param_json"] == body and "access_token" not in query
            assert params == {"code": "", "grant_type": "authorization_self", "shop_id": DOUDIAN_SHOP_ID}
            with self.lock:
                self.doudian_tokens_issued += 1
                token = f"dd-{self.doudian_tokens_issued}-{uuid.uuid4().hex[:8]}"
                self.doudian_tokens.add(token)
            return {"code": 10000, "msg": "success", "data": {"access_token": token, "expires_in": 604800}}
        if query["access_token"] not in self.doudian_tokens | {FIXED_DOUDIAN_TOKEN}:
            return {"code": 30002, "err_no": 30002, "message": "access_token已过期"}
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


@contextlib.contextmanager
def serve_marketplace() -> Iterator[tuple[FakeMarketplace, str]]:
    """The fake on a free local port: (fake, base URL)."""
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
            answer: dict[str, Any] | None
            if url.path == "/router/rest":
                answer = fake.top(dict(urllib.parse.parse_qsl(body)))
            elif url.path == "/auth/token":
                answer = fake.youzan_token(body)
            elif url.path == "/api/youzan.item.quantity.update/3.0.0":
                answer = fake.youzan_quantity(query, body)
                if answer is None:  # applied, and the connection drops before the answer
                    self.close_connection = True
                    return
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
