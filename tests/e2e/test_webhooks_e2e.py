"""Channel webhooks through the HTTP endpoints of `scrm local run`: the published vectors, signed
pushes that end in profiles, and forged or garbage requests answered 401/400 (never 5xx)."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrm_sync.channels.wechat_crypto import WeChatCrypto

from tests.e2e.conftest import API_KEY, RunningStack, start_local_stack
from tests.unit.channels import wechat_vectors as vectors
from tests.unit.channels.test_doudian import CREDS as DOUDIAN
from tests.unit.channels.test_douyin import CREDS as DOUYIN
from tests.unit.channels.test_youzan import CREDS as YOUZAN
from tests.unit.channels.test_youzan import push_body as youzan_push

pytestmark = pytest.mark.e2e
MP_D = {
    "app_id": "wx2c2769f8efd9abc2",
    "token": "spamtest",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "replay_window_seconds": 0,
}


def channels_file(tmp: Path, wecom: dict) -> Path:
    """Channel credentials for a stack. WeCom's API secret is dropped unless the entry points
    `api_base` at a local fake: tests never call the real WeCom API."""
    if "api_base" not in wecom:
        wecom = {k: v for k, v in wecom.items() if k != "secret"}
    path = tmp / f"channels-{wecom['corp_id']}.json"
    path.write_text(
        json.dumps(
            {
                "api": {"keys": {"e2e": API_KEY}},
                "wecom": wecom,
                "wechat_mp": MP_D,
                "douyin": DOUYIN,
                "doudian": DOUDIAN,
                "youzan": YOUZAN,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def stack_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    path = channels_file(tmp_path_factory.mktemp("channels"), vectors.A["credentials"])
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path)}) as stack:
        yield stack


def raw(
    stack: RunningStack,
    method: str,
    path: str,
    query: dict | None = None,
    body: bytes = b"",
    headers: dict | None = None,
) -> tuple[int, bytes]:
    url = stack.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def profile(stack: RunningStack, type_: str, value: str, scope: str | None = None) -> dict | None:
    query = {"type": type_, "value": value, **({"scope": scope} if scope else {})}
    status, body = raw(stack, "GET", "/profiles", query, headers={"X-Api-Key": API_KEY})
    return json.loads(body) if status == 200 else None


def test_wecom_vector_a_url_check_and_push(stack_a):
    status, body = raw(stack_a, "GET", "/webhooks/wecom", vectors.A["get"])
    assert (status, body) == (200, vectors.A["echo"].encode())
    push = vectors.envelope(vectors.A["encrypt"], "wx5823bf96d3bd56c7", vectors.A["agent_id"])
    status, _ = raw(stack_a, "POST", "/webhooks/wecom", vectors.A["post"], push)
    assert status == 200


def test_wecom_vector_b_url_check_and_push(tmp_path):
    with start_local_stack(
        {"SCRM_CHANNELS_FILE": str(channels_file(tmp_path, vectors.B["credentials"]))}
    ) as stack:
        status, body = raw(stack, "GET", "/webhooks/wecom", vectors.B["get"])
        assert (status, body) == (200, vectors.B["echo"].encode())
        push = vectors.envelope(vectors.B["encrypt"], vectors.B["credentials"]["corp_id"], "1000002")
        assert raw(stack, "POST", "/webhooks/wecom", vectors.B["post"], push)[0] == 200


def wecom_push(creds: dict, inner_xml: str, timestamp: str, nonce: str = "e2e-nonce") -> tuple[dict, bytes]:
    crypto = WeChatCrypto(creds["token"], creds["encoding_aes_key"], creds["corp_id"])
    encrypt, signature = crypto.encrypt_reply(inner_xml, timestamp, nonce)
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
    return query, vectors.envelope(encrypt, creds["corp_id"], "1000002")


def test_an_encrypted_customer_contact_event_becomes_a_profile_and_a_replay_changes_nothing(stack_a):
    creds = vectors.A["credentials"]
    now = str(int(time.time()))
    inner = (
        f"<xml><ToUserName><![CDATA[{creds['corp_id']}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACH71w]]></ExternalUserID>"
        "<State><![CDATA[store-017-qr]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>"
    )
    query, body = wecom_push(creds, inner, now)
    assert raw(stack_a, "POST", "/webhooks/wecom", query, body)[0] == 200
    assert raw(stack_a, "POST", "/webhooks/wecom", query, body)[0] == 200  # the platform retries
    stack_a.wait_drained()
    found = profile(stack_a, "wecom_external_userid", "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w", creds["corp_id"])
    assert found is not None
    assert found["attributes"]["wecom_follow_user"] == "zhangsan"
    assert found["sources"]["wecom_follow_user"]["source"] == "wecom"

    forged = dict(query, msg_signature="0" * 40)
    assert raw(stack_a, "POST", "/webhooks/wecom", forged, body)[0] in (401, 403)
    assert raw(stack_a, "POST", "/webhooks/wecom", query, b"<xml><Encrypt>not base64!</Encrypt>")[0] in (
        400,
        401,
    )


def test_official_account_vector_d_safe_mode_push_reaches_the_openid_profile(stack_a):
    d = {
        "timestamp": "1409735669",
        "nonce": "1320562132",
        "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        "encrypt_type": "aes",
        "signature": "unused-in-safe-mode",
        "openid": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
    }
    body = vectors.envelope(vectors.D["encrypt"], "gh_10f6c3c3ac5a")
    status, reply = raw(stack_a, "POST", "/webhooks/wechat_mp", d, body)
    assert (status, reply) == (200, b"success")
    stack_a.wait_drained()
    assert profile(stack_a, "wechat_openid", "oyORnuP8q7ou2gfYjqLzSIWZf0rs", MP_D["app_id"]) is not None


def test_douyin_and_doudian_handshakes_answer_exactly(stack_a):
    challenge = json.dumps(
        {"event": "verify_webhook", "client_key": DOUYIN["client_key"], "content": {"challenge": 12345}}
    )
    body = challenge.encode()
    signature = hashlib.sha1(DOUYIN["client_secret"].encode() + body).hexdigest()  # noqa: S324 - platform scheme
    status, reply = raw(
        stack_a, "POST", "/webhooks/douyin", body=body, headers={"X-Douyin-Signature": signature}
    )
    assert status == 200 and json.loads(reply) == {"challenge": 12345}

    ping = json.dumps([{"tag": "0", "msg_id": "0", "data": "{}"}]).encode()
    sign = hashlib.md5(DOUDIAN["app_key"].encode() + ping + DOUDIAN["app_secret"].encode()).hexdigest()  # noqa: S324
    status, reply = raw(
        stack_a,
        "POST",
        "/webhooks/doudian",
        body=ping,
        headers={"app-id": DOUDIAN["app_key"], "event-sign": sign},
    )
    assert status == 200 and json.loads(reply) == {"code": 0, "msg": "success"}
    assert (
        raw(
            stack_a,
            "POST",
            "/webhooks/doudian",
            body=ping,
            headers={"app-id": DOUDIAN["app_key"], "event-sign": "0" * 32},
        )[0]
        == 401
    )


def test_youzan_trade_push_ends_in_the_buyers_profile_and_timeline(stack_a):
    body = youzan_push()
    sign = hashlib.md5(YOUZAN["client_id"].encode() + body + YOUZAN["client_secret"].encode()).hexdigest()  # noqa: S324
    status, reply = raw(
        stack_a,
        "POST",
        "/webhooks/youzan",
        body=body,
        headers={"Event-Sign": sign, "Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(reply)["code"] == 0
    stack_a.wait_drained()
    found = profile(stack_a, "phone", "13800138000")
    assert found is not None
    status, timeline = raw(
        stack_a, "GET", f"/profiles/{found['profile_id']}/timeline", headers={"X-Api-Key": API_KEY}
    )
    assert any(e["kind"] == "order" and e["source"] == "youzan" for e in json.loads(timeline)["entries"])
    assert (
        raw(stack_a, "POST", "/webhooks/youzan", body=b"\x00garbage", headers={"Event-Sign": "x"})[0] == 401
    )


def test_unconfigured_channels_and_methods_are_clear_4xx(stack_a):
    assert raw(stack_a, "POST", "/webhooks/tmall", body=b"{}")[0] == 404
    assert raw(stack_a, "GET", "/webhooks/youzan")[0] == 405
