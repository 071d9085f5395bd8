"""Channel webhooks through the HTTP endpoints of `scrm local run`: the published vectors, signed
pushes that end in profiles (one stream record each, acked once the stream took it) and in a
batched landing object `scrm replay` reads, a stream outage answered 503, and forged or garbage
requests answered 401/400 (never 5xx)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
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


# These stacks have no WeCom API secret, so the dev rules' WeCom tag writes cannot succeed: with
# the first retry after 1 s and one receive, they reach their dead-letter queue at once instead of
# holding the backlog (what the tests wait on) through hours of retries, as they would in AWS.
NO_WECOM_API = {"SCRM_PARAMETER_OVERRIDES": "RetryBackoffBaseSeconds=1 OutboundMaxReceiveCount=1"}


@pytest.fixture(scope="module")
def stack_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    path = channels_file(tmp_path_factory.mktemp("channels"), vectors.A["credentials"])
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path), **NO_WECOM_API}) as stack:
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


# ------------------------------------------------------------ one stream record per push


def douyin_likes(open_id: str, likes: int, msg_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": open_id,
            "client_key": DOUYIN["client_key"],
            "content": {"item_id": "v-1", "digg_count": likes, "create_time": int(time.time())},
        }
    ).encode()
    signature = hashlib.sha1(DOUYIN["client_secret"].encode() + body).hexdigest()  # noqa: S324
    return body, {"X-Douyin-Signature": signature, "Msg-Id": msg_id, "Content-Type": "application/json"}


def stream_documents(stack: RunningStack) -> list[dict]:
    """Every record of the webhook ingest stream, as JSON."""
    kinesis = stack.client("kinesis")
    name = f"{stack.env['SCRM_STACK_NAME']}-WebhookStream"
    documents = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        documents += [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
    return documents


def landed_lines(stack: RunningStack) -> list[tuple[str, dict]]:
    """(object key, push) of every line of the batched landing objects."""
    s3 = stack.client("s3")
    bucket = f"{stack.env['SCRM_STACK_NAME']}-landingbucket".lower()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="raw/webhooks/dt=").get("Contents", [])
    found = []
    for item in listed:
        body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        found += [(item["Key"], json.loads(line)) for line in body.splitlines() if line.strip()]
    return found


def test_a_signed_push_is_acked_after_the_stream_took_it_then_synced_landed_and_replayable(stack_a):
    body, headers = douyin_likes("open-stream-1", 3, "m-stream-1")
    status, reply = raw(stack_a, "POST", "/webhooks/douyin", body=body, headers=headers)
    assert (status, reply) == (200, b"{}")
    # acked only after PutRecord succeeded: the record is in the stream as the ack arrives
    (record,) = [d for d in stream_documents(stack_a) if d["body"] == body.decode()]
    assert [e["attributes"]["interaction_index"] for e in record["events"]] == [3]

    stack_a.wait_drained()  # the sync and the delivery stream (its buffer interval, 1 s locally)
    found = profile(stack_a, "douyin_openid", "open-stream-1", DOUYIN["client_key"])
    assert found is not None and found["attributes"]["interaction_index"] == 3
    (key, landed) = next((k, d) for k, d in landed_lines(stack_a) if d["request_id"] == record["request_id"])
    assert key.endswith(".gz") and landed["body"] == body.decode() and landed["channel"] == "douyin"

    today = datetime.now(UTC).date().isoformat()
    replayed = stack_a.scrm(
        "replay",
        "--source",
        "douyin",
        "--since",
        today,
        "--request-id",
        record["request_id"],
        "--run-id",
        "e2e",
    )
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["pushes"] == 1 and json.loads(replayed.stdout)["events"] == 1


def test_a_stream_failure_is_a_503_and_the_platforms_retry_loses_nothing(tmp_path):
    path = channels_file(tmp_path, vectors.A["credentials"])
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path), **NO_WECOM_API}) as stack:
        kinesis = stack.client("kinesis")
        name = f"{stack.env['SCRM_STACK_NAME']}-WebhookStream"
        shards = len(kinesis.list_shards(StreamName=name)["Shards"])
        kinesis.delete_stream(StreamName=name)  # the stream refuses every PutRecord
        body, headers = douyin_likes("open-outage-1", 4, "m-outage")
        status, _ = raw(stack, "POST", "/webhooks/douyin", body=body, headers=headers)
        assert status == 503  # nothing acked: the platform sends it again
        assert profile(stack, "douyin_openid", "open-outage-1", DOUYIN["client_key"]) is None

        # the stream is back (same name and shards; nothing was ever written to it before)
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        status, _ = raw(stack, "POST", "/webhooks/douyin", body=body, headers=headers)  # the retry
        assert status == 200
        stack.wait_drained()
        found = profile(stack, "douyin_openid", "open-outage-1", DOUYIN["client_key"])
        assert found is not None and found["attributes"]["interaction_index"] == 4
        assert [d["body"] for _, d in landed_lines(stack)] == [body.decode()]  # landed once
