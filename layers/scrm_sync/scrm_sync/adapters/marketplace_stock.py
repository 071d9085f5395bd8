"""Marketplace stock APIs: Tmall (TOP) and Doudian, behind one interface (`push`).

Request signing, as the platforms' SDKs do it:
- TOP: `sign = upper(hex(md5(secret + concat(sorted(name + value)) + secret)))`, `sign_method=md5`,
  form-encoded POST to the router (reference/channels.md: the TOP family signs secret‖sorted(k+v)‖secret).
- Doudian: `sign = hex(hmac_sha256(app_secret, app_secret + "app_key{k}method{m}param_json{j}timestamp{t}v2"
  + app_secret))`, `param_json` = the business parameters as JSON with sorted keys and no spaces,
  POST to `/<method with dots as slashes>` (minibear2021/doudian `DouDian._sign`, `_request`).
Errors: a network failure, a 5xx or an error answer is MarketplaceUnavailable (the push is
retried: it is idempotent by its key), except the answers that name the request itself as wrong
(TOP `isv.*` sub-codes), which are MarketplaceRejected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.inventory import Listing
from ..domain.stock_push import MarketplaceAccount, StockChange
from ..services.ports import MarketplaceRejected, MarketplaceUnavailable

TOP_ROUTER = "https://eco.taobao.com/router/rest"
DOUDIAN_GATEWAY = "https://openapi-fxg.jinritemai.com"
_CHINA = ZoneInfo("Asia/Shanghai")  # both platforms read timestamps as Beijing time
_TIMEOUT = 5.0


def top_sign(params: dict[str, str], secret: str) -> str:
    text = secret + "".join(f"{name}{params[name]}" for name in sorted(params)) + secret
    return hashlib.md5(text.encode()).hexdigest().upper()  # noqa: S324 - TOP's documented signature


def doudian_sign(app_key: str, secret: str, method: str, param_json: str, timestamp: str) -> str:
    pattern = f"app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2"
    return hmac.new(secret.encode(), f"{secret}{pattern}{secret}".encode(), hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, content_type: str) -> dict[str, Any]:
    # the URL is the platform's gateway, or an https/http api_base the credentials validated
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310 - configured https
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise MarketplaceUnavailable(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise MarketplaceUnavailable(type(exc).__name__) from None
    if not isinstance(answer, dict):
        raise MarketplaceUnavailable("the answer is not a JSON object")
    return answer


class TmallStockApi:
    METHOD = "tmall.item.quantity.update"

    def __init__(self, account: MarketplaceAccount, clock: Any = None) -> None:
        self._account = account
        self._url = account.api_base or TOP_ROUTER
        self._clock = clock or (lambda: datetime.now(_CHINA))

    def push(self, change: StockChange, listing: Listing) -> None:
        params = {
            "method": self.METHOD,
            "app_key": self._account.app_key,
            "session": self._account.access_token.get_secret_value(),
            "timestamp": self._clock().astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
            "item_id": listing.item_id,
            "options": json.dumps(
                {"type": 2, "outer_biz_key": change.idempotency_key}, separators=(",", ":")
            ),
        }
        if listing.sku_id:
            quantities = [{"sku_id": listing.sku_id, "quantity": change.delta}]
            params["sku_quantities"] = json.dumps(quantities, separators=(",", ":"))
        else:
            params["item_quantity"] = str(change.delta)
        params["sign"] = top_sign(params, self._account.app_secret.get_secret_value())
        answer = _post(
            self._url, urllib.parse.urlencode(params).encode(), "application/x-www-form-urlencoded"
        )
        error = answer.get("error_response")
        if isinstance(error, dict):
            sub_code = str(error.get("sub_code") or "")
            message = f"TOP {error.get('code')} {sub_code}".strip()
            if sub_code.startswith("isv."):
                raise MarketplaceRejected(message)
            raise MarketplaceUnavailable(message)


class DoudianStockApi:
    METHOD = "sku.syncStock"

    def __init__(self, account: MarketplaceAccount, clock: Any = None) -> None:
        self._account = account
        self._base = (account.api_base or DOUDIAN_GATEWAY).rstrip("/")
        self._clock = clock or (lambda: datetime.now(_CHINA))

    def push(self, change: StockChange, listing: Listing) -> None:
        business: dict[str, Any] = {
            "product_id": listing.item_id,
            "stock_num": change.delta,
            "incremental": True,
            "idempotent_id": change.idempotency_key,
        }
        if listing.sku_id:
            business["sku_id"] = listing.sku_id
        param_json = json.dumps(business, sort_keys=True, separators=(",", ":"))
        timestamp = self._clock().astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S")
        secret = self._account.app_secret.get_secret_value()
        query = {
            "app_key": self._account.app_key,
            "method": self.METHOD,
            "access_token": self._account.access_token.get_secret_value(),
            "timestamp": timestamp,
            "v": "2",
            "sign_method": "hmac-sha256",
            "sign": doudian_sign(self._account.app_key, secret, self.METHOD, param_json, timestamp),
        }
        url = f"{self._base}/{self.METHOD.replace('.', '/')}?{urllib.parse.urlencode(query)}"
        answer = _post(url, param_json.encode(), "application/json")
        if answer.get("err_no", answer.get("code")) not in (0, 10000):
            raise MarketplaceUnavailable(f"doudian err_no {answer.get('err_no')}")
