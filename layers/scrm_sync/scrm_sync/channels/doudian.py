"""抖店 (Doudian) message push → canonical order events — when the buyer can be identified.

Transport (reference channels.md §3.1):

* JSON POST whose body is a JSON **array** of messages ``{tag, msg_id | msgId, data}``; ``data`` is an
  object or a JSON string (both are accepted);
* headers ``app-id`` (must equal our ``app_key``) and ``event-sign = hex(md5(app_key + raw body +
  app_secret))``, compared case-insensitively in constant time. When a ``sign-method: hmac-sha256`` header
  is present, ``hex(hmac_sha256(app_secret, app_key + body + app_secret))`` is expected instead (unconfirmed
  by public sources, see reference §8);
* the URL check is a push whose messages all have ``tag "0"``; it is verified like any push and answered
  ``{"code":0,"msg":"success"}``, which is also the ack of every push (within 5 s).

Mapping and its real limitation:

* order tags (100 created → ``order.created``; 101 paid, 102 shipped, 103 success, 106 canceled, ...,
  2xx after-sale/refund → ``order.updated``) give ``order_id = p_id``, a status name (``STATUS_BY_TAG``),
  ``total`` (Doudian amounts are integer fen; converted to CNY yuan) and ``attributes.shop_id``;
* **Doudian pushes carry no buyer identity**: only order/shop ids (the buyer's ``doudian_open_id`` and the
  encrypted phone are only in the order-detail API). A canonical event needs at least one identifier of a
  canonical type, so an order message becomes an event only when its ``data`` happens to contain a plain
  (unencrypted, unmasked) buyer phone; otherwise — in practice always — it is kept in
  ``ParsedPush.unmapped["messages"]`` (msg_id, tag, status, order_id, shop_id, raw data) with no canonical
  event. The raw push is landed either way, so a later enrichment step (order detail API → buyer
  identifiers) can replay them;
* product (4xx), distribution (5xx) and unknown tags are kept in ``unmapped`` as well;
* a message whose event the canonical model refuses (not storable, e.g. an amount with more digits
  than DynamoDB holds) is reported in ``ParsedPush.refused`` (a mapping failure); the other messages of
  the push are mapped as usual.

Dedupe: ``event_id`` = the message's ``msg_id``/``msgId`` (one delivery id per array item).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from ..domain.events import CanonicalEvent
from .base import MalformedPush, ParsedPush, SignatureInvalid, WebhookReply, WebhookRequest
from .payloads import READ_ERRORS, body_id, bounded_id, loads, text, unix_time

APP_ID_HEADER = "app-id"
SIGNATURE_HEADER = "event-sign"
SIGN_METHOD_HEADER = "sign-method"
HANDSHAKE_TAG = "0"
SUCCESS_BODY = '{"code":0,"msg":"success"}'
_JSON_HEADERS = "application/json; charset=utf-8"

STATUS_BY_TAG: dict[str, str] = {
    "100": "created",
    "101": "paid",
    "102": "shipped",
    "103": "success",
    "104": "logistics_changed",
    "105": "address_changed",
    "106": "canceled",
    "108": "partly_shipped",
    "109": "amount_changed",
    "110": "pending",
    "111": "address_change_applied",
    "112": "appointment",
    "113": "memo_modified",
    "200": "refund_created",
    "201": "return_agreed",
    "202": "return_apply_agreed",
    "203": "buyer_return_goods",
    "204": "refund_refused",
    "205": "return_apply_refused",
    "206": "refund_success",
    "207": "refund_closed",
    "208": "refund_modified",
    "209": "refund_expiration_changed",
    "211": "exchange_confirmed",
    "212": "arbitrate_applied",
    "216": "arbitrate_audited",
    "217": "service_intervene",
    "218": "discuss_uploaded",
}
CREATED_TAG = "100"
# the time that best says when the change happened, per tag (unix seconds in `data`)
_TIME_KEYS = (
    "pay_time",
    "complete_time",
    "cancel_time",
    "modify_time",
    "update_time",
    "apply_time",
    "create_time",
)
_AMOUNT_KEYS = ("pay_amount", "total_amount", "order_amount")
_PHONE_KEYS = ("buyer_phone", "post_tel", "mobile", "phone")
_PLAIN_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")
_CENT = Decimal("0.01")
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # moving the point never rounds


class DoudianAdapter:
    name = "doudian"

    # ---- handshake -------------------------------------------------------------------------------

    def is_handshake(self, request: WebhookRequest) -> bool:
        try:
            messages = _messages(request.body)
        except (MalformedPush, *READ_ERRORS):
            return False
        return bool(messages) and all(_tag(m) == HANDSHAKE_TAG for m in messages)

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        if request.method != "POST":
            return WebhookReply(405, "method not allowed")
        self.verify(request, credentials)
        return WebhookReply(200, SUCCESS_BODY, _JSON_HEADERS)

    # ---- verify ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        app_key, app_secret = credentials.get("app_key"), credentials.get("app_secret")
        if not isinstance(app_key, str) or not app_key or not isinstance(app_secret, str) or not app_secret:
            raise SignatureInvalid("doudian app_key/app_secret are not configured")
        app_id = request.headers.get(APP_ID_HEADER) or ""
        if not hmac.compare_digest(app_id.strip().encode("utf-8", "replace"), app_key.encode()):
            raise SignatureInvalid(f"{APP_ID_HEADER} does not match app_key")
        presented = request.headers.get(SIGNATURE_HEADER)
        if not presented:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER}")
        signed = app_key.encode() + request.body + app_secret.encode()
        method = (request.headers.get(SIGN_METHOD_HEADER) or "").strip().lower()
        if method in {"hmac-sha256", "hmac_sha256"}:
            expected = hmac.new(app_secret.encode(), signed, hashlib.sha256).hexdigest()
        else:
            expected = hashlib.md5(signed).hexdigest()  # noqa: S324 (platform scheme)
        if not hmac.compare_digest(expected.encode(), presented.strip().lower().encode("utf-8", "replace")):
            raise SignatureInvalid(f"bad {SIGNATURE_HEADER}")

    # ---- parse -----------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        messages = _messages(request.body)
        push = ParsedPush(unmapped={"messages": []})
        try:
            for index, message in enumerate(messages):
                self._parse_message(request, index, message, push)
        except MalformedPush:
            raise
        except READ_ERRORS as exc:
            raise MalformedPush(f"unreadable doudian message: {type(exc).__name__}") from exc
        return push

    def _parse_message(
        self, request: WebhookRequest, index: int, message: dict[str, Any], push: ParsedPush
    ) -> None:
        tag = _tag(message)
        if tag is None:
            raise MalformedPush(f"message {index} has no tag")
        data = _data(message.get("data"))
        msg_id = _msg_id(message, request, index)
        push.delivery_ids.append(msg_id)
        kept: dict[str, Any] = {"msg_id": msg_id, "tag": tag, "data": data}
        push.unmapped["messages"].append(kept)
        if tag == HANDSHAKE_TAG:
            kept["reason"] = "verification ping"
            return
        push.observed.append((tag, {"tag": tag, "data": data}))
        status = STATUS_BY_TAG.get(tag)
        if status is None:
            kept["reason"] = "tag not mapped"
            return
        order_id = text(data.get("p_id")) or text(data.get("order_id"))
        shop_id = text(data.get("shop_id"))
        kept.update(status=status, order_id=order_id, shop_id=shop_id)
        if not order_id:
            kept["reason"] = "no p_id"
            return
        identifiers = _buyer_identifiers(data)
        if not identifiers:
            kept["reason"] = "no buyer identifier in doudian push (needs order-detail enrichment)"
            return

        order: dict[str, Any] = {"order_id": order_id[:256], "status": status, "currency": "CNY"}
        total = _fen_to_yuan(next((data[k] for k in _AMOUNT_KEYS if k in data), None))
        if total is not None:
            order["total"] = total
        created = unix_time(data.get("create_time"))
        if created is not None:
            order["created_at"] = created
        occurred = next((t for t in (unix_time(data.get(k)) for k in _TIME_KEYS) if t is not None), None)
        try:
            event = CanonicalEvent(
                event_id=msg_id,
                source=self.name,
                type="order.created" if tag == CREATED_TAG else "order.updated",
                occurred_at=occurred or _msg_id_time(msg_id) or _aware(request.received_at),
                identifiers=identifiers,  # type: ignore[arg-type]
                attributes={"shop_id": shop_id[:4096]} if shop_id else {},
                order=order,  # type: ignore[arg-type]
            )
        except ValidationError as exc:  # not storable (e.g. an amount beyond DynamoDB's range)
            kept["reason"] = push.refuse(tag, exc)
            return
        push.add(event, tag, {"tag": tag, "data": data})
        push.unmapped["messages"].pop()  # `kept` is the last entry: mapped after all

    # ---- ack -------------------------------------------------------------------------------------

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        return WebhookReply(200, SUCCESS_BODY, _JSON_HEADERS)


# ---- helpers -------------------------------------------------------------------------------------


def _messages(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = loads(body.decode("utf-8-sig"))
    except READ_ERRORS as exc:
        raise MalformedPush(f"body is not JSON: {type(exc).__name__}") from exc
    if isinstance(payload, dict):  # tolerate a single message sent bare
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(m, dict) for m in payload):
        raise MalformedPush("body is not a JSON array of messages")
    return payload


def _tag(message: dict[str, Any]) -> str | None:
    tag = message.get("tag")
    if isinstance(tag, bool) or not isinstance(tag, str | int):
        return None
    text = str(tag).strip()
    return text or None


def _data(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = loads(raw)
        except READ_ERRORS as exc:
            raise MalformedPush("message data is not JSON") from exc
    if not isinstance(raw, dict):
        raise MalformedPush("message data is not an object")
    return raw


def _msg_id(message: dict[str, Any], request: WebhookRequest, index: int) -> str:
    found = text(message.get("msg_id")) or text(message.get("msgId"))
    # no id: the body and the position identify the message (retries are byte-identical)
    return bounded_id(found) if found else body_id(request.body, f"-{index}")


def _buyer_identifiers(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Only a plain phone qualifies: encrypted (`#...#`) or masked (`138****8000`) values never do."""
    for key in _PHONE_KEYS:
        value = data.get(key)
        if isinstance(value, str) and "*" not in value and _PLAIN_PHONE.match(value.strip()):
            return [{"type": "phone", "value": value.strip()}]
    return []


def _fen_to_yuan(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        fen = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not fen.is_finite() or fen < 0:
        return None
    yuan = fen.scaleb(-2, _EXACT)
    try:
        return yuan.quantize(_CENT)
    except InvalidOperation:  # over the context's 28 digits: kept exact, the model says if storable
        return yuan


def _msg_id_time(msg_id: str) -> datetime | None:
    """msgIds look like `04288…9348874::100:1618990587:6837…9128`: the 4th field is the unix time."""
    parts = msg_id.split(":")
    return unix_time(parts[3]) if len(parts) >= 5 else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
