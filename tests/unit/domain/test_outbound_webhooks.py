"""Outbound webhook subscriptions, selection and signing (pure rules, no network)."""

import base64
import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sync.domain.outbound_webhooks import (
    DEFAULT_KINDS,
    KINDS,
    InvalidWebhookSubscriptions,
    WebhookSubscription,
    WebhookSubscriptions,
    encode_body,
    select_for,
    sign,
    signed_headers,
)
from standardwebhooks import Webhook

SECRET = "whsec_rUle6+k2wJpxbYJowgrbiFpiSvl9AL3JyM5/en+U8H8="  # 32 test bytes, not a real secret
SECRET_BODY = SECRET.removeprefix("whsec_")

DOCUMENT = {
    "type": "profile.changed",
    "version": 1,
    "id": "chg_" + "0123456789abcdef" * 2,
    "profile_id": "p_1",
    "sequence": "00000000000000000042",
    "changed_at": "2026-12-03T09:00:00Z",
    "kinds": ["fields", "identifiers", "merged"],
    "fields": {
        "member_level": {
            "old": "silver",
            "new": "gold",
            "source": "mdm",
            "event_id": "e1",
            "occurred_at": "t",
        },
        "wecom_tags": {"old": None, "new": ["vip"], "source": "wecom", "event_id": "e2", "occurred_at": "t"},
        "wecom_remark": {"old": "a", "new": "b", "source": "wecom", "event_id": "e3", "occurred_at": "t"},
        "name": {"old": "张三", "new": "张三丰", "source": "pos", "event_id": "e4", "occurred_at": "t"},
    },
    "identifiers": {"added": [{"type": "phone", "value": "+8613800000000", "scope": None}], "removed": []},
    "merged_from": ["p_2"],
}
ENVELOPE = {k: DOCUMENT[k] for k in ("type", "version", "id", "profile_id", "sequence", "changed_at")}


def subscription(**overrides) -> WebhookSubscription:
    return WebhookSubscription.model_validate(
        {"url": "https://crm.example.com/hooks", "secret": SECRET, **overrides}
    )


# --- the subscription -----------------------------------------------------------------------------
def test_defaults_leave_identifiers_out_and_take_every_field():
    sub = subscription()
    assert sub.kinds == DEFAULT_KINDS == frozenset(KINDS) - {"identifiers", "unlink"}
    assert sub.fields == ("*",)
    assert (sub.timeout_seconds, sub.enabled) == (5.0, True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "https://crm.example.com/a/b?token=abc", "https://[::1]:8443/x"]
)
def test_http_and_https_urls_are_accepted(url):
    assert subscription(url=url).url == url


@pytest.mark.parametrize(
    "url",
    ["ftp://crm.example.com/x", "/relative/path", "crm.example.com/x", "https:///no-host", "https://h:99999/",
     "https://h/x y", " https://h/x", "https://h/x#frag", "javascript:alert(1)"],
)  # fmt: skip
def test_other_urls_are_refused(url):
    with pytest.raises(ValidationError):
        subscription(url=url)


@pytest.mark.parametrize(
    "secret",
    [
        SECRET_BODY,  # no prefix
        "whsec_",  # empty
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),  # too short
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # too long
    ],
)
def test_secrets_must_be_whsec_base64_of_24_to_64_bytes(secret):
    with pytest.raises(ValidationError) as refused:
        subscription(secret=secret)
    assert secret not in str(refused.value) or secret == "whsec_"
    assert SECRET_BODY not in str(refused.value)


def test_secrets_of_24_and_64_bytes_and_unpadded_base64_are_accepted():
    for size in (24, 64):
        subscription(secret="whsec_" + base64.b64encode(b"k" * size).decode())
    subscription(secret=SECRET.rstrip("="))


def test_the_secret_never_shows_in_repr_str_or_dumps_and_the_url_not_in_repr():
    sub = subscription(url="https://crm.example.com/hooks?token=abc")
    for text in (repr(sub), str(sub), str(sub.model_dump())):
        assert SECRET_BODY not in text
    assert "token=abc" not in repr(sub)
    assert sub.redacted_url == "https://crm.example.com"
    assert subscription(url="http://user:pw@127.0.0.1:9000/x?k=1").redacted_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    "overrides",
    [
        {"kinds": []},
        {"kinds": ["fields", "orders"]},
        {"fields": []},
        {"fields": [""]},
        {"timeout_seconds": 0.5},
        {"timeout_seconds": 11},
        {"enabled": "yes"},
        {"extra": 1},
    ],
)
def test_invalid_settings_are_refused(overrides):
    with pytest.raises(ValidationError):
        subscription(**overrides)


def test_subscriptions_parse_the_entry_sorted_by_name():
    parsed = WebhookSubscriptions.parse(
        {
            "zeta": {"url": "https://z.example", "secret": SECRET},
            "crm-1": {"url": "http://c", "secret": SECRET},
        }
    )
    assert [name for name, _ in parsed.items()] == ["crm-1", "zeta"]
    assert parsed.get("zeta") is not None and parsed.get("nope") is None
    assert len(WebhookSubscriptions.parse(None).items()) == 0
    assert WebhookSubscriptions.from_channels(
        {"outbound_webhooks": {"a": {"url": "http://a", "secret": SECRET}}}
    )


def test_validation_errors_name_the_subscription_and_field_but_no_value():
    wrong_secret = "whsec_" + base64.b64encode(b"s" * 8).decode()
    entry = {
        "crm": {"url": "ftp://crm.example.com/x?token=abc", "secret": SECRET, "kinds": ["orders"]},
        "bi": {"url": "https://bi.example.com", "secret": wrong_secret, "timeout_seconds": 30},
        "Bad Name": {"url": "https://x.example", "secret": SECRET},
    }
    with pytest.raises(InvalidWebhookSubscriptions) as refused:
        WebhookSubscriptions.parse(entry)
    message = str(refused.value)
    for expected in (
        "crm.url:",
        "crm.kinds[0]:",
        "bi.secret: must decode to 24..64 bytes",
        "bi.timeout_seconds:",
        "subscription #3: its name must match",
    ):
        assert expected in message
    for secret_text in (
        wrong_secret,
        wrong_secret.removeprefix("whsec_"),
        SECRET_BODY,
        "token=abc",
        "Bad Name",
    ):
        assert secret_text not in message
    with pytest.raises(InvalidWebhookSubscriptions, match="must be an object"):
        WebhookSubscriptions.parse(["crm"])


# --- selection ----------------------------------------------------------------------------------
def test_everything_but_identifiers_by_default():
    assert select_for(subscription(), DOCUMENT) == {
        **ENVELOPE,
        "kinds": ["fields", "merged"],
        "fields": DOCUMENT["fields"],
        "merged_from": ["p_2"],
    }


def test_identifiers_only_when_asked_for():
    selected = select_for(subscription(kinds=["identifiers"]), DOCUMENT)
    assert selected == {**ENVELOPE, "kinds": ["identifiers"], "identifiers": DOCUMENT["identifiers"]}


def test_field_names_and_patterns_narrow_the_fields():
    selected = select_for(subscription(fields=["wecom_*", "member_level"]), DOCUMENT)
    assert selected is not None
    assert sorted(selected["fields"]) == ["member_level", "wecom_remark", "wecom_tags"]
    case_sensitive = select_for(subscription(fields=["Member_Level"]), DOCUMENT)
    assert case_sensitive is not None and case_sensitive["kinds"] == ["merged"]


def test_the_fields_kind_goes_when_no_field_is_left_and_none_when_nothing_is():
    selected = select_for(subscription(fields=["loyalty_*"]), DOCUMENT)
    assert selected == {**ENVELOPE, "kinds": ["merged"], "merged_from": ["p_2"]}
    assert select_for(subscription(kinds=["fields"], fields=["loyalty_*"]), DOCUMENT) is None
    assert select_for(subscription(kinds=["split", "unlink"]), DOCUMENT) is None


def test_a_disabled_subscription_selects_nothing():
    assert select_for(subscription(enabled=False), DOCUMENT) is None


def test_unknown_kinds_and_keys_are_never_copied_and_the_input_is_untouched():
    document = {**copy.deepcopy(DOCUMENT), "kinds": ["fields", "orders"], "orders": [1], "phone": "+86138"}
    before = copy.deepcopy(document)
    selected = select_for(subscription(kinds=list(KINDS)), document)
    assert selected is not None
    assert set(selected) == {*ENVELOPE, "kinds", "fields"}
    selected["fields"]["member_level"]["new"] = "changed"
    assert document == before


def test_every_kind_maps_to_its_key():
    document = {
        **ENVELOPE,
        "kinds": ["merged_into", "split", "unlink"],
        "merged_into": "p_9",
        "split_from": "p_8",
        "unlink": {"by": "operator"},
    }
    assert select_for(subscription(kinds=["merged_into", "split", "unlink"]), document) == document
    by_default = select_for(subscription(), document)  # an unlink names an identifier: opt-in
    assert (
        by_default is not None
        and "unlink" not in by_default
        and by_default["kinds"] == ["merged_into", "split"]
    )


def test_bodies_are_compact_sorted_utf8_json():
    body = encode_body({"b": "张三", "a": [1, {"y": None, "x": True}]})
    assert body == '{"a":[1,{"x":true,"y":null}],"b":"张三"}'.encode()


# property: selection never widens what a subscription asked for
FIELD_NAMES = st.sampled_from(["member_level", "wecom_tags", "wecom_remark", "name", "phone", "wecom", "w*"])
TEXT = st.text(alphabet="abmnw_张*?[]", max_size=8)
FIELD_CHANGE = st.fixed_dictionaries({"old": st.none() | TEXT, "new": TEXT})
DOCUMENTS = st.fixed_dictionaries(
    {
        **{k: st.just(v) for k, v in ENVELOPE.items()},
        "kinds": st.lists(st.sampled_from([*KINDS, "orders", 7, None])),
    },
    optional={
        "fields": st.dictionaries(FIELD_NAMES | TEXT, FIELD_CHANGE, max_size=6),
        "identifiers": st.just(DOCUMENT["identifiers"]),
        "merged_from": st.just(["p_2"]),
        "merged_into": st.just("p_3"),
        "split_from": st.just("p_4"),
        "unlink": st.just({"identifier": "x"}),
        "orders": st.just([1]),
    },
)
SUBSCRIPTIONS = st.builds(
    subscription,
    kinds=st.sets(st.sampled_from(KINDS), min_size=1) | st.just(DEFAULT_KINDS),
    fields=st.lists(FIELD_NAMES | st.sampled_from(["*", "wecom_*", "?ame", "[mn]*"]), min_size=1, max_size=3),
    enabled=st.booleans(),
)


@given(sub=SUBSCRIPTIONS, document=DOCUMENTS)
def test_selection_never_returns_what_was_not_asked_for(sub, document):
    selected = select_for(sub, document)
    if selected is None:
        return
    assert sub.enabled
    assert set(selected["kinds"]) <= sub.kinds and selected["kinds"]
    for personal in ("identifiers", "unlink"):  # identifier values go only to who asked for them
        if personal not in sub.kinds:
            assert personal not in selected and personal not in selected["kinds"]
    assert set(selected) <= {*ENVELOPE, "kinds", "fields", "identifiers", "merged_from", "merged_into",
                             "split_from", "unlink"}  # fmt: skip
    for name in selected.get("fields", {}):
        assert sub.wants_field(name)
    assert ("fields" in selected) == ("fields" in selected["kinds"])
    if "fields" in selected:
        assert selected["fields"]
    assert json.loads(encode_body(selected)) == selected


# --- signing ------------------------------------------------------------------------------------
def test_signature_matches_the_standard_webhooks_test_vector():
    # standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
        b'{"test": 2432232314}',
    )  # fmt: skip
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_verify_with_the_reference_library():
    import time

    body = encode_body(select_for(subscription(), DOCUMENT) or {})
    now = int(time.time())
    headers = signed_headers(SECRET, DOCUMENT["id"], now, body)
    assert headers["webhook-id"] == DOCUMENT["id"]
    assert headers["webhook-timestamp"] == str(now)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"]
    assert Webhook(SECRET).verify(body, headers)["id"] == DOCUMENT["id"]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(body.replace(b"gold", b"GOLD"), headers)


def test_ids_that_cannot_be_a_header_and_non_integer_timestamps_are_refused():
    for msg_id in ("", "chg 1", "chg\r\nx: y", "变更"):
        with pytest.raises(ValueError):
            sign(SECRET, msg_id, 1, b"{}")
    with pytest.raises(TypeError):
        sign(SECRET, "chg_1", 1.5, b"{}")  # type: ignore[arg-type]
