"""Douyin Open Platform webhooks: signature, verify_webhook challenge, interaction mapping."""

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.channels.base import MalformedPush, SignatureInvalid, WebhookRequest
from scrm_sync.channels.douyin import DouyinAdapter

from tests.unit.channels.support import call_every_entry_point, webhook_ingest_for

CREDS = {"client_key": "awdevclientkey", "client_secret": "dev-douyin-secret"}
RECEIVED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ADAPTER = DouyinAdapter()


def sign(body: bytes, secret: str = CREDS["client_secret"]) -> str:
    return hashlib.sha1(secret.encode() + body).hexdigest()  # noqa: S324 (the platform's scheme)


def req(body: bytes, headers=None, method="POST", signed=True) -> WebhookRequest:
    h = {"content-type": "application/json"}
    if signed:
        h["x-douyin-signature"] = sign(body)
    h.update(headers or {})
    return WebhookRequest("douyin", method, h, {}, body, RECEIVED, "req-1")


def envelope(event: str, content, **extra) -> bytes:
    body = {
        "event": event,
        "from_user_id": "open-user-1",
        "to_user_id": "open-biz-1",
        "client_key": CREDS["client_key"],
        "content": content,
        "log_id": "log-123",
        **extra,
    }
    return json.dumps(body, ensure_ascii=False).encode()


def test_verify_webhook_answers_the_challenge_exactly():
    body = json.dumps({"event": "verify_webhook", "client_key": "", "content": {"challenge": 12345}}).encode()
    request = req(body)
    assert ADAPTER.is_handshake(request)
    reply = ADAPTER.handshake(request, CREDS)
    assert reply.status == 200 and reply.body == '{"challenge":12345}'
    assert json.loads(reply.body) == {"challenge": 12345}
    # a string challenge stays a string; an unsigned check is still answered
    body = json.dumps({"event": "verify_webhook", "content": json.dumps({"challenge": "abc"})}).encode()
    assert json.loads(ADAPTER.handshake(req(body, signed=False), CREDS).body) == {"challenge": "abc"}


def test_verify_webhook_with_a_forged_signature_is_refused():
    body = json.dumps({"event": "verify_webhook", "content": {"challenge": 1}}).encode()
    with pytest.raises(SignatureInvalid):
        ADAPTER.handshake(req(body, {"x-douyin-signature": "0" * 40}), CREDS)


def test_signature_is_checked_case_insensitively():
    body = envelope("new_follow_action", {"action_type": 1, "action_time": 1764000000})
    ADAPTER.verify(req(body, {"x-douyin-signature": sign(body).upper()}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, {"x-douyin-signature": sign(body, "other-secret")}), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body, signed=False), CREDS)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(req(body), {"client_key": "x"})  # no secret configured


def test_follow_becomes_an_interaction_with_the_open_id():
    body = envelope("new_follow_action", json.dumps({"action_type": 1, "action_time": 1764000000}))
    push = ADAPTER.parse(req(body, {"msg-id": "msg-abc"}), CREDS)
    (event,) = push.events
    assert event.event_id == "msg-abc" and push.delivery_ids == ["msg-abc"]
    assert event.source == "douyin" and event.type == "interaction"
    assert [i.model_dump() for i in event.identifiers] == [
        {"type": "douyin_openid", "value": "open-user-1", "scope": "awdevclientkey"}
    ]
    assert event.interaction.kind == "new_follow_action"
    assert event.occurred_at == datetime.fromtimestamp(1764000000, UTC)
    assert push.unmapped["content"] == {"action_type": 1, "action_time": 1764000000}


def test_im_text_and_direction():
    content = {
        "message_type": "text",
        "text": "请问有优惠吗",
        "create_time": 1764000100,
        "server_message_id": "m1",
    }
    (event,) = ADAPTER.parse(req(envelope("im_receive_msg", json.dumps(content))), CREDS).events
    assert event.event_id == "log-123"  # no Msg-Id header: log_id
    assert event.interaction.content == "请问有优惠吗" and event.interaction.channel_ref == "m1"
    assert event.identifiers[0].value == "open-user-1"
    # a message sent by the business account is about its recipient
    (sent,) = ADAPTER.parse(req(envelope("im_send_msg", content)), CREDS).events
    assert sent.identifiers[0].value == "open-biz-1"


def test_likes_carry_a_metric_and_keep_the_raw_content():
    body = envelope("new_video_digg", {"item_id": "v-9", "action_time": 1764000200})
    (event,) = ADAPTER.parse(req(body), CREDS).events
    assert event.interaction.metrics == {"likes": 1.0} and event.interaction.channel_ref == "v-9"
    body = envelope("live_like", {"room_id": "r-1", "like_num": 25, "timestamp": 1764000300000})
    push = ADAPTER.parse(req(body), CREDS)
    assert push.events[0].interaction.metrics == {"likes": 25.0}
    assert push.events[0].occurred_at == datetime.fromtimestamp(1764000300, UTC)
    assert push.unmapped["content"]["like_num"] == 25


def test_unknown_events_are_kept_without_events_and_missing_times_use_received_at():
    push = ADAPTER.parse(req(envelope("create_video", {"item_id": "x"})), CREDS)
    assert push.events == [] and push.unmapped["reason"] == "event not mapped"
    assert push.delivery_ids == ["log-123"]
    (event,) = ADAPTER.parse(req(envelope("new_follow_action", {"action_type": 1})), CREDS).events
    assert event.occurred_at == RECEIVED


@pytest.mark.parametrize(
    "body", [b"garbage", b"[1,2]", b"\xff\xfe", b'{"no_event": 1}', b'{"event": "x", "n": NaN}']
)
def test_garbage_from_an_authentic_sender_is_malformed(body):
    request = req(body)
    ADAPTER.verify(request, CREDS)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(request, CREDS)


def test_through_webhook_ingest():
    ingest, landing, queue = webhook_ingest_for(ADAPTER, CREDS)
    body = envelope("im_receive_msg", {"text": "hi", "create_time": 1764000000})
    reply = ingest.handle(req(body, {"msg-id": "m-1"}))
    assert (reply.status, reply.body) == (200, "{}")
    assert len(queue.messages) == 1 and json.loads(queue.messages[0])["event_id"] == "m-1"
    assert queue.documents[0]["channel"] == "douyin" and queue.documents[0]["body"]  # landed raw
    forged = ingest.handle(req(body, {"x-douyin-signature": sign(body, "forger")}))
    assert forged.status == 401 and len(queue.messages) == 1
    assert landing.keys("quarantine/webhooks/douyin/")
    check = json.dumps({"event": "verify_webhook", "content": {"challenge": 7}}).encode()
    assert ingest.handle(req(check)).body == '{"challenge":7}'


_header_names = st.sampled_from(["x-douyin-signature", "msg-id", "content-type", "x-other"])


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda e, c, u: envelope(e, c, from_user_id=u).replace(b"open-user-1", b""),
            st.sampled_from(
                ["verify_webhook", "new_follow_action", "im_receive_msg", "new_video_digg", "live_like"]
            ),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            st.one_of(st.none(), st.integers(), st.text(max_size=300)),
        ),
    ),
    headers=st.dictionaries(_header_names, st.text(max_size=60), max_size=4),
    sign_it=st.booleans(),
    method=st.sampled_from(["POST", "GET"]),
)
def test_fuzz_only_raises_channel_errors(body, headers, sign_it, method):
    if sign_it:
        headers = {**headers, "x-douyin-signature": sign(body)}
    request = WebhookRequest("douyin", method, headers, {}, body, RECEIVED, "r")
    call_every_entry_point(ADAPTER, request, CREDS)
