"""Fuzz: whatever arrives, the WeChat / WeCom adapters raise SignatureInvalid or MalformedPush only."""

import base64
import contextlib
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sync.channels.base import MalformedPush, SignatureInvalid
from scrm_sync.channels.wechat_crypto import WeChatCrypto
from scrm_sync.channels.wechat_mp import ADAPTER as MP
from scrm_sync.channels.wecom import ADAPTER as WECOM

from .wechat_vectors import DEV_MP, DEV_WECOM, NOW, A, D, envelope, request

EXPECTED = (SignatureInvalid, MalformedPush)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

query_keys = st.sampled_from(
    ["msg_signature", "signature", "timestamp", "nonce", "echostr", "encrypt_type", "openid", "x"]
)
query_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["aes", "AES", "1409659813", str(int(NOW.timestamp())), "", "=", "+/=="]),
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
)
queries = st.dictionaries(query_keys, query_values, max_size=6)
channels = st.sampled_from(
    [
        (WECOM, DEV_WECOM),
        (WECOM, A["credentials"]),
        (MP, DEV_MP),
        (MP, dict(DEV_MP, require_encryption=False)),
        (MP, D["credentials"]),
    ]
)


def mutate(data: bytes, positions: list[int], replacement: bytes) -> bytes:
    out = bytearray(data)
    for p in positions:
        if out:
            out[p % len(out)] = replacement[p % len(replacement)] if replacement else 0
    return bytes(out)


def run_all(adapter, credentials, req) -> None:
    for step in (adapter.handshake, adapter.verify, adapter.parse):
        with contextlib.suppress(*EXPECTED):
            step(req, credentials)
    adapter.is_handshake(req)


@FUZZ
@given(channels, st.sampled_from(["GET", "POST"]), queries, st.binary(max_size=400))
def test_random_requests(channel, method, query, body):
    adapter, credentials = channel
    run_all(adapter, credentials, request(method, query, body, channel=adapter.name))


@FUZZ
@given(channels, queries, st.text(max_size=300))
def test_random_text_inside_an_envelope(channel, query, text):
    adapter, credentials = channel
    run_all(adapter, credentials, request("POST", query, envelope(text), channel=adapter.name))


@FUZZ
@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=5),
    st.binary(min_size=1, max_size=3),
)
def test_mutated_official_vector_a(positions, replacement):
    body = envelope(A["encrypt"], A["credentials"]["corp_id"], A["agent_id"])
    run_all(WECOM, A["credentials"], request("POST", A["post"], mutate(body, positions, replacement)))
    run_all(
        WECOM,
        A["credentials"],
        request(
            "GET",
            dict(
                A["get"], echostr=mutate(A["get"]["echostr"].encode(), positions, b"A/+=").decode("latin-1")
            ),
        ),
    )


@FUZZ
@given(st.sampled_from(["wecom", "wechat_mp"]), st.binary(min_size=0, max_size=300))
def test_correctly_signed_random_ciphertext(channel, ciphertext):
    """A sender holding the token but not producing valid ciphertext: decrypt failures stay typed."""
    credentials = DEV_WECOM if channel == "wecom" else DEV_MP
    crypto = WeChatCrypto(credentials["token"], credentials["encoding_aes_key"], "unused")
    encrypt = base64.b64encode(ciphertext).decode()
    timestamp = str(int(NOW.timestamp()))
    query = {"msg_signature": crypto.signature(timestamp, "n", encrypt), "timestamp": timestamp, "nonce": "n"}
    if channel == "wechat_mp":
        query["encrypt_type"] = "aes"
    adapter = WECOM if channel == "wecom" else MP
    run_all(adapter, credentials, request("POST", query, envelope(encrypt), channel=channel))


inner_fields = st.dictionaries(
    st.sampled_from(
        [
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Event",
            "ChangeType",
            "ExternalUserID",
            "UserID",
            "State",
            "Content",
            "MsgId",
            "EventKey",
            "Latitude",
            "Location_X",
            "Status",
            "Id",
            "Source",
        ]
    ),
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=300),
        st.sampled_from(
            [
                "event",
                "text",
                "change_external_contact",
                "change_external_tag",
                "subscribe",
                "LOCATION",
                "add_external_contact",
                "del_follow_user",
                "1403610513",
                "sys",
                "-1",
                "99999999999",
                "nan",
                "inf",
            ]
        ),
    ),
    max_size=10,
)


def xml_of(fields: dict[str, str]) -> str:
    return "<xml>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()) + "</xml>"


@FUZZ
@given(st.sampled_from(["wecom", "wechat_mp"]), inner_fields)
def test_authentic_pushes_with_random_messages(channel, fields):
    """Validly encrypted and signed, arbitrary message fields: parse maps or raises MalformedPush."""
    credentials = DEV_WECOM if channel == "wecom" else DEV_MP
    receive_id = credentials.get("corp_id") or credentials["app_id"]
    crypto = WeChatCrypto(credentials["token"], credentials["encoding_aes_key"], receive_id)
    timestamp = str(int(NOW.timestamp()))
    encrypt, signature = crypto.encrypt_reply(xml_of(fields), timestamp, "n")
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": "n"}
    if channel == "wechat_mp":
        query["encrypt_type"] = "aes"
    adapter = WECOM if channel == "wecom" else MP
    req = request("POST", query, envelope(encrypt), channel=channel)
    adapter.verify(req, credentials)  # authentic: must pass
    try:
        push = adapter.parse(req, credentials)
    except MalformedPush:
        return
    for event in push.events:
        assert event.to_message()
    assert push.delivery_ids
