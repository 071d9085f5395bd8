"""WeCom adapter: official vectors end to end, 客户联系 events, hostile requests, the webhook flow."""

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.channels.base import MalformedPush, SignatureInvalid
from scrm_sync.channels.wechat_crypto import WeChatCrypto
from scrm_sync.channels.wecom import ADAPTER, WeComAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.followers import follower_field
from scrm_sync.services.webhooks import WebhookIngest

from .wechat_vectors import DEV_WECOM, NOW, A, B, C, envelope, request

VECTORS = pytest.mark.parametrize("vector", [A, B, C], ids=["A", "B", "C"])
EXTERNAL = "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"
DEV_CRYPTO = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], DEV_WECOM["corp_id"])


def signed_push(inner: str, at: datetime = NOW, nonce: str = "1372623149", crypto=DEV_CRYPTO):
    """A push as WeCom would send it now: encrypted inner XML, msg_signature in the query."""
    timestamp = str(int(at.timestamp()))
    encrypt, signature = crypto.encrypt_reply(inner, timestamp, nonce)
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
    return request("POST", query, envelope(encrypt, crypto.receive_id, "1000002"))


def contact_event(change: str, extra: str = "", created: int = 1403610513) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{DEV_WECOM['corp_id']}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{EXTERNAL}]]></ExternalUserID>{extra}</xml>"
    )


def parsed(inner: str, credentials=DEV_WECOM):
    push = signed_push(inner)
    ADAPTER.verify(push, credentials)
    return ADAPTER.parse(push, credentials)


# ------------------------------------------------------------------ official vectors


@VECTORS
def test_url_check_answers_the_exact_plaintext(vector):
    reply = ADAPTER.handshake(request("GET", vector["get"]), vector["credentials"])
    assert (reply.status, reply.body) == (200, vector["echo"])
    assert reply.content_type.startswith("text/plain") and "\n" not in reply.body
    assert ADAPTER.is_handshake(request("GET", vector["get"]))


@VECTORS
def test_url_check_survives_a_form_decoder_turning_plus_into_space(vector):
    query = dict(vector["get"], echostr=vector["get"]["echostr"].replace("+", " "))
    assert ADAPTER.handshake(request("GET", query), vector["credentials"]).body == vector["echo"]


def test_vector_c_with_another_nonce_fails():
    query = dict(C["get"], nonce="437374424")
    with pytest.raises(SignatureInvalid):
        ADAPTER.handshake(request("GET", query), C["credentials"])


@VECTORS
def test_old_vectors_are_stale_under_the_default_replay_window(vector):
    credentials = {k: v for k, v in vector["credentials"].items() if k != "replay_window_seconds"}
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.handshake(request("GET", vector["get"]), credentials)
    push = request("POST", vector["post"], envelope(vector["encrypt"], "", vector["agent_id"]))
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.verify(push, credentials)


@pytest.mark.parametrize(
    ("vector", "sender", "content", "msg_id", "created"),
    [
        (A, "mycreate", "hello", "4561255354251345929", 1409659813),
        (B, "ChenJiaShun", "你好", "1456453720", 1476422779),
        (C, "messense", "test", "4363689963896700987", 1411525903),
    ],
    ids=["A", "B", "C"],
)
def test_vector_pushes_are_accepted_and_decrypted(vector, sender, content, msg_id, created):
    credentials = vector["credentials"]
    push = request(
        "POST", vector["post"], envelope(vector["encrypt"], credentials["corp_id"], vector["agent_id"])
    )
    assert not ADAPTER.is_handshake(push)
    ADAPTER.verify(push, credentials)
    result = ADAPTER.parse(push, credentials)
    (event,) = result.events
    assert result.delivery_ids == [msg_id]
    assert event.event_id == msg_id and event.source == "wecom" and event.type == "interaction"
    assert event.occurred_at == datetime.fromtimestamp(created, UTC)
    assert event.interaction is not None
    assert (event.interaction.kind, event.interaction.content, event.interaction.channel_ref) == (
        "text",
        content,
        sender,
    )
    (identifier,) = event.identifiers
    assert identifier.model_dump() == {
        "type": "member_no",
        "value": sender,
        "scope": f"wecom:{credentials['corp_id']}",
    }
    assert ADAPTER.ack(push, result).status == 200 and ADAPTER.ack(push, result).body == ""


def test_vector_a_with_one_flipped_signature_char_is_rejected():
    query = dict(A["post"], msg_signature=A["post"]["msg_signature"][:-1] + "7")
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(request("POST", query, envelope(A["encrypt"])), A["credentials"])


# ------------------------------------------------------------------ 客户联系 events


@pytest.mark.parametrize("change", ["add_external_contact", "add_half_external_contact"])
def test_new_customer_is_a_profile_update_for_the_external_userid(change):
    extra = "<State><![CDATA[teststate]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>"
    result = parsed(contact_event(change, extra))
    (event,) = result.events
    assert event.type == "profile.updated" and event.source == "wecom"
    assert [i.model_dump() for i in event.identifiers] == [
        {"type": "wecom_external_userid", "value": EXTERNAL, "scope": DEV_WECOM["corp_id"]}
    ]
    assert event.attributes == {
        "wecom_follow_user": "zhangsan",
        follower_field("zhangsan"): "zhangsan",
        "wecom_state": "teststate",
    }
    assert event.occurred_at == datetime(2014, 6, 24, 11, 48, 33, tzinfo=UTC)
    assert event.event_id == f"sys:1403610513:{change}:{EXTERNAL}:zhangsan"
    assert result.delivery_ids == [event.event_id]
    CanonicalEvent.model_validate_json(event.to_message())  # survives the queue


def test_edit_is_a_profile_update_without_state():
    (event,) = parsed(contact_event("edit_external_contact")).events
    assert event.type == "profile.updated"
    assert event.attributes == {"wecom_follow_user": "zhangsan", follower_field("zhangsan"): "zhangsan"}


@pytest.mark.parametrize(
    ("change", "extra", "content"),
    [
        ("del_external_contact", "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>", "DELETE_BY_TRANSFER"),
        ("del_follow_user", "", None),
        ("transfer_fail", "<FailReason><![CDATA[customer_refused]]></FailReason>", "customer_refused"),
    ],
)
def test_lost_relations_are_interactions_without_profile_fields(change, extra, content):
    event, *unfollow = parsed(contact_event(change, extra)).events
    assert event.type == "interaction" and event.attributes == {}
    assert event.interaction is not None
    assert (event.interaction.kind, event.interaction.content, event.interaction.channel_ref) == (
        change,
        content,
        "zhangsan",
    )
    assert event.identifiers[0].value == EXTERNAL
    if change == "transfer_fail":  # the relation stays
        assert unfollow == []
    else:  # either side deleted the other: the member no longer follows the customer
        (ended,) = unfollow
        assert ended.type == "profile.updated" and ended.event_id == f"{event.event_id}:unfollow"
        assert ended.attributes == {follower_field("zhangsan"): None}
        assert ended.identifiers == event.identifiers and ended.occurred_at == event.occurred_at


def test_retries_share_the_dedupe_key_and_other_changes_do_not():
    first = parsed(contact_event("add_external_contact")).delivery_ids
    again = parsed(contact_event("add_external_contact")).delivery_ids
    other = parsed(contact_event("del_follow_user")).delivery_ids
    assert first == again and first != other


def test_tag_events_carry_no_customer_and_produce_no_event():
    inner = (
        "<xml><ToUserName><![CDATA[c]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[etXXXX]]></Id>"
        "<TagType><![CDATA[tag]]></TagType><ChangeType><![CDATA[create]]></ChangeType></xml>"
    )
    result = parsed(inner)
    assert result.events == [] and result.delivery_ids == ["sys:1403610513:create:::tag:etXXXX"]
    assert result.unmapped["Event"] == "change_external_tag"


def test_tag_pushes_of_one_second_are_told_apart_by_tag_id_and_type():
    """An admin creating a group with two tags fires three pushes with the same CreateTime and
    ChangeType; none of them is a duplicate of another, and a retry of one is."""

    def push(tag_id: str, tag_type: str) -> str:
        return (
            "<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName><CreateTime>1403610513</CreateTime>"
            f"<MsgType>event</MsgType><Event>change_external_tag</Event><Id>{tag_id}</Id>"
            f"<TagType>{tag_type}</TagType><ChangeType>create</ChangeType></xml>"
        )

    ids = [
        parsed(push(i, t)).delivery_ids[0]
        for i, t in (("etGROUP", "tag_group"), ("etA", "tag"), ("etB", "tag"))
    ]
    assert len(set(ids)) == 3
    assert parsed(push("etA", "tag")).delivery_ids[0] == ids[1]


def test_a_tag_event_naming_a_customer_is_tag_changed():
    inner = contact_event("update").replace("change_external_contact", "change_external_tag")
    inner = inner.replace("</xml>", "<Id><![CDATA[etTAG]]></Id></xml>")
    (event,) = parsed(inner).events
    assert event.type == "tag.changed" and event.attributes == {"wecom_tag_id": "etTAG"}


@pytest.mark.parametrize(
    "inner",
    [
        "<xml><FromUserName>sys</FromUserName><CreateTime>1403610513</CreateTime><MsgType>event</MsgType>"
        "<Event>change_external_chat</Event><ChatId>wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA</ChatId>"
        "<ChangeType>create</ChangeType></xml>",
        "<xml><FromUserName>sys</FromUserName><CreateTime>1403610513</CreateTime><MsgType>event</MsgType>"
        "<Event>change_contact</Event><ChangeType>create_user</ChangeType><UserID>lisi</UserID></xml>",
    ],
    ids=["group-chat", "address-book"],
)
def test_pushes_without_a_customer_are_acked_without_events(inner):
    result = parsed(inner)
    assert result.events == [] and result.delivery_ids


def test_member_app_events_are_member_interactions():
    inner = (
        "<xml><FromUserName>lisi</FromUserName><CreateTime>1403610513</CreateTime><MsgType>event</MsgType>"
        "<Event>enter_agent</Event><EventKey></EventKey><AgentID>1</AgentID></xml>"
    )
    (event,) = parsed(inner).events
    assert event.interaction is not None and event.interaction.kind == "enter_agent"
    assert event.identifiers[0].type == "member_no" and event.event_id == "lisi:1403610513:enter_agent"


def test_member_messages_can_be_ignored():
    inner = (
        "<xml><FromUserName>lisi</FromUserName><CreateTime>1403610513</CreateTime><MsgType>image</MsgType>"
        "<PicUrl>http://example.invalid/p.jpg</PicUrl><MsgId>42</MsgId></xml>"
    )
    assert parsed(inner).events[0].interaction.kind == "image"
    ignored = parsed(inner, dict(DEV_WECOM, member_messages="ignore"))
    assert ignored.events == [] and ignored.delivery_ids == ["42"]


# ------------------------------------------------------------------ hostile requests


def test_wrong_signature_is_rejected():
    push = signed_push(contact_event("add_external_contact"))
    forged = request("POST", dict(push.query, msg_signature="0" * 40), push.body)
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(forged, DEV_WECOM)
    with pytest.raises(SignatureInvalid):
        ADAPTER.parse(forged, DEV_WECOM)  # parse never trusts an unverified body either


def test_missing_signature_is_rejected():
    push = signed_push(contact_event("add_external_contact"))
    with pytest.raises(SignatureInvalid):
        ADAPTER.verify(request("POST", {"timestamp": push.query["timestamp"]}, push.body), DEV_WECOM)


def test_a_push_for_another_corp_is_rejected():
    other = WeChatCrypto(DEV_WECOM["token"], DEV_WECOM["encoding_aes_key"], "ww_other_corp")
    with pytest.raises(SignatureInvalid, match="receiveid"):
        ADAPTER.verify(signed_push(contact_event("add_external_contact"), crypto=other), DEV_WECOM)


def test_tampered_ciphertext_is_rejected_without_a_stray_exception():
    push = signed_push(contact_event("add_external_contact"))
    encrypt = push.body.decode().split("<![CDATA[")[2].split("]]>")[0]
    for position in (0, len(encrypt) // 2, len(encrypt) - 3):
        flipped = "A" if encrypt[position] != "A" else "B"
        tampered = encrypt[:position] + flipped + encrypt[position + 1 :]
        # unsigned tampering: the signature catches it
        with pytest.raises(SignatureInvalid):
            ADAPTER.verify(request("POST", push.query, envelope(tampered)), DEV_WECOM)
        # a correctly signed but corrupted ciphertext (as from a buggy sender): CBC garbles one
        # block, which may still decode (inside a text field) or not; never any other exception
        query = dict(
            push.query, msg_signature=DEV_CRYPTO.signature(push.query["timestamp"], "1372623149", tampered)
        )
        corrupted = request("POST", query, envelope(tampered))
        with contextlib.suppress(SignatureInvalid, MalformedPush):
            ADAPTER.verify(corrupted, DEV_WECOM)
            ADAPTER.parse(corrupted, DEV_WECOM)


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301), timedelta(days=-3)])
def test_stale_timestamps_are_rejected(skew):
    push = signed_push(contact_event("add_external_contact"), at=NOW + skew)
    with pytest.raises(SignatureInvalid, match="replay"):
        ADAPTER.verify(push, DEV_WECOM)
    ADAPTER.verify(push, dict(DEV_WECOM, replay_window_seconds=0))


def test_fresh_timestamps_within_the_window_pass():
    ADAPTER.verify(
        signed_push(contact_event("add_external_contact"), at=NOW - timedelta(seconds=200)), DEV_WECOM
    )


@pytest.mark.parametrize("body", [b"", b"garbage", b"<xml><Encrypt>", b"<xml></xml>", b'{"encrypt": "x"}'])
def test_garbage_envelopes_are_malformed(body):
    push = signed_push(contact_event("add_external_contact"))
    with pytest.raises(MalformedPush):
        ADAPTER.verify(request("POST", push.query, body), DEV_WECOM)


@pytest.mark.parametrize(
    "inner",
    [
        "not xml at all",
        "<xml><FromUserName>a</FromUserName><MsgType>text</MsgType></xml>",  # no CreateTime
        "<xml><FromUserName>a</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
        "<xml><FromUserName>a</FromUserName><CreateTime>1403610513</CreateTime></xml>",  # no MsgType
        "<xml><CreateTime>1403610513</CreateTime><MsgType>text</MsgType></xml>",  # no sender
    ],
)
def test_authentic_but_unreadable_messages_are_malformed(inner):
    push = signed_push(inner)
    ADAPTER.verify(push, DEV_WECOM)
    with pytest.raises(MalformedPush):
        ADAPTER.parse(push, DEV_WECOM)


def test_missing_credentials_cannot_authenticate():
    push = signed_push(contact_event("add_external_contact"))
    for missing in ("token", "encoding_aes_key", "corp_id"):
        with pytest.raises(SignatureInvalid, match="misconfigured"):
            ADAPTER.verify(push, {k: v for k, v in DEV_WECOM.items() if k != missing})


def test_url_check_without_echostr_is_malformed():
    with pytest.raises(MalformedPush):
        ADAPTER.handshake(
            request("GET", {k: v for k, v in A["get"].items() if k != "echostr"}), A["credentials"]
        )


# ------------------------------------------------------------------ through the webhook flow


@pytest.fixture
def flow():
    landing, queue = InMemoryLanding(), InMemoryPushStream()
    credentials = load_credentials({"wecom": DEV_WECOM})
    return WebhookIngest({"wecom": WeComAdapter()}, lambda: credentials, landing, queue), landing, queue


def test_valid_push_is_landed_enqueued_and_acked(flow):
    ingest, landing, queue = flow
    push = signed_push(contact_event("add_external_contact"))
    reply = ingest.handle(push)
    assert (reply.status, reply.body) == (200, "")
    assert queue.documents[0]["channel"] == "wecom" and not landing.keys("quarantine/")
    (message,) = queue.messages
    event = CanonicalEvent.model_validate_json(message)
    assert event.type == "profile.updated" and event.identifiers[0].value == EXTERNAL


def test_forged_push_is_401_and_quarantined(flow):
    ingest, landing, queue = flow
    push = signed_push(contact_event("add_external_contact"))
    reply = ingest.handle(request("POST", dict(push.query, msg_signature="f" * 40), push.body))
    assert reply.status == 401
    assert queue.messages == [] and landing.keys("quarantine/webhooks/wecom/") and not landing.keys("raw/")
    stored = json.loads(landing.objects[landing.keys("quarantine/")[0]][0])
    assert stored["note"].startswith("signature:")


def test_url_check_through_the_flow():
    credentials = load_credentials({"wecom": A["credentials"]})
    ingest = WebhookIngest({"wecom": ADAPTER}, lambda: credentials, InMemoryLanding(), InMemoryPushStream())
    reply = ingest.handle(request("GET", A["get"]))
    assert (reply.status, reply.body) == (200, A["echo"])
