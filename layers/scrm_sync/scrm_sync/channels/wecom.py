"""WeCom (企业微信) callback mode: URL check, encrypted XML pushes, 客户联系 events.

Transport (channels.md §1): ``GET ?msg_signature&timestamp&nonce&echostr`` is the URL check, answered
with the decrypted echostr (text/plain, nothing else); pushes are ``POST ?msg_signature&timestamp&nonce``
with ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``. ``msg_signature`` covers the ciphertext, which
decrypts (receiveid = CorpID) to the message XML. The JSON callback variant is not supported (400).

Credentials (channels secret, ``wecom`` entry): ``corp_id``, ``token``, ``encoding_aes_key``; optional
``replay_window_seconds`` (default 300, 0 = off) and ``member_messages`` (``"interaction"``, the default,
or ``"ignore"``).

Mapping to canonical events (source ``wecom``), decided here:

* ``change_external_contact`` with ``add_external_contact`` / ``add_half_external_contact`` /
  ``edit_external_contact`` → one ``profile.updated`` for identifier
  ``wecom_external_userid = ExternalUserID`` (scope = CorpID), attributes ``wecom_follow_user`` (UserID,
  the member who follows the customer; the last one wins), the member's follower field (see
  ``domain.followers``: who may see this customer in the sidebar) and ``wecom_state`` (State: the
  acquisition channel of the 「联系我」 contact way) when present.
* ``del_external_contact`` / ``del_follow_user`` / ``transfer_fail`` (and unknown change types) → one
  ``interaction`` of kind = ChangeType for the same identifier, ``channel_ref`` = UserID and ``content`` =
  Source / FailReason; no attributes, because attributes become profile fields and a deleted relation
  must not overwrite ``wecom_follow_user``. ``del_external_contact`` / ``del_follow_user`` also end
  the member's follower field: a second event (``<event id>:unfollow``) clears it.
* ``change_external_tag`` → ``tag.changed`` only when the push names an ExternalUserID; tag pushes from
  WeCom name the tag (Id, TagType), never a customer, so in practice they produce no canonical event:
  the push is acked, kept in the raw landing and counted by its delivery id. ``change_external_chat``
  (group chats) and system events from ``sys`` (address book changes...) likewise produce no event.
* Messages (``MsgType`` text/image/voice/video/location/link/...) and other app events are sent by a
  *member* (an employee userid), not by a customer: they become ``interaction`` events (kind = MsgType or
  the lower-cased Event, content = Content, ``channel_ref`` = FromUserName) for identifier
  ``member_no = FromUserName`` scoped ``wecom:<CorpID>``, a scope no loyalty program uses, so members
  never merge into customer profiles. ``member_messages: "ignore"`` drops them instead.

Dedupe key / ``event_id`` (channels.md §7): ``MsgId`` when present, else
``FromUserName:CreateTime[:ChangeType:ExternalUserID:UserID]`` (tag pushes add ``:TagType:Id``).
``occurred_at`` = CreateTime (UTC).
Ack: HTTP 200 with an empty body (documented by WeCom as "received, no passive reply").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.followers import follower_field
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
    credential,
    event_id,
    short_text,
    utc_from_unix,
    xml_fields,
)
from .wecom_contact import enrichment_request

SOURCE = "wecom"
_PROFILE_CHANGES = frozenset({"add_external_contact", "add_half_external_contact", "edit_external_contact"})
_RELATION_ENDS = frozenset({"del_external_contact", "del_follow_user"})  # either side deleted the other
_MAX_CONTENT = 8192


def _crypto(credentials: Mapping[str, Any]) -> WeChatCrypto:
    return WeChatCrypto(
        credential(credentials, "token"),
        credential(credentials, "encoding_aes_key"),
        credential(credentials, "corp_id"),
    )


class WeComAdapter:
    name = "wecom"

    def __init__(self) -> None:
        self._verified: VerifiedOnce[bytes] = VerifiedOnce()

    def is_handshake(self, request: WebhookRequest) -> bool:
        return request.method == "GET" and "echostr" in request.query

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        query = request.query
        crypto = _crypto(credentials)
        echostr = query.get("echostr")
        if not echostr:
            raise MalformedPush("echostr missing")
        # base64 never contains spaces: a space is a '+' that a form decoder turned into one
        echostr = echostr.replace(" ", "+")
        crypto.check(query.get("msg_signature"), query.get("timestamp", ""), query.get("nonce", ""), echostr)
        check_freshness(credentials, query.get("timestamp"), request.received_at)
        plain = crypto.decrypt(echostr)
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPush("echostr plaintext is not UTF-8") from exc
        return WebhookReply(200, text, "text/plain; charset=utf-8")

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        self._verified.keep(request, self._decrypt(request, credentials))

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        plain = self._verified.take(request)
        message = xml_fields(plain if plain is not None else self._decrypt(request, credentials))
        push = map_message(message, credential(credentials, "corp_id"), credentials)
        return push.describe(message_kind(message), message)

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        return WebhookReply(200, "")

    def _decrypt(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> bytes:
        """Check signature and freshness, then decrypt (receiveid = CorpID). Signature first, always."""
        crypto = _crypto(credentials)
        query = request.query
        if not query.get("msg_signature"):
            raise SignatureInvalid("msg_signature missing")
        encrypt = xml_fields(request.body).get("Encrypt", "").strip()
        if not encrypt:
            raise MalformedPush("Encrypt missing")
        crypto.check(query.get("msg_signature"), query.get("timestamp", ""), query.get("nonce", ""), encrypt)
        check_freshness(credentials, query.get("timestamp"), request.received_at)
        return crypto.decrypt(encrypt)


def message_kind(message: Mapping[str, str]) -> str:
    """The event kind the rules file's mappings are keyed by: the 客户联系 ChangeType, else the
    event name, else the message type (e.g. ``add_external_contact``, ``enter_agent``, ``text``)."""
    for name in ("ChangeType", "Event", "MsgType"):
        value = message.get(name, "").strip()
        if value:
            return value.lower() if name != "ChangeType" else value
    return "unknown"


def map_message(message: Mapping[str, str], corp_id: str, credentials: Mapping[str, Any]) -> ParsedPush:
    """Canonical events of one decrypted WeCom message (see the module docstring)."""
    sender = message.get("FromUserName", "").strip()
    created = message.get("CreateTime", "").strip()
    occurred_at = utc_from_unix(created)
    msg_type = message.get("MsgType", "").strip()
    if not msg_type:
        raise MalformedPush("MsgType missing")
    msg_id = message.get("MsgId", "").strip()
    summary = {k: message[k] for k in ("MsgType", "Event", "ChangeType", "AgentID") if k in message}

    if msg_type == "event":
        kind = message.get("Event", "").strip()
        if kind in ("change_external_contact", "change_external_tag"):
            push = _external_contact(message, corp_id, occurred_at.isoformat(), summary)
            # details come from the API after the ack, given the 客户联系 secret that grants access
            wants_details = message.get("ChangeType", "").strip() in _PROFILE_CHANGES
            if push.events and wants_details and credentials.get("secret"):
                event = push.events[0]
                push.enrichments.append(
                    enrichment_request(
                        corp_id,
                        message.get("ExternalUserID", "").strip(),
                        message.get("UserID", "").strip(),
                        event.event_id,
                        event.occurred_at,
                    )
                )
            return push
        key = msg_id or event_id(sender, created, kind)
        if not sender or sender == "sys" or not kind:
            return ParsedPush(delivery_ids=[key], unmapped=summary)
        return _member_interaction(message, corp_id, credentials, key, kind.lower(), summary)
    key = msg_id or event_id(sender, created)
    if not sender:
        raise MalformedPush("FromUserName missing")
    return _member_interaction(message, corp_id, credentials, key, msg_type.lower(), summary)


def _external_contact(
    message: Mapping[str, str], corp_id: str, occurred_at: str, summary: dict[str, str]
) -> ParsedPush:
    sender = message.get("FromUserName", "").strip()
    change = message.get("ChangeType", "").strip()
    external = message.get("ExternalUserID", "").strip()
    member = message.get("UserID", "").strip()
    parts = [sender, message.get("CreateTime", ""), change, external, member]
    if message.get("Event", "").strip() == "change_external_tag":
        # tag pushes carry no MsgId, and an admin creating a group with several tags fires several
        # in the same second: the tag's Id and TagType tell them apart (WxJava issue 2314)
        parts += [message.get("TagType", ""), message.get("Id", "")]
    key = message.get("MsgId", "").strip() or event_id(*parts)
    if not external:
        return ParsedPush(delivery_ids=[key], unmapped=summary)
    payload: dict[str, Any] = {
        "event_id": key,
        "source": SOURCE,
        "occurred_at": occurred_at,
        "identifiers": [{"type": "wecom_external_userid", "value": external, "scope": corp_id}],
    }
    if message.get("Event", "").strip() == "change_external_tag":
        payload["type"] = "tag.changed"
        tag = short_text(message.get("Id"))
        if tag:
            payload["attributes"] = {"wecom_tag_id": tag}
    elif change in _PROFILE_CHANGES:
        payload["type"] = "profile.updated"
        attributes: dict[str, str] = {}
        if member:
            attributes["wecom_follow_user"] = member
            attributes[follower_field(member)] = member
        state = message.get("State", "").strip()
        if state:
            attributes["wecom_state"] = state
        payload["attributes"] = attributes
    else:
        payload["type"] = "interaction"
        payload["interaction"] = {
            "kind": short_text(change) or "change_external_contact",
            "content": (message.get("Source") or message.get("FailReason") or "").strip() or None,
            "channel_ref": short_text(member),
        }
        if member and change in _RELATION_ENDS:
            unfollow = {**payload, "event_id": f"{key}:unfollow", "type": "profile.updated"}
            unfollow.pop("interaction")
            unfollow["attributes"] = {follower_field(member): None}
            return ParsedPush(events=[build_event(payload), build_event(unfollow)], delivery_ids=[key])
    return ParsedPush(events=[build_event(payload)], delivery_ids=[key])


def _member_interaction(
    message: Mapping[str, str],
    corp_id: str,
    credentials: Mapping[str, Any],
    key: str,
    kind: str,
    summary: dict[str, str],
) -> ParsedPush:
    if credentials.get("member_messages", "interaction") == "ignore":
        return ParsedPush(delivery_ids=[key], unmapped=summary)
    sender = message.get("FromUserName", "").strip()
    content = message.get("Content")
    event = build_event(
        {
            "event_id": key,
            "source": SOURCE,
            "type": "interaction",
            "occurred_at": utc_from_unix(message.get("CreateTime")).isoformat(),
            "identifiers": [{"type": "member_no", "value": sender, "scope": f"wecom:{corp_id}"}],
            "interaction": {
                "kind": short_text(kind) or "message",
                "content": content[:_MAX_CONTENT] if content else None,
                "channel_ref": short_text(sender),
            },
        }
    )
    return ParsedPush(events=[event], delivery_ids=[key])


ADAPTER = WeComAdapter()
