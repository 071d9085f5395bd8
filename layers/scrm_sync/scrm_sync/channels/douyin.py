"""Douyin Open Platform (open.douyin.com) webhooks → canonical `interaction` events.

Transport (reference channels.md §3.2):

* every push is a JSON POST signed with ``X-Douyin-Signature = hex(sha1(client_secret + raw body))``;
  the comparison is case-insensitive and constant-time;
* the URL check is a POST of ``{"event": "verify_webhook", "content": {"challenge": 12345}}`` that must be
  answered with exactly ``{"challenge": 12345}`` (same JSON type as sent); it is signed as well, and the
  signature is checked whenever the header is present;
* the platform retries 3 times and drops connections after 5 s; the ``Msg-Id`` header is the dedupe key
  (``log_id`` in the body when the header is missing).

Mapping:

* follows (``new_follow_action``), direct/group IM (``im_*``) and likes (``new_video_digg``, live-room
  like counts ``live_like``) become ``interaction`` events with ``kind`` = the event name and the identifier
  ``{"type": "douyin_openid", "value": <open id>, "scope": <client_key>}``. The customer is
  ``from_user_id``, except for messages *sent by* the authorised account (``im_send_msg``,
  ``im_group_send_msg``) where the customer is the recipient ``to_user_id``;
* likes carry ``metrics={"likes": N}`` (N = the count in the content, 1 for a single ``new_video_digg``);
  turning likes into an interaction index is left to the mapping layer, which finds the raw content in
  ``ParsedPush.unmapped["content"]`` (always set, for every push);
* any other event (authorize, create_video, ...) and events without a user id are kept raw (landed) but
  produce no canonical event: ``unmapped["reason"]`` says why. An event the canonical model refuses
  (not storable, e.g. a like count beyond DynamoDB's range) is reported in ``ParsedPush.refused``: the
  webhook records it as a mapping failure.

The live-room *data push* of the interaction platform (§3.3, ``x-signature`` = base64 md5 of sorted headers)
is a different transport and is not handled here.

Ack: HTTP 200 with the JSON body ``{}`` (the platform only looks at the status code).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..domain.events import CanonicalEvent
from .base import MalformedPush, ParsedPush, SignatureInvalid, WebhookReply, WebhookRequest
from .payloads import READ_ERRORS, body_id, bounded_id, load_json, load_object, loads, text, unix_time

SIGNATURE_HEADER = "x-douyin-signature"
MSG_ID_HEADER = "msg-id"
HANDSHAKE_EVENT = "verify_webhook"

FOLLOW_EVENTS = frozenset({"new_follow_action"})
IM_EVENTS = frozenset(
    {
        "im_receive_msg",
        "im_send_msg",
        "im_enter_direct_msg",
        "im_group_receive_msg",
        "im_group_send_msg",
    }
)
LIKE_EVENTS = frozenset({"new_video_digg", "live_like"})
OUTBOUND_EVENTS = frozenset({"im_send_msg", "im_group_send_msg"})  # the customer is the recipient
MAPPED_EVENTS = FOLLOW_EVENTS | IM_EVENTS | LIKE_EVENTS

_LIKE_COUNT_KEYS = ("like_count", "like_num", "digg_count", "likes", "count")
_TIME_KEYS = ("create_time", "action_time", "timestamp")
_TEXT_KEYS = ("text", "content", "msg")
_REF_KEYS = ("server_message_id", "conversation_short_id", "item_id", "room_id")
_JSON_HEADERS = "application/json; charset=utf-8"


class DouyinAdapter:
    name = "douyin"

    # ---- handshake -------------------------------------------------------------------------------

    def is_handshake(self, request: WebhookRequest) -> bool:
        try:
            payload = load_json(request.body)
        except (MalformedPush, *READ_ERRORS):
            return False
        return isinstance(payload, dict) and payload.get("event") == HANDSHAKE_EVENT

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        if request.method != "POST":
            return WebhookReply(405, "method not allowed")
        if request.headers.get(SIGNATURE_HEADER) is not None:
            self.verify(request, credentials)
        payload = load_object(request.body)
        try:
            content = _content(payload.get("content"))
        except READ_ERRORS as exc:
            raise MalformedPush(f"unreadable content: {type(exc).__name__}") from exc
        if "challenge" not in content:
            raise MalformedPush("verify_webhook without a challenge")
        challenge = content["challenge"]
        if not isinstance(challenge, str | int) or isinstance(challenge, bool):
            raise MalformedPush("challenge is neither a number nor a string")
        try:
            body = json.dumps({"challenge": challenge}, separators=(",", ":"))
        except READ_ERRORS as exc:  # e.g. an int too large to print
            raise MalformedPush("unprintable challenge") from exc
        return WebhookReply(200, body, _JSON_HEADERS)

    # ---- verify ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        secret = credentials.get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise SignatureInvalid("douyin client_secret is not configured")
        presented = request.headers.get(SIGNATURE_HEADER)
        if not presented:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER}")
        expected = hashlib.sha1(secret.encode() + request.body).hexdigest()  # noqa: S324 (platform scheme)
        if not hmac.compare_digest(expected.encode(), presented.strip().lower().encode("utf-8", "replace")):
            raise SignatureInvalid(f"bad {SIGNATURE_HEADER}")

    # ---- parse -----------------------------------------------------------------------------------

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        payload = load_object(request.body)
        try:
            return self._parse(request, credentials, payload)
        except MalformedPush:
            raise
        except READ_ERRORS as exc:
            raise MalformedPush(f"unreadable douyin push: {type(exc).__name__}") from exc

    def _parse(
        self, request: WebhookRequest, credentials: Mapping[str, Any], payload: dict[str, Any]
    ) -> ParsedPush:
        event = payload.get("event")
        if not isinstance(event, str) or not event:
            raise MalformedPush("missing 'event'")
        content = _content(payload.get("content"))
        delivery_id = _delivery_id(request, payload)
        push = ParsedPush(delivery_ids=[delivery_id], unmapped={"event": event, "content": content})
        source = {**payload, "content": content}
        push.observed.append((event, source))
        if event not in MAPPED_EVENTS:
            push.unmapped["reason"] = "event not mapped"
            return push

        user_key = "to_user_id" if event in OUTBOUND_EVENTS else "from_user_id"
        open_id = (
            text(payload.get(user_key)) or text(content.get("open_id")) or text(content.get("sec_openid"))
        )
        if not open_id:
            push.unmapped["reason"] = f"no {user_key}"
            return push
        scope = text(payload.get("client_key")) or text(credentials.get("client_key"))
        identifier: dict[str, Any] = {"type": "douyin_openid", "value": open_id}
        if scope:
            identifier["scope"] = scope

        interaction: dict[str, Any] = {"kind": event[:256]}
        if event in IM_EVENTS:
            interaction["content"] = _message_text(content)
        ref = next((text(content.get(k)) for k in _REF_KEYS if text(content.get(k))), None)
        if ref:
            interaction["channel_ref"] = ref[:256]
        if event in LIKE_EVENTS:
            likes = _like_count(content)
            if likes is None and event == "new_video_digg":
                likes = 1.0  # one digg push = one like
            if likes is not None:
                interaction["metrics"] = {"likes": likes}

        try:
            push.add(
                CanonicalEvent(
                    event_id=delivery_id,
                    source=self.name,
                    type="interaction",
                    occurred_at=_occurred_at(content, request.received_at),
                    identifiers=[identifier],  # type: ignore[list-item]
                    interaction=interaction,  # type: ignore[arg-type]
                ),
                event,
                source,
            )
        except ValidationError as exc:  # not storable (e.g. a count beyond DynamoDB's range)
            push.unmapped["reason"] = push.refuse(event, exc)
        return push

    # ---- ack -------------------------------------------------------------------------------------

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        return WebhookReply(200, "{}", _JSON_HEADERS)


# ---- helpers -------------------------------------------------------------------------------------


def _content(raw: Any) -> dict[str, Any]:
    """`content` arrives as a JSON string (documented) or an object; plain text becomes {"text": ...}."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            decoded = loads(raw)
        except ValueError:
            return {"text": raw}
        return decoded if isinstance(decoded, dict) else {"value": decoded}
    return {"value": raw}


def _message_text(content: dict[str, Any]) -> str | None:
    for key in _TEXT_KEYS:
        value = content.get(key)
        if isinstance(value, str) and value.strip():
            return value[:8192]
    return None


def _like_count(content: dict[str, Any]) -> float | None:
    for key in _LIKE_COUNT_KEYS:
        value = content.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
            number = float(value)
            if number >= 0 and number != float("inf"):
                return number
    return None


def _occurred_at(content: dict[str, Any], received_at: datetime) -> datetime:
    for key in _TIME_KEYS:
        moment = unix_time(content.get(key))
        if moment is not None:
            return moment
    return received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)


def _delivery_id(request: WebhookRequest, payload: dict[str, Any]) -> str:
    for candidate in (text(request.headers.get(MSG_ID_HEADER)), text(payload.get("log_id"))):
        if candidate:
            return bounded_id(candidate)
    return body_id(request.body)  # neither a Msg-Id nor a log_id
