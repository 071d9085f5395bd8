"""Marketplace stock APIs: Tmall (TOP), Doudian and Youzan, behind one interface (`push`).

Request signing, as the platforms' SDKs do it:
- TOP: `sign = upper(hex(md5(secret + concat(sorted(name + value)) + secret)))`, `sign_method=md5`,
  form-encoded POST to the router (reference/channels.md: the TOP family signs secret‖sorted(k+v)‖secret).
- Doudian: `sign = hex(hmac_sha256(app_secret, app_secret + "app_key{k}method{m}param_json{j}timestamp{t}v2"
  + app_secret))`, `param_json` = the business parameters as JSON with sorted keys and no spaces,
  POST to `/<method with dots as slashes>` (minibear2021/doudian `DouDian._sign`, `_request`).
  A self-use app's token comes from `token.create` (`grant_type` `authorization_self`, `shop_id`,
  `code` ""; answer `code` 10000, `data.access_token`, `data.expires_in`), signed the same way
  with `param_json` in the query too (minibear2021/doudian `init_token`; doudian-sdk-php
  `AccessTokenBuilder::build`).
- Youzan (the official SDKs, youzan/open-sdk-node `client.js`, `token.js`): no signature; a token
  from `POST /auth/token` `{"authorize_type": "silent", "client_id", "client_secret", "grant_id":
  kdt_id}` (answer `data.access_token`, `data.expires` in epoch milliseconds), then `POST
  /api/<api>/<version>?access_token=` with a JSON body. Errors come as `gw_err_resp` (gateway:
  `err_code`, `err_msg`), `error_response` (3.0.0 APIs) or `success: false`.
Errors: a network failure, a 5xx or an error answer is MarketplaceUnavailable (the push is
retried), except the answers that name the request itself as wrong (TOP `isv.*` sub-codes),
which are MarketplaceRejected. An error answer says the update was not applied
(`maybe_applied=False`); no answer leaves that unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ..domain.inventory import Listing
from ..domain.stock_push import ListingUpdate, MarketplaceAccount
from ..services.ports import MarketplaceRejected, MarketplaceUnavailable
from .credential_cache import Fetch

TOP_ROUTER = "https://eco.taobao.com/router/rest"
DOUDIAN_GATEWAY = "https://openapi-fxg.jinritemai.com"
YOUZAN_GATEWAY = "https://open.youzanyun.com"
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
        # a 4xx is the gateway turning the request away before it reached the stock service
        raise MarketplaceUnavailable(f"HTTP {exc.code}", maybe_applied=exc.code >= 500) from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise MarketplaceUnavailable(type(exc).__name__) from None
    if not isinstance(answer, dict):
        raise MarketplaceUnavailable("the answer is not a JSON object")
    return answer


def _shop_token(account: MarketplaceAccount) -> str:
    if account.access_token is None:
        raise ValueError("this channel needs the shop's access_token")
    return account.access_token.get_secret_value()


class TmallStockApi:
    METHOD = "tmall.item.quantity.update"
    keyed = True  # outer_biz_key

    def __init__(self, account: MarketplaceAccount, clock: Any = None) -> None:
        self._account = account
        self._token = _shop_token(account)
        self._url = account.api_base or TOP_ROUTER
        self._clock = clock or (lambda: datetime.now(_CHINA))

    def push(self, update: ListingUpdate, listing: Listing) -> None:
        change = update.change
        params = {
            "method": self.METHOD,
            "app_key": self._account.app_key,
            "session": self._token,
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
            raise MarketplaceUnavailable(message, maybe_applied=False)


class DoudianStockApi:
    METHOD = "sku.syncStock"
    keyed = True  # idempotent_id

    def __init__(
        self, account: MarketplaceAccount, credentials: Credentials | None = None, clock: Any = None
    ) -> None:
        self._account = account
        self._fixed_token = account.access_token.get_secret_value() if account.access_token else None
        if self._fixed_token is None and (account.shop_id is None or credentials is None):
            raise ValueError("a Doudian account needs an access_token, or shop_id and a credential cache")
        self._credentials = credentials
        self._base = (account.api_base or DOUDIAN_GATEWAY).rstrip("/")
        self._clock = clock or (lambda: datetime.now(_CHINA))

    def push(self, update: ListingUpdate, listing: Listing) -> None:
        change = update.change
        business: dict[str, Any] = {
            "product_id": listing.item_id,
            "stock_num": change.delta,
            "incremental": True,
            "idempotent_id": change.idempotency_key,
        }
        if listing.sku_id:
            business["sku_id"] = listing.sku_id
        token = self._token()
        answer = self._call(self.METHOD, business, token)
        if self._fixed_token is None and _doudian_token_refused(answer):
            answer = self._call(self.METHOD, business, self._token(rejected=token))
        if _doudian_error(answer):
            raise MarketplaceUnavailable(f"doudian err_no {answer.get('err_no')}", maybe_applied=False)

    def _call(self, method: str, business: dict[str, Any], token: str | None) -> dict[str, Any]:
        param_json = json.dumps(business, sort_keys=True, separators=(",", ":"))
        timestamp = self._clock().astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S")
        secret = self._account.app_secret.get_secret_value()
        query = {
            "app_key": self._account.app_key,
            "method": method,
            "timestamp": timestamp,
            "v": "2",
            "sign_method": "hmac-sha256",
            "sign": doudian_sign(self._account.app_key, secret, method, param_json, timestamp),
        }
        if token is None:
            query["param_json"] = param_json  # token requests carry it in the query as well
        else:
            query["access_token"] = token
        url = f"{self._base}/{method.replace('.', '/')}?{urllib.parse.urlencode(query)}"
        return _post(url, param_json.encode(), "application/json")

    def _token(self, rejected: str | None = None) -> str:
        if self._fixed_token is not None:
            return self._fixed_token
        assert self._credentials is not None and self._account.shop_id is not None
        name = f"doudian-token#{self._account.app_key}#{self._account.shop_id}"
        return self._credentials.get(name, self._create_token, rejected)

    def _create_token(self) -> tuple[str, Any]:
        request = {"code": "", "grant_type": "authorization_self", "shop_id": self._account.shop_id}
        answer = self._call("token.create", request, None)
        data = answer.get("data")
        token = data.get("access_token") if isinstance(data, dict) else None
        if _doudian_error(answer) or not isinstance(token, str) or not token:
            raise MarketplaceUnavailable(
                f"doudian token refused: code {answer.get('code')}", maybe_applied=False
            )
        return token, data.get("expires_in") if isinstance(data, dict) else None


def _doudian_error(answer: dict[str, Any]) -> bool:
    return answer.get("err_no", answer.get("code")) not in (0, 10000)


def _doudian_token_refused(answer: dict[str, Any]) -> bool:
    # [UNCERTAIN] the codes for an expired or revoked token are not in the references; the
    # answers name it ("access_token已过期"), so the message decides
    message = str(answer.get("message") or answer.get("msg") or "")
    return _doudian_error(answer) and "token" in message.lower()


class Credentials(Protocol):
    """A shared credential cache (adapters/credential_cache.py)."""

    def get(self, name: str, fetch: Fetch, rejected: str | None = None) -> str: ...


class YouzanStockApi:
    """`youzan.item.quantity.update` 3.0.0: `type` 1 adds `quantity` (negative takes away), 0
    sets it. Youzan dedupes nothing, so the caller claims each push (services/stock_push.py)."""

    API = "youzan.item.quantity.update"
    VERSION = "3.0.0"
    keyed = False

    def __init__(self, account: MarketplaceAccount, credentials: Credentials, clock: Any = None) -> None:
        if account.shop_id is None:
            raise ValueError("a Youzan account needs shop_id")
        self._account = account
        self._shop_id = account.shop_id
        self._credentials = credentials
        self._base = (account.api_base or YOUZAN_GATEWAY).rstrip("/")
        self._clock = clock or time.time

    def push(self, update: ListingUpdate, listing: Listing) -> None:
        body: dict[str, Any] = {
            "item_id": int(listing.item_id),
            "quantity": update.quantity,
            "type": 0 if update.absolute else 1,
        }
        if listing.sku_id:
            body["sku_id"] = int(listing.sku_id)
        token = self._token()
        answer = self._call(token, body)
        if _youzan_token_refused(answer):
            # the shared token was revoked or expired early: fetch a new one, once
            answer = self._call(self._token(rejected=token), body)
        _youzan_result(answer)

    def _call(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        query = urllib.parse.urlencode({"access_token": token})
        url = f"{self._base}/api/{self.API}/{self.VERSION}?{query}"
        return _post(url, json.dumps(body).encode(), "application/json;charset=UTF-8")

    def _token(self, rejected: str | None = None) -> str:
        return self._credentials.get(f"youzan-token#{self._shop_id}", self._fetch_token, rejected)

    def _fetch_token(self) -> tuple[str, Any]:
        request = {
            "authorize_type": "silent",
            "client_id": self._account.app_key,
            "client_secret": self._account.app_secret.get_secret_value(),
            "grant_id": self._shop_id,
            "refresh": False,
        }
        answer = _post(f"{self._base}/auth/token", json.dumps(request).encode(), "application/json")
        data = answer.get("data")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not answer.get("success") or not isinstance(token, str) or not token:
            raise MarketplaceUnavailable(
                f"youzan token refused: code {answer.get('code')}", maybe_applied=False
            )
        expires_ms = data.get("expires") if isinstance(data, dict) else None
        expires_in = int(expires_ms / 1000 - self._clock()) if isinstance(expires_ms, int | float) else None
        return token, expires_in


def _youzan_error(answer: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) of an error answer, or None."""
    for envelope in ("gw_err_resp", "error_response"):
        error = answer.get(envelope)
        if isinstance(error, dict):
            code = error.get("err_code", error.get("code"))
            return str(code), str(error.get("err_msg") or error.get("msg") or "")
    if answer.get("success") is False:
        return str(answer.get("code")), str(answer.get("message") or "")
    return None


def _youzan_token_refused(answer: dict[str, Any]) -> bool:
    # [UNCERTAIN] the gateway's codes for a bad token are not in the references; its messages
    # name the token ("token 不合法", "token已过期"), so the message decides
    error = _youzan_error(answer)
    return error is not None and "token" in error[1].lower()


def _youzan_result(answer: dict[str, Any]) -> None:
    error = _youzan_error(answer)
    if error is not None:
        raise MarketplaceUnavailable(f"youzan {error[0]}", maybe_applied=False)
    result = answer.get("data", answer.get("response"))
    if not isinstance(result, dict) or result.get("is_success") is not True:
        raise MarketplaceUnavailable("youzan did not confirm the update")
