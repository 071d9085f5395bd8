"""WeChat Official Account adapter: plain and safe-mode vectors, events, hostile requests, the flow."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.channels.base import MalformedPush, SignatureInvalid
from scrm_sync.channels.wechat_crypto import WeChatCrypto, sha1_signature
from scrm_sync.channels.wechat_mp import ADAPTER, WeChatMpAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.services.webhooks import WebhookIngest

from .wechat_vectors import DEV_MP, NOW, PLAIN, D, envelope, request

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
DEV_CRYPTO = WeChatCrypto(DEV_MP["token"], DEV_MP["encoding_aes_key"], DEV_MP["app_id"])
PLAIN_CREDENTIALS = {"app_id": "wx_plain_app", "token": PLAIN["token"], "replay_window_seconds": 0}


def mp_request(method, query, body=b""):
    return request(method, query, body, channel="wechat_mp")


def plain_query(token: str = DEV_MP["token"], at: datetime = NOW, nonce: str = "n0nce") -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        "signature": sha1_signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": OPENID,
    }


def safe_push(inner: str, at: datetime = NOW, nonce: str = "n0nce", crypto=DEV_CRYPTO):
    query = plain_query(crypto.token, at, nonce)
    encrypt, msg_signature = crypto.encrypt_reply(inner, query["timestamp"], nonce)
    query.update(encrypt_type="aes", msg_signature=msg_signature)
    return mp_request("POST", query, envelope(encrypt, "gh_10f6c3c3ac5a"))


def event_xml(event: str, extra: str = "", created: int = 1409735669) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


def parsed(inner: str):
    push = safe_push(inner)
    ADAPTER.verify(push, DEV_MP)
    (event,) = ADAPTER.parse(push, DEV_MP).events
    return event


# ------------------------------------------------------------------ published vectors


def test_url_check_echoes_echostr_for_the_plain_signature_vector():
    query = {k: PLAIN[k] for k in ("signature", "timestamp", "nonce")} | {"echostr": "5927782489442352469"}
    reply = ADAPTER.handshake(mp_request("GET", query), PLAIN_CREDENTIALS)
    assert (reply.status, reply.body) == (200, "5927782489442352469")
    assert ADAPTER.is_handshake(mp_request("GET", query))


def test_url_check_with_the_failing_variant_is_rejected():
    query = {
        "signature": PLAIN["bad_signature"],
        "timestamp": PLAIN["timestamp"],
        "nonce": PLAIN["nonce"],
        "echostr": "x",
    }
    with pytest.raises(SignatureInvalid):
        ADAPTER.handshake(mp_request("GET", query), PLAIN_CREDENTIALS)


def test_plain_push_signed_like_the_vector_is_accepted():
    query = {k: PLAIN[k] for k in ("signature", "timestamp", "nonce")}
    body = (
        f"<xml><ToUserName>gh_x</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>1410685589</CreateTime>"
        "<MsgType>text</MsgType><Content>你好</Content><MsgId>1234567890123456</MsgId></xml>"
    ).encode()
    push = mp_request("POST", query, body)
    ADAPTER.verify(push, PLAIN_CREDENTIALS)
    (event,) = ADAPTER.parse(push, PLAIN_CREDENTIALS).events
    assert event.interaction is not None and event.interaction.content == "你好"
    assert event.identifiers[0].model_dump() == {
        "type": "wechat_openid",
        "value": OPENID,
        "scope": "wx_plain_app",
    }
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(
            mp_request("POST", dict(query, signature=PLAIN["bad_signature"]), body), PLAIN_CREDENTIALS
        )


def test_vector_d_safe_mode_decrypts_to_the_documented_message():
    push = mp_request("POST", D["post"], envelope(D["encrypt"], "gh_10f6c3c3ac5a"))
    assert not ADAPTER.is_handshake(push)
    ADAPTER.verify(push, D["credentials"])
    result = ADAPTER.parse(push, D["credentials"])
    (event,) = result.events
    assert event.event_id == "6054768590064713728" and result.delivery_ids == ["6054768590064713728"]
    assert event.source == "wechat_mp" and event.type == "interaction"
    assert event.identifiers[0].model_dump() == {
        "type": "wechat_openid",
        "value": OPENID,
        "scope": D["credentials"]["app_id"],
    }
    assert event.interaction is not None
    assert (event.interaction.kind, event.interaction.content) == ("text", "abcdteT")
    assert ADAPTER.ack(push, result).body == "success"


def test_vector_d_with_another_app_id_fails_the_receiveid_check():
    push = mp_request("POST", D["post"], envelope(D["encrypt"]))
    with pytest.raises(SignatureInvalid, match="receiveid"):
        ADAPTER.verify(push, dict(D["credentials"], app_id="wx_not_this_app"))


def test_vector_d_is_stale_under_the_default_window():
    credentials = {k: v for k, v in D["credentials"].items() if k != "replay_window_seconds"}
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.verify(mp_request("POST", D["post"], envelope(D["encrypt"])), credentials)


# ------------------------------------------------------------------ events


def test_subscribe_via_qr_sets_subscribed_and_keeps_the_scene():
    event = parsed(
        event_xml("subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket>TICKET</Ticket>")
    )
    assert event.attributes == {"wechat_mp_subscribed": True}
    assert event.interaction is not None
    assert (event.interaction.kind, event.interaction.channel_ref) == ("subscribe", "qrscene_123123")
    assert event.event_id == f"{OPENID}:1409735669:subscribe"
    assert event.occurred_at == datetime.fromtimestamp(1409735669, UTC)


def test_unsubscribe_clears_subscribed():
    event = parsed(event_xml("unsubscribe", "<EventKey><![CDATA[]]></EventKey>"))
    assert event.attributes == {"wechat_mp_subscribed": False}
    assert event.interaction is not None and event.interaction.channel_ref is None


@pytest.mark.parametrize(
    ("name", "extra", "kind", "ref", "content"),
    [
        ("SCAN", "<EventKey><![CDATA[123123]]></EventKey><Ticket>T</Ticket>", "scan", "123123", None),
        ("CLICK", "<EventKey><![CDATA[MENU_KEY]]></EventKey>", "click", "MENU_KEY", None),
        (
            "VIEW",
            "<EventKey><![CDATA[https://example.invalid/p]]></EventKey>",
            "view",
            "https://example.invalid/p",
            None,
        ),
        (
            "TEMPLATESENDJOBFINISH",
            "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
            "templatesendjobfinish",
            None,
            "success",
        ),
    ],
)
def test_events_are_interactions(name, extra, kind, ref, content):
    event = parsed(event_xml(name, extra))
    assert event.type == "interaction" and event.attributes == {}
    assert event.interaction is not None
    assert (event.interaction.kind, event.interaction.channel_ref, event.interaction.content) == (
        kind,
        ref,
        content,
    )


def test_location_event_carries_metrics():
    event = parsed(
        event_xml(
            "LOCATION",
            "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>"
            "<Precision>119.385040</Precision>",
        )
    )
    assert event.interaction is not None
    assert event.interaction.metrics == {
        "latitude": 23.137466,
        "longitude": 113.352425,
        "precision": 119.38504,
    }


def test_location_and_link_messages():
    base = f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1409735669</CreateTime>"
    location = parsed(
        base + "<MsgType>location</MsgType><Location_X>23.1</Location_X><Location_Y>nan</Location_Y>"
        "<Scale>20</Scale><Label>位置信息</Label><MsgId>11</MsgId></xml>"
    )
    assert location.interaction is not None
    assert location.interaction.metrics == {"latitude": 23.1, "scale": 20.0}  # NaN is dropped
    assert location.interaction.content == "位置信息" and location.event_id == "11"
    link = parsed(base + "<MsgType>link</MsgType><Url>https://example.invalid/a</Url><MsgId>12</MsgId></xml>")
    assert link.interaction is not None and link.interaction.content == "https://example.invalid/a"


def test_message_without_msgid_falls_back_to_sender_and_time():
    event = parsed(
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1409735669</CreateTime>"
        "<MsgType>image</MsgType><PicUrl>http://example.invalid/p.jpg</PicUrl></xml>"
    )
    assert event.event_id == f"{OPENID}:1409735669"


# ------------------------------------------------------------------ hostile requests


def test_plain_mode_is_refused_when_the_channel_has_an_aes_key():
    body = event_xml("subscribe").encode()
    with pytest.raises(SignatureInvalid, match="plain-mode"):
        ADAPTER.verify(mp_request("POST", plain_query(), body), DEV_MP)
    ADAPTER.verify(mp_request("POST", plain_query(), body), dict(DEV_MP, require_encryption=False))


def test_wrong_msg_signature_is_rejected():
    push = safe_push(event_xml("subscribe"))
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(mp_request("POST", dict(push.query, msg_signature="0" * 40), push.body), DEV_MP)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(
            mp_request("POST", {k: v for k, v in push.query.items() if k != "msg_signature"}, push.body),
            DEV_MP,
        )


def test_compatible_mode_plaintext_next_to_encrypt_is_ignored():
    push = safe_push(event_xml("subscribe"))
    body = push.body.replace(
        b"</xml>", b"<FromUserName>attacker</FromUserName><Event>unsubscribe</Event></xml>"
    )
    ADAPTER.verify(mp_request("POST", push.query, body), DEV_MP)
    (event,) = ADAPTER.parse(mp_request("POST", push.query, body), DEV_MP).events
    assert event.identifiers[0].value == OPENID and event.attributes == {"wechat_mp_subscribed": True}


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_stale_timestamps_are_rejected(skew):
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.verify(safe_push(event_xml("subscribe"), at=NOW + skew), DEV_MP)
    plain = dict(DEV_MP, require_encryption=False)
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.verify(mp_request("POST", plain_query(at=NOW + skew), b"<xml/>"), plain)
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.handshake(mp_request("GET", plain_query(at=NOW + skew) | {"echostr": "1"}), DEV_MP)


@pytest.mark.parametrize("body", [b"", b"garbage", b"<xml>", b"<root/>"])
def test_garbage_xml_is_malformed(body):
    plain = dict(DEV_MP, require_encryption=False)
    push = mp_request("POST", plain_query(), body)
    ADAPTER.verify(push, plain)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(push, plain)
    safe = safe_push(event_xml("subscribe"))
    with pytest.raises(MalformedPush):
        ADAPTER.verify(mp_request("POST", safe.query, body), DEV_MP)


@pytest.mark.parametrize(
    "inner",
    [
        "<xml><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
        f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType></xml>",
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime></xml>",
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>",
        f"<xml><FromUserName>{'x' * 600}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType></xml>",
    ],
    ids=["no-sender", "no-time", "no-type", "no-event-name", "oversized-openid"],
)
def test_authentic_but_unusable_messages_are_malformed(inner):
    push = safe_push(inner)
    ADAPTER.verify(push, DEV_MP)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(push, DEV_MP)


# ------------------------------------------------------------------ through the webhook flow


@pytest.fixture
def flow():
    landing, queue = InMemoryLanding(), InMemoryPushStream()
    credentials = load_credentials({"wechat_mp": DEV_MP})
    return (
        WebhookIngest({"wechat_mp": WeChatMpAdapter()}, lambda: credentials, landing, queue),
        landing,
        queue,
    )


def test_valid_push_is_landed_enqueued_and_acked(flow):
    ingest, landing, queue = flow
    reply = ingest.handle(safe_push(event_xml("subscribe")))
    assert (reply.status, reply.body) == (200, "success")
    assert queue.documents[0]["channel"] == "wechat_mp" and not landing.keys("quarantine/")
    (message,) = queue.messages
    event = CanonicalEvent.model_validate_json(message)
    assert event.attributes == {"wechat_mp_subscribed": True} and event.identifiers[0].value == OPENID


def test_forged_push_is_401_and_quarantined(flow):
    ingest, landing, queue = flow
    push = safe_push(event_xml("subscribe"))
    reply = ingest.handle(mp_request("POST", dict(push.query, msg_signature="f" * 40), push.body))
    assert reply.status == 401 and queue.messages == []
    (key,) = landing.keys("quarantine/webhooks/wechat_mp/")
    assert json.loads(landing.objects[key][0])["note"].startswith("signature:")


def test_url_check_through_the_flow(flow):
    ingest, _, _ = flow
    reply = ingest.handle(mp_request("GET", plain_query() | {"echostr": "echo-me"}))
    assert (reply.status, reply.body) == (200, "echo-me")
