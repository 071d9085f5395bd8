"""有赞云 (Youzan) push: event-sign, client-id, test pushes, URL-encoded msg → order events."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.channels.base import MalformedPush, SignatureInvalid, WebhookRequest
from scrm_sync.channels.youzan import SHANGHAI, YouzanAdapter

from tests.unit.channels.support import call_every_entry_point, webhook_ingest_for

CREDS = {"client_id": "devclientid0001", "client_secret": "dev-youzan-secret"}
RECEIVED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ADAPTER = YouzanAdapter()
SUCCESS = '{"code":0,"msg":"success"}'


def sign(body: bytes, client_id: str = CREDS["client_id"], secret: str = CREDS["client_secret"]) -> str:
    return hashlib.md5(client_id.encode() + body + secret.encode()).hexdigest()  # noqa: S324 (the platform's scheme)


def req(body: bytes, headers=None, method="POST") -> WebhookRequest:
    h = {"event-sign": sign(body), "client-id": CREDS["client_id"], "event-type": "trade_TradePaid"}
    h.update(headers or {})
    return WebhookRequest("youzan", method, h, {}, body, RECEIVED, "req-1")


def full_order_info(phone="13800138000", yz_open_id="yzOpen-abc") -> dict:
    return {
        "full_order_info": {
            "order_info": {
                "tid": "E20261124100000012345",
                "status": "WAIT_SELLER_SEND_GOODS",
                "created": "2026-11-24 10:00:00",
                "pay_time": "2026-11-24 10:01:30",
                "update_time": "2026-11-24 10:01:31",
            },
            "buyer_info": {
                "buyer_phone": phone,
                "fans_id": 9876,
                "outer_user_id": "",
                "yz_open_id": yz_open_id,
            },
            "orders": [
                {
                    "oid": "1",
                    "title": "保湿面霜 50ml",
                    "num": 2,
                    "price": "99.00",
                    "payment": "188.00",
                    "sku_id": 31,
                },
                {"oid": "2", "title": "赠品小样", "num": 1, "price": "0.00", "payment": "0.00", "sku_id": 0},
            ],
            "pay_info": {"payment": "188.00", "total_fee": "198.00", "post_fee": "0.00"},
        }
    }


def push_body(type_="trade_TradePaid", msg=None, encode=True, test=False, **extra) -> bytes:
    msg = full_order_info() if msg is None else msg
    body = {
        "client_id": CREDS["client_id"],
        "id": "E20261124100000012345",
        "kdt_id": 44001234,
        "kdt_name": "开发测试店",
        "mode": 1,
        "msg": quote(json.dumps(msg, ensure_ascii=False)) if encode else msg,
        "msg_id": "4b1f3a7e-1b2c-4d5e-8f90-aabbccddeeff",
        "sendCount": 0,
        "status": "WAIT_SELLER_SEND_GOODS",
        "test": test,
        "type": type_,
        "version": 1764000090,
        **extra,
    }
    return json.dumps(body, ensure_ascii=False).encode()


def test_paid_push_becomes_an_order_update():
    push = ADAPTER.parse(req(push_body()), CREDS)
    (event,) = push.events
    assert event.event_id == "4b1f3a7e-1b2c-4d5e-8f90-aabbccddeeff" and push.delivery_ids == [event.event_id]
    assert event.source == "youzan" and event.type == "order.updated"
    assert [i.model_dump(exclude_none=True) for i in event.identifiers] == [
        {"type": "phone", "value": "13800138000"},
        {"type": "youzan_open_id", "value": "yzOpen-abc", "scope": "44001234"},
    ]
    order = event.order
    assert order.order_id == "E20261124100000012345" and order.status == "paid"
    assert order.total == Decimal("188.00") and order.currency == "CNY"
    assert order.created_at == datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    assert order.created_at.astimezone(UTC) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert event.occurred_at == datetime(2026, 11, 24, 10, 1, 30, tzinfo=SHANGHAI)
    first, second = order.lines
    assert (first.sku, first.name, first.quantity, first.price, first.amount) == (
        "31",
        "保湿面霜 50ml",
        Decimal(2),
        Decimal("99.00"),
        Decimal("188.00"),
    )
    assert second.sku is None
    assert event.attributes == {"shop_id": "44001234", "youzan_status": "WAIT_SELLER_SEND_GOODS"}


@pytest.mark.parametrize("encode", [True, False])
def test_create_and_msg_as_plain_json_or_object(encode):
    (event,) = ADAPTER.parse(req(push_body("trade_TradeCreate", encode=encode)), CREDS).events
    assert event.type == "order.created" and event.order.status == "created"
    assert event.occurred_at == datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    body = json.loads(push_body())
    body["msg"] = json.dumps(full_order_info())  # plain (not URL-encoded) JSON string
    (plain,) = ADAPTER.parse(req(json.dumps(body).encode()), CREDS).events
    assert plain.order.order_id == "E20261124100000012345"


def test_masked_phone_never_becomes_an_identifier():
    (event,) = ADAPTER.parse(req(push_body(msg=full_order_info(phone="138****8000"))), CREDS).events
    assert [i.type for i in event.identifiers] == ["youzan_open_id"]
    push = ADAPTER.parse(req(push_body(msg=full_order_info(phone="138****8000", yz_open_id=""))), CREDS)
    assert push.events == [] and push.unmapped["reason"] == "no buyer identifier"
    assert push.unmapped["msg"]["full_order_info"]["order_info"]["tid"] == "E20261124100000012345"


def test_refund_without_buyer_info_and_non_trade_types_are_kept_unmapped():
    refund = {"tid": "E20261124100000012345", "oid": "1", "refund_id": "r-1", "refunded_fee": "188.00"}
    push = ADAPTER.parse(req(push_body("trade_refund_RefundSuccess", msg=refund)), CREDS)
    assert push.events == [] and push.unmapped["reason"] == "no buyer identifier"
    push = ADAPTER.parse(req(push_body("ITEM_STATE", msg={"item_id": 1})), CREDS)
    assert push.events == [] and push.unmapped["reason"] == "type not mapped"


def test_other_trade_types_get_status_names():
    statuses = {
        "trade_TradeSellerShip": "shipped",
        "trade_TradeSuccess": "success",
        "trade_TradeClose": "closed",
        "trade_refund_RefundSuccess": "refund_success",
        "trade_TradeBuyerAddressChanged": "buyer_address_changed",
    }
    for type_, status in statuses.items():
        (event,) = ADAPTER.parse(req(push_body(type_)), CREDS).events
        assert (event.type, event.order.status) == ("order.updated", status)


def test_test_push_is_a_handshake():
    body = push_body(test=True, msg={})
    request = req(body)
    assert ADAPTER.is_handshake(request) and not ADAPTER.is_handshake(req(push_body()))
    assert (ADAPTER.handshake(request, CREDS).status, ADAPTER.handshake(request, CREDS).body) == (
        200,
        SUCCESS,
    )
    with pytest.raises(SignatureInvalid):
        ADAPTER.handshake(req(body, {"event-sign": "0" * 32}), CREDS)
    assert ADAPTER.parse(request, CREDS).events == []


def test_signature_and_client_id_are_checked():
    body = push_body()
    ADAPTER.verify(req(body, {"event-sign": sign(body).upper()}), CREDS)
    ADAPTER.verify(
        WebhookRequest("youzan", "POST", {"event-sign": sign(body)}, {}, body, RECEIVED, "r"), CREDS
    )
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"client-id": "someone-else"}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"event-sign": sign(body, secret="forged")}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"event-sign": ""}), CREDS)


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"\xff\xfe",
        b"[]",
        b'{"type": "trade_TradePaid", "msg": "%7Bnot json"}',
        b'{"type": "trade_TradePaid", "msg": 5}',
    ],
)
def test_garbage_from_an_authentic_sender_is_malformed(body):
    request = req(body)
    ADAPTER.verify(request, CREDS)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(request, CREDS)


def test_through_webhook_ingest():
    ingest, landing, queue = webhook_ingest_for(ADAPTER, CREDS)
    body = push_body()
    reply = ingest.handle(req(body))
    assert (reply.status, reply.body) == (200, SUCCESS)
    assert len(queue.messages) == 1
    assert json.loads(queue.messages[0])["order"]["order_id"] == "E20261124100000012345"
    assert queue.documents[0]["channel"] == "youzan" and queue.documents[0]["body"]  # landed raw
    forged = ingest.handle(req(body, {"event-sign": sign(body, secret="forger")}))
    assert forged.status == 401 and len(queue.messages) == 1
    assert landing.keys("quarantine/webhooks/youzan/")
    assert ingest.handle(req(push_body(test=True))).body == SUCCESS and len(queue.messages) == 1


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_msgs = st.one_of(
    st.just(full_order_info()),
    st.fixed_dictionaries(
        {
            "full_order_info": st.fixed_dictionaries(
                {},
                optional={
                    "order_info": st.dictionaries(
                        st.sampled_from(["tid", "created", "pay_time", "status"]), _json_values
                    ),
                    "buyer_info": st.dictionaries(
                        st.sampled_from(["buyer_phone", "yz_open_id"]), _json_values
                    ),
                    "orders": _json_values,
                    "pay_info": st.dictionaries(st.sampled_from(["payment", "total_fee"]), _json_values),
                },
            )
        }
    ),
    _json_values,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda t, m, enc, test, kdt: push_body(t, msg=m, encode=enc, test=test, kdt_id=kdt),
            st.sampled_from(["trade_TradeCreate", "trade_TradePaid", "trade_X", "OTHER"])
            | st.text(max_size=10),
            _msgs,
            st.booleans(),
            _json_values,
            _json_values,
        ),
    ),
    headers=st.dictionaries(
        st.sampled_from(["event-sign", "client-id", "event-type", "msg-id"]), st.text(max_size=60)
    ),
    sign_it=st.booleans(),
    method=st.sampled_from(["POST", "GET"]),
)
def test_fuzz_only_raises_channel_errors(body, headers, sign_it, method):
    if sign_it:
        headers = {**headers, "client-id": CREDS["client_id"], "event-sign": sign(body)}
    request = WebhookRequest("youzan", method, headers, {}, body, RECEIVED, "r")
    call_every_entry_point(ADAPTER, request, CREDS)
