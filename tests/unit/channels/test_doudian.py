"""抖店 (Doudian) message push: app-id + event-sign, tag-0 ping, order mapping and its buyer limitation."""

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.channels.base import MalformedPush, SignatureInvalid, WebhookRequest
from scrm_sync.channels.doudian import DoudianAdapter

from tests.unit.channels.support import call_every_entry_point, webhook_ingest_for

CREDS = {"app_key": "7000000000000000001", "app_secret": "dev-doudian-secret"}
RECEIVED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ADAPTER = DoudianAdapter()
SUCCESS = '{"code":0,"msg":"success"}'
MSG_ID = "04288000000009348874::100:1764000000:6837374400000009128"


def sign(body: bytes, key: str = CREDS["app_key"], secret: str = CREDS["app_secret"]) -> str:
    return hashlib.md5(key.encode() + body + secret.encode()).hexdigest()  # noqa: S324 (the platform's scheme)


def req(body: bytes, headers=None, method="POST") -> WebhookRequest:
    h = {"app-id": CREDS["app_key"], "event-sign": sign(body), "content-type": "application/json"}
    h.update(headers or {})
    return WebhookRequest("doudian", method, h, {}, body, RECEIVED, "req-1")


def created(data_as_string: bool = True, id_key: str = "msg_id", **data_extra) -> bytes:
    data = {
        "p_id": 4781234567890123456,
        "s_ids": [4781234567890123457],
        "shop_id": 12345,
        "order_status": 1,
        "order_type": 0,
        "biz": 2,
        "create_time": 1764000000,
        **data_extra,
    }
    message = {"tag": "100", id_key: MSG_ID, "data": json.dumps(data) if data_as_string else data}
    return json.dumps([message]).encode()


def test_tag_0_ping_is_a_verified_handshake():
    body = json.dumps([{"tag": "0", "msg_id": "ping-1", "data": "{}"}]).encode()
    request = req(body)
    assert ADAPTER.is_handshake(request)
    reply = ADAPTER.handshake(request, CREDS)
    assert (reply.status, reply.body) == (200, SUCCESS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.handshake(req(body, {"event-sign": "f" * 32}), CREDS)
    assert not ADAPTER.is_handshake(req(created()))


def test_app_id_and_signature_are_checked():
    body = created()
    ADAPTER.verify(req(body, {"event-sign": sign(body).upper()}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"app-id": "7000000000000000002"}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"app-id": ""}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"event-sign": sign(body, secret="forged")}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"event-sign": ""}), CREDS)


def test_hmac_sha256_sign_method_variant():
    body = created()
    signed = CREDS["app_key"].encode() + body + CREDS["app_secret"].encode()
    digest = hmac.new(CREDS["app_secret"].encode(), signed, hashlib.sha256).hexdigest()
    ADAPTER.verify(req(body, {"event-sign": digest, "sign-method": "hmac-sha256"}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"sign-method": "hmac-sha256"}), CREDS)  # md5 sign under hmac method


@pytest.mark.parametrize("as_string", [True, False])
@pytest.mark.parametrize("id_key", ["msg_id", "msgId"])
def test_order_messages_without_a_buyer_are_kept_unmapped(as_string, id_key):
    push = ADAPTER.parse(req(created(as_string, id_key)), CREDS)
    assert push.events == [] and push.delivery_ids == [MSG_ID]
    (kept,) = push.unmapped["messages"]
    assert kept["order_id"] == "4781234567890123456" and kept["shop_id"] == "12345"
    assert kept["status"] == "created" and kept["data"]["biz"] == 2
    assert "no buyer identifier" in kept["reason"]


def test_order_with_a_plain_buyer_phone_becomes_an_event():
    body = created(pay_amount=12990, buyer_phone="13800138000")
    (event,) = ADAPTER.parse(req(body), CREDS).events
    assert event.type == "order.created" and event.event_id == MSG_ID and event.source == "doudian"
    assert [i.model_dump() for i in event.identifiers] == [
        {"type": "phone", "value": "13800138000", "scope": None}
    ]
    assert event.order.order_id == "4781234567890123456" and event.order.status == "created"
    assert event.order.total == Decimal("129.90") and event.order.currency == "CNY"
    assert event.order.created_at == datetime.fromtimestamp(1764000000, UTC)
    assert event.attributes == {"shop_id": "12345"}


def test_paid_canceled_and_refund_tags_are_updates():
    messages = [
        {
            "tag": "101",
            "msgId": "m-101",
            "data": {"p_id": 1, "pay_time": 1764000100, "post_tel": "13800138000"},
        },
        {
            "tag": 106,
            "msgId": "m-106",
            "data": {"p_id": 1, "cancel_time": 1764000200, "post_tel": "13800138000"},
        },
        {"tag": "200", "msgId": "m-200", "data": {"p_id": 1, "aftersale_id": 9, "post_tel": "13800138000"}},
        {"tag": "400", "msgId": "m-400", "data": {"product_id": 5}},
    ]
    push = ADAPTER.parse(req(json.dumps(messages).encode()), CREDS)
    assert [(e.type, e.order.status) for e in push.events] == [
        ("order.updated", "paid"),
        ("order.updated", "canceled"),
        ("order.updated", "refund_created"),
    ]
    assert push.events[0].occurred_at == datetime.fromtimestamp(1764000100, UTC)
    assert push.delivery_ids == ["m-101", "m-106", "m-200", "m-400"]
    assert [m["msg_id"] for m in push.unmapped["messages"]] == ["m-400"]


@pytest.mark.parametrize("phone", ["138****8000", "#A1b2C3d4#", "$encrypted$"])
def test_masked_or_encrypted_phones_never_become_identifiers(phone):
    push = ADAPTER.parse(req(created(buyer_phone=phone, post_tel=phone)), CREDS)
    assert push.events == [] and push.unmapped["messages"]


def test_occurred_at_falls_back_to_the_msg_id_time():
    body = json.dumps(
        [{"tag": "103", "msg_id": MSG_ID, "data": {"p_id": 1, "mobile": "13800138000"}}]
    ).encode()
    (event,) = ADAPTER.parse(req(body), CREDS).events
    assert event.occurred_at == datetime.fromtimestamp(1764000000, UTC) and event.order.status == "success"


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"\xff\xfe",
        b"[1, 2]",
        b'[{"tag": "100", "data": "not json"}]',
        b'[{"tag": "100", "data": 5}]',
    ],
)
def test_garbage_from_an_authentic_sender_is_malformed(body):
    request = req(body)
    ADAPTER.verify(request, CREDS)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(request, CREDS)


def test_through_webhook_ingest():
    ingest, landing, queue = webhook_ingest_for(ADAPTER, CREDS)
    body = created(buyer_phone="13800138000")
    reply = ingest.handle(req(body))
    assert (reply.status, reply.body) == (200, SUCCESS)
    assert len(queue.messages) == 1 and json.loads(queue.messages[0])["event_id"] == MSG_ID
    assert queue.documents[0]["channel"] == "doudian" and queue.documents[0]["body"]  # landed raw
    # no buyer: landed and acked, nothing enqueued
    assert ingest.handle(req(created())).body == SUCCESS and len(queue.messages) == 1
    forged = ingest.handle(req(body, {"event-sign": sign(body, secret="forger")}))
    assert forged.status == 401 and len(queue.messages) == 1
    assert landing.keys("quarantine/webhooks/doudian/")
    ping = json.dumps([{"tag": "0", "msgId": "p"}]).encode()
    assert ingest.handle(req(ping)).body == SUCCESS


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "tag": st.one_of(st.sampled_from(["0", "100", "101", "106", "206", "400", 100]), _json_values),
            "msg_id": _json_values,
            "msgId": st.text(max_size=300),
            "data": st.one_of(
                _json_values,
                st.builds(
                    json.dumps,
                    st.dictionaries(
                        st.sampled_from(["p_id", "pay_amount", "post_tel", "create_time", "shop_id"]),
                        _json_values,
                    ),
                ),
            ),
        },
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=300), _messages.map(lambda m: json.dumps(m).encode())),
    headers=st.dictionaries(
        st.sampled_from(["app-id", "event-sign", "sign-method", "x-other"]), st.text(max_size=60)
    ),
    sign_it=st.booleans(),
    method=st.sampled_from(["POST", "GET"]),
)
def test_fuzz_only_raises_channel_errors(body, headers, sign_it, method):
    if sign_it:
        headers = {**headers, "app-id": CREDS["app_key"], "event-sign": sign(body)}
    request = WebhookRequest("doudian", method, headers, {}, body, RECEIVED, "r")
    call_every_entry_point(ADAPTER, request, CREDS)
