"""Long delivery ids are hashed by one helper (channels/payloads.py `bounded_id`). The ids are
idempotency keys of events already stored, so each channel's output must stay what it was:
"sha256:" for WeChat / WeCom, "sha256-" for the JSON channels."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.channels.base import MalformedPush
from scrm_sync.channels.payloads import bounded_id, load_object
from scrm_sync.channels.wechat_crypto import event_id, xml_fields

LONG = "o" * 150


def test_short_ids_are_kept_as_they_are():
    assert bounded_id("msg-1") == "msg-1"
    assert bounded_id("x" * 200) == "x" * 200
    assert event_id(" openid ", "1700000000", "subscribe ") == "openid:1700000000:subscribe"


def test_json_channels_hash_long_ids_with_a_dash():
    value = "日志" * 101
    assert bounded_id(value) == "sha256-" + hashlib.sha256(value.encode()).hexdigest()


def test_a_lone_surrogate_from_a_json_escape_hashes_as_before():
    log_id = load_object(('{"log_id": "\\ud800' + "a" * 200 + '"}').encode())["log_id"]
    expected = "sha256-" + hashlib.sha256(log_id.encode("utf-8", "replace")).hexdigest()
    assert bounded_id(log_id) == expected
    assert expected == "sha256-" + hashlib.sha256(("?" + "a" * 200).encode()).hexdigest()


def test_wechat_keys_keep_their_colon_prefix():
    joined = f"{LONG}:1700000000:{'事件' * 30}"
    expected = "sha256:" + hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()
    assert event_id(LONG, "1700000000", "事件" * 30) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><A>&#xD800;</A></xml>",
        b"<xml><A>\xed\xa0\x80</A></xml>",
        "<xml><A>\ud800</A></xml>",
        "<xml><A>a\udc00</A></xml>".encode("utf-16", "surrogatepass"),
    ],
)
def test_wechat_parts_never_hold_a_lone_surrogate(body):
    """Why one encoding serves both: `event_id`'s parts come from `xml_fields`, which refuses lone
    surrogates, and on any other text "surrogatepass" and "replace" encode the same bytes."""
    with pytest.raises(MalformedPush):
        xml_fields(body)


def _event_id_before_the_merge(*parts: str) -> str:
    joined = ":".join(p.strip() for p in parts)
    if len(joined) <= 200:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


@given(st.lists(st.text(max_size=120), min_size=1, max_size=4))  # st.text() holds no lone surrogate
def test_wechat_keys_are_byte_identical_to_the_former_helper(parts):
    assert event_id(*parts) == _event_id_before_the_merge(*parts)
