"""有赞云 (Youzan) push → canonical order events.

Transport (reference channels.md §4.4):

* JSON POST signed with ``Event-Sign = hex(md5(client_id + raw body + client_secret))`` (case-insensitive,
  constant-time); a ``Client-Id`` header, when present, must equal our ``client_id``;
* body ``{client_id, id, kdt_id, kdt_name, mode, msg, msg_id, sendCount, status, test, type, version}``
  where ``msg`` is URL-encoded JSON (``json.loads(unquote(msg))``; plain JSON and objects are accepted too);
* pushes with ``test: true`` (sent when the push URL is configured) are the handshake: verified when signed,
  answered with the success body, no events;
* ack for every push: ``{"code":0,"msg":"success"}`` (the exact shape Youzan requires is unconfirmed, §8;
  it only needs HTTP 200 + a success body to stop retrying).

Mapping:

* ``trade_*`` types become order events: ``trade_TradeCreate`` → ``order.created``, everything else
  (paid, shipped, success, close, refunds, ...) → ``order.updated``; ``status`` is a name derived from the
  type (``STATUS_BY_TYPE``; unknown trade types → ``_status``: snake_case of the last word), the
  platform's own status is in ``attributes.youzan_status``; ``attributes.shop_id`` = ``kdt_id``;
* order fields from ``msg.full_order_info``: ``order_info.tid``/``created``, ``pay_info.payment`` (yuan,
  CNY), ``orders[]`` → lines (sku = ``outer_sku_id`` or ``sku_id``); local times (``YYYY-MM-DD HH:MM:SS``)
  are Asia/Shanghai (fixed +08:00: no DST since 1991, and Lambda images need no tz database);
* identifiers: ``buyer_info.buyer_phone`` → ``phone`` only when unmasked (no ``*``), and
  ``buyer_info.yz_open_id`` → ``youzan_open_id`` scoped to ``kdt_id``. ``fans_id``/``outer_user_id`` are not
  canonical identifier types and stay in the raw push. Without any identifier (e.g. refund messages, which
  carry no buyer_info) no event is produced; the message is kept in ``ParsedPush.unmapped``; an event
  the canonical model refuses (not storable) is reported in ``ParsedPush.refused`` (a mapping failure);
* non-trade types (SCRM, items, ...) are kept in ``unmapped`` with no event.

Dedupe: ``event_id`` = ``msg_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from ..domain.events import CanonicalEvent
from .base import MalformedPush, ParsedPush, SignatureInvalid, WebhookReply, WebhookRequest
from .payloads import READ_ERRORS, body_id, bounded_id, load_object, loads, text, unix_time

SIGNATURE_HEADER = "event-sign"
CLIENT_ID_HEADER = "client-id"
TYPE_HEADER = "event-type"
SUCCESS_BODY = '{"code":0,"msg":"success"}'
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_JSON_HEADERS = "application/json; charset=utf-8"

CREATED_TYPE = "trade_TradeCreate"
STATUS_BY_TYPE: dict[str, str] = {
    "trade_TradeCreate": "created",
    "trade_TradePaid": "paid",
    "trade_TradeBuyerPay": "paid",
    "trade_TradeSellerShip": "shipped",
    "trade_TradePartlySellerShip": "partly_shipped",
    "trade_TradeSuccess": "success",
    "trade_TradeClose": "closed",
    "trade_TradeMemoModified": "memo_modified",
    "trade_TradeMemoModify": "memo_modified",
    "trade_refund_RefundSuccess": "refund_success",
}
# when the change happened, per type, in `order_info` (local time); then the generic fallbacks
_TIME_BY_TYPE: dict[str, str] = {
    "trade_TradeCreate": "created",
    "trade_TradePaid": "pay_time",
    "trade_TradeSellerShip": "consign_time",
    "trade_TradeSuccess": "success_time",
}
_FALLBACK_TIME_KEYS = ("update_time", "created")
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class YouzanAdapter:
    name = "youzan"

    # ---- handshake -------------------------------------------------------------------------------

    def is_handshake(self, request: WebhookRequest) -> bool:
        try:
            payload = load_object(request.body)
        except (MalformedPush, *READ_ERRORS):
            return False
        return _is_test(payload.get("test"))

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        if request.method != "POST":
            return WebhookReply(405, "method not allowed")
        if request.headers.get(SIGNATURE_HEADER) is not None or request.headers.get(CLIENT_ID_HEADER):
            self.verify(request, credentials)
        return WebhookReply(200, SUCCESS_BODY, _JSON_HEADERS)

    # ---- verify ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        client_id, secret = credentials.get("client_id"), credentials.get("client_secret")
        if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
            raise SignatureInvalid("youzan client_id/client_secret are not configured")
        presented_id = request.headers.get(CLIENT_ID_HEADER)
        if presented_id is not None and not hmac.compare_digest(
            presented_id.strip().encode("utf-8", "replace"), client_id.encode()
        ):
            raise SignatureInvalid(f"{CLIENT_ID_HEADER} does not match client_id")
        presented = request.headers.get(SIGNATURE_HEADER)
        if not presented:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER}")
        expected = hashlib.md5(client_id.encode() + request.body + secret.encode()).hexdigest()  # noqa: S324
        if not hmac.compare_digest(expected.encode(), presented.strip().lower().encode("utf-8", "replace")):
            raise SignatureInvalid(f"bad {SIGNATURE_HEADER}")

    # ---- parse -----------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        payload = load_object(request.body)
        try:
            return self._parse(request, payload)
        except MalformedPush:
            raise
        except READ_ERRORS as exc:
            raise MalformedPush(f"unreadable youzan push: {type(exc).__name__}") from exc

    def _parse(self, request: WebhookRequest, payload: dict[str, Any]) -> ParsedPush:
        msg_id = text(payload.get("msg_id")) or text(request.headers.get("msg-id"))
        delivery_id = bounded_id(msg_id) if msg_id else body_id(request.body)
        type_ = text(payload.get("type")) or text(request.headers.get(TYPE_HEADER)) or ""
        push = ParsedPush(delivery_ids=[delivery_id], unmapped={"type": type_})
        if _is_test(payload.get("test")):
            push.unmapped["reason"] = "test push"
            return push
        msg = _msg(payload.get("msg"))
        push.unmapped["msg"] = msg
        source = {**payload, "msg": msg}
        push.observed.append((type_ or "unknown", source))
        if not type_.startswith("trade_"):
            push.unmapped["reason"] = "type not mapped"
            return push

        full = _object(msg.get("full_order_info"))
        info = _object(full.get("order_info"))
        buyer = _object(full.get("buyer_info"))
        pay = _object(full.get("pay_info"))
        kdt_id = text(payload.get("kdt_id")) or text(_object(full.get("shop_info")).get("kdt_id"))
        order_id = text(info.get("tid")) or text(msg.get("tid")) or text(payload.get("id"))
        if not order_id:
            push.unmapped["reason"] = "no tid"
            return push
        identifiers = _identifiers(buyer, kdt_id)
        if not identifiers:
            push.unmapped["reason"] = "no buyer identifier"
            return push

        order: dict[str, Any] = {
            "order_id": order_id[:256],
            "status": _status(type_),
            "currency": "CNY",
            "lines": _lines(full.get("orders")),
        }
        total = _decimal(pay.get("payment")) or _decimal(pay.get("total_fee"))
        if total is not None:
            order["total"] = total
        created = _local(info.get("created"))
        if created is not None:
            order["created_at"] = created
        attributes: dict[str, Any] = {}
        if kdt_id:
            attributes["shop_id"] = kdt_id[:4096]
        platform_status = text(info.get("status")) or text(payload.get("status"))
        if platform_status:
            attributes["youzan_status"] = platform_status[:4096]
        try:
            push.add(
                CanonicalEvent(
                    event_id=delivery_id,
                    source=self.name,
                    type="order.created" if type_ == CREATED_TYPE else "order.updated",
                    occurred_at=_occurred_at(type_, info, payload, request.received_at),
                    identifiers=identifiers,  # type: ignore[arg-type]
                    attributes=attributes,
                    order=order,  # type: ignore[arg-type]
                ),
                type_,
                source,
            )
        except ValidationError as exc:  # not storable (e.g. an amount beyond DynamoDB's range)
            push.unmapped["reason"] = push.refuse(type_, exc)
        return push

    # ---- ack -------------------------------------------------------------------------------------

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        return WebhookReply(200, SUCCESS_BODY, _JSON_HEADERS)


# ---- helpers -------------------------------------------------------------------------------------


def _is_test(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _msg(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise MalformedPush("msg is neither a string nor an object")
    text = raw.strip()
    try:
        decoded = loads(text if text.startswith("{") else unquote(text))
    except READ_ERRORS as exc:
        raise MalformedPush("msg is not URL-encoded JSON") from exc
    if not isinstance(decoded, dict):
        raise MalformedPush("msg is not a JSON object")
    return decoded


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _status(type_: str) -> str:
    """`trade_TradePaid` → `paid` (table first); otherwise the type's last word, snake_cased, without
    `Trade`: `trade_TradeBuyerAddressChanged` → `buyer_address_changed`, `trade_refund_RefundClosed` →
    `refund_closed`."""
    if type_ in STATUS_BY_TYPE:
        return STATUS_BY_TYPE[type_]
    word = type_.rsplit("_", 1)[-1].removeprefix("Trade")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", word).lower()[:256] or "updated"


def _identifiers(buyer: dict[str, Any], kdt_id: str | None) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = []
    phone = text(buyer.get("buyer_phone"))
    if phone and "*" not in phone:  # masked phones never become identifiers
        identifiers.append({"type": "phone", "value": phone[:512]})
    open_id = text(buyer.get("yz_open_id"))
    if open_id and "*" not in open_id:
        identifier = {"type": "youzan_open_id", "value": open_id[:512]}
        if kdt_id:
            identifier["scope"] = kdt_id[:256]
        identifiers.append(identifier)
    return identifiers


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _lines(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    lines: list[dict[str, Any]] = []
    for item in raw[:500]:
        if not isinstance(item, dict):
            continue
        line: dict[str, Any] = {}
        sku = text(item.get("outer_sku_id")) or text(item.get("sku_id"))
        if sku and sku != "0":
            line["sku"] = sku[:256]
        name = text(item.get("title"))
        if name:
            line["name"] = name[:512]
        quantity = _decimal(item.get("num"))
        if quantity is not None:
            line["quantity"] = quantity
        price = _decimal(item.get("price"))
        if price is not None:
            line["price"] = price
        amount = _decimal(item.get("payment")) or _decimal(item.get("total_fee"))
        if amount is not None:
            line["amount"] = amount
        lines.append(line)
    return lines


def _local(value: Any) -> datetime | None:
    """`2026-11-24 10:00:00` (Youzan local time, Asia/Shanghai) → aware datetime."""
    if not isinstance(value, str) or not _LOCAL_TIME.match(value.strip()):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None


def _occurred_at(
    type_: str, info: dict[str, Any], payload: dict[str, Any], received_at: datetime
) -> datetime:
    keys = ((_TIME_BY_TYPE[type_],) if type_ in _TIME_BY_TYPE else ()) + _FALLBACK_TIME_KEYS
    for key in keys:
        moment = _local(info.get(key))
        if moment is not None:
            return moment
    return unix_time(payload.get("version")) or (
        received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    )
