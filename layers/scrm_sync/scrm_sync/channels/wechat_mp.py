"""WeChat Official Account (公众号) server configuration: URL check, plain and safe-mode pushes.

Transport (channels.md §2): ``GET ?signature&timestamp&nonce&echostr`` is the URL check, answered with
``echostr`` as-is; ``signature = sha1(sorted[token, timestamp, nonce])``. Pushes are ``POST`` XML with
the same ``signature`` (plus ``openid``); in safe / compatible mode also ``encrypt_type=aes`` and
``msg_signature`` over ``<Encrypt>``, which decrypts with receiveid = AppID (same crypto as WeCom).

Plain mode authenticates only token + timestamp + nonce, **not the body**: anyone who saw one signed
query string could attach another body to it within the replay window. So when the channel has an
``encoding_aes_key`` configured, plain-mode pushes are refused (401) unless ``require_encryption`` is
set to false explicitly; in safe / compatible mode only the decrypted message is trusted (the plaintext
copy next to ``<Encrypt>`` in compatible mode is ignored).

Credentials (``wechat_mp`` entry): ``app_id``, ``token``, ``encoding_aes_key`` (safe mode); optional
``replay_window_seconds`` (default 300, 0 = off), ``require_encryption`` (default: true when
``encoding_aes_key`` is set).

Mapping (source ``wechat_mp``): every message and event becomes one ``interaction`` event for identifier
``wechat_openid = FromUserName`` (scope = AppID): kind = lower-cased Event (``subscribe``,
``unsubscribe``, ``scan``, ``click``, ``view``, ``location``, ``templatesendjobfinish``...) or MsgType
(``text``, ``image``...),
content = Content (text), Url (link), Label (location), Status (job-finish events), ``channel_ref`` =
EventKey when present (menu key, view URL, QR scene). subscribe / unsubscribe also carry the attribute
``wechat_mp_subscribed`` true / false (attributes become profile fields), and ``LOCATION`` events /
location messages carry latitude / longitude / precision as metrics.

Dedupe key / ``event_id``: ``MsgId`` when present, else ``FromUserName:CreateTime:Event``.
Ack: ``success`` (WeChat's documented "received, no reply").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .base import (
    MalformedPush,
    ParsedPush,
    SignatureInvalid,
    VerifiedOnce,
    WebhookReply,
    WebhookRequest,
)
from .wechat_crypto import (
    WeChatCrypto,
    build_event,
    check_freshness,
    check_signature,
    credential,
    event_id,
    short_text,
    utc_from_unix,
    xml_fields,
)

SOURCE = "wechat_mp"
_MAX_CONTENT = 8192
# metric name -> XML field, for LOCATION events and location messages
_EVENT_METRICS = {"latitude": "Latitude", "longitude": "Longitude", "precision": "Precision"}
_MESSAGE_METRICS = {"latitude": "Location_X", "longitude": "Location_Y", "scale": "Scale"}


def _requires_encryption(credentials: Mapping[str, Any]) -> bool:
    configured = credentials.get("require_encryption")
    if configured is None:
        return bool(credentials.get("encoding_aes_key"))
    return configured is True or str(configured).lower() in ("true", "1", "yes")


class WeChatMpAdapter:
    name = "wechat_mp"

    def __init__(self) -> None:
        self._verified: VerifiedOnce[dict[str, str]] = VerifiedOnce()

    def is_handshake(self, request: WebhookRequest) -> bool:
        return request.method == "GET" and "echostr" in request.query

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        query = request.query
        token = credential(credentials, "token")
        check_signature(query.get("signature"), token, query.get("timestamp", ""), query.get("nonce", ""))
        check_freshness(credentials, query.get("timestamp"), request.received_at)
        echostr = query.get("echostr")
        if not echostr:
            raise MalformedPush("echostr missing")
        return WebhookReply(200, echostr, "text/plain; charset=utf-8")

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        decrypted = self._message(request, credentials, parse_plain=False)  # {} in plain mode
        if decrypted:
            self._verified.keep(request, decrypted)

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        message = self._verified.take(request) or self._message(request, credentials, parse_plain=True)
        push = map_message(message, credential(credentials, "app_id"))
        return push.describe(message_kind(message), message)

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        return WebhookReply(200, "success")

    def _message(
        self, request: WebhookRequest, credentials: Mapping[str, Any], parse_plain: bool
    ) -> dict[str, str]:
        """Authenticate the push (signature before anything else) and return the message fields."""
        query = request.query
        token = credential(credentials, "token")
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if query.get("encrypt_type", "").lower() == "aes":
            crypto = WeChatCrypto(
                token, credential(credentials, "encoding_aes_key"), credential(credentials, "app_id")
            )
            if not query.get("msg_signature"):
                raise SignatureInvalid("msg_signature missing")
            encrypt = xml_fields(request.body).get("Encrypt", "").strip()
            if not encrypt:
                raise MalformedPush("Encrypt missing")
            crypto.check(query.get("msg_signature"), timestamp, nonce, encrypt)
            check_freshness(credentials, query.get("timestamp"), request.received_at)
            return xml_fields(crypto.decrypt(encrypt))
        if _requires_encryption(credentials):
            raise SignatureInvalid("plain-mode push refused: this channel expects encrypt_type=aes")
        check_signature(query.get("signature"), token, timestamp, nonce)
        check_freshness(credentials, query.get("timestamp"), request.received_at)
        return xml_fields(request.body) if parse_plain else {}


def _metrics(message: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, field in fields.items():
        try:
            value = float(message.get(field, "").strip())
        except ValueError:
            continue
        if math.isfinite(value):
            metrics[name] = value
    return metrics


def message_kind(message: Mapping[str, str]) -> str:
    """The kind the rules file's mappings are keyed by: the lower-cased Event for events
    (``subscribe``, ``scan``, ``templatesendjobfinish``), else the MsgType (``text``, ``image``)."""
    msg_type = message.get("MsgType", "").strip().lower()
    if msg_type == "event":
        return message.get("Event", "").strip().lower() or "event"
    return msg_type or "unknown"


def map_message(message: Mapping[str, str], app_id: str) -> ParsedPush:
    """The canonical event of one Official Account message or event (see the module docstring)."""
    openid = message.get("FromUserName", "").strip()
    created = message.get("CreateTime", "").strip()
    occurred_at = utc_from_unix(created)
    msg_type = message.get("MsgType", "").strip().lower()
    if not openid:
        raise MalformedPush("FromUserName missing")
    if not msg_type:
        raise MalformedPush("MsgType missing")
    attributes: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    if msg_type == "event":
        event = message.get("Event", "").strip()
        if not event:
            raise MalformedPush("Event missing")
        kind = event.lower()
        key = event_id(openid, created, event)
        content = message.get("Status")
        channel_ref = short_text(message.get("EventKey"))
        if kind in ("subscribe", "unsubscribe"):
            attributes["wechat_mp_subscribed"] = kind == "subscribe"
        elif kind == "location":
            metrics = _metrics(message, _EVENT_METRICS)
    else:
        kind = msg_type
        msg_id = message.get("MsgId", "").strip()
        key = event_id(msg_id) if msg_id else event_id(openid, created)
        content = {"link": message.get("Url"), "location": message.get("Label")}.get(
            msg_type, message.get("Content")
        )
        channel_ref = None
        if msg_type == "location":
            metrics = _metrics(message, _MESSAGE_METRICS)
    canonical = build_event(
        {
            "event_id": key,
            "source": SOURCE,
            "type": "interaction",
            "occurred_at": occurred_at.isoformat(),
            "identifiers": [{"type": "wechat_openid", "value": openid, "scope": app_id}],
            "attributes": attributes,
            "interaction": {
                "kind": short_text(kind) or "message",
                "content": content[:_MAX_CONTENT] if content else None,
                "channel_ref": channel_ref,
                "metrics": metrics,
            },
        }
    )
    return ParsedPush(events=[canonical], delivery_ids=[key])


ADAPTER = WeChatMpAdapter()
