"""Webhook time to ack, per channel: the real WebhookFunction handler in-process (verify, decrypt,
parse, map, one Kinesis PutRecord carrying the raw push and its events, ack) with AWS answered by
an in-process responder, so the figure is the handler's own work: wall time (platforms allow 5 s;
target p99 under 50 ms), CPU per push (target <= 0.6 ms) and signed AWS requests per push (the
responder counts them from outside; target 1)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import io
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.httpsession import URLLib3Session
from scrm_sync import bootstrap
from scrm_sync.channels.wechat_crypto import WeChatCrypto

from .sdk_path import ENV, ROOT, _Context, _Raw, _response

CHANNELS = json.loads((ROOT / "config/channels.dev.json").read_text())
CHANNELS["wecom"]["replay_window_seconds"] = 0


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SQS's own checksum


class CannedAws:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: Any) -> AWSResponse:
        self.requests += 1
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        body = json.loads(request.body or b"{}") if target else {}
        if target.endswith("GetSecretValue"):
            return _response(
                request, 200, {"ARN": body["SecretId"], "Name": "bench", "SecretString": json.dumps(CHANNELS)}
            )
        if target.startswith("AmazonSSM"):
            return _response(
                request, 200, {"Parameter": {"Name": body["Name"], "Value": "{}", "Type": "String"}}
            )
        if target.endswith("GetItem"):  # SchemaTable: the first message of a kind becomes its baseline
            return _response(request, 200, {})
        if target.endswith("UpdateItem"):
            return _response(request, 200, {})
        if target.endswith("PutRecord"):  # the webhook ingest stream
            return _response(request, 200, {"ShardId": "shardId-000000000000", "SequenceNumber": "1"})
        if target.endswith("SendMessageBatch"):
            ok = [
                {"Id": e["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": _md5(e["MessageBody"])}
                for e in body["Entries"]
            ]
            return _response(request, 200, {"Successful": ok, "Failed": []})
        headers = HTTPHeaders()
        headers["ETag"] = '"bench"'
        return AWSResponse(request.url, 200, headers, _Raw(b""))  # S3 PutObject


def _http_event(
    channel: str, body: bytes, headers: dict[str, str], query: dict[str, str] | None = None
) -> dict[str, Any]:
    event = json.loads((ROOT / "events/webhook/youzan_trade_paid.json").read_text())
    event = copy.deepcopy(event)
    event["rawPath"] = f"/webhooks/{channel}"
    event["pathParameters"] = {"channel": channel}
    event["headers"] = {"content-type": "application/json", **headers}
    event["queryStringParameters"] = query or {}
    event["body"] = body.decode()
    return event


def _wecom() -> dict[str, Any]:
    creds = CHANNELS["wecom"]
    crypto = WeChatCrypto(creds["token"], creds["encoding_aes_key"], creds["corp_id"])
    inner = (
        f"<xml><ToUserName>{creds['corp_id']}</ToUserName><FromUserName>sys</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event>"
        "<ChangeType>add_external_contact</ChangeType><UserID>zhangsan</UserID>"
        "<ExternalUserID>woAJ2GCAAAXtWyujaWJHDDGi0mACH71w</ExternalUserID><State>qr</State></xml>"
    )
    timestamp, nonce = str(int(time.time())), "bench"
    encrypt, signature = crypto.encrypt_reply(inner, timestamp, nonce)
    body = f"<xml><ToUserName>{creds['corp_id']}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>"
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
    return _http_event("wecom", body.encode(), {"content-type": "text/xml"}, query)


def _signed_sample(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: json.loads((ROOT / "events/webhook" / name).read_text())


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "wecom (AES, 客户联系 event)": _wecom,
    "wechat_mp (AES, subscribe)": _signed_sample("wechat_mp_subscribe_safe_mode.json"),
    "douyin (follow)": _signed_sample("douyin_new_follow.json"),
    "doudian (verification ping)": _signed_sample("doudian_verification_ping.json"),
    "youzan (trade paid)": _signed_sample("youzan_trade_paid.json"),
}


def run(requests: int = 300) -> dict[str, dict[str, float]]:
    results = {}
    # the deployed webhook's environment: schema drift is checked on every message
    env = {
        **ENV,
        "CHANNELS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
        "RULES_PARAMETER_NAME": "bench-rules",
        "LANDING_BUCKET": "bench-landing",
        "WEBHOOK_STREAM_NAME": "bench-webhooks",
        "SCHEMA_TABLE": "bench-schemas",
    }
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(io.StringIO()):
        bootstrap.reset()  # nothing built for another benchmark's environment
        spec = importlib.util.spec_from_file_location("bench_webhook_app", ROOT / "functions/webhook/app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        responder = CannedAws()
        with mock.patch.object(URLLib3Session, "send", lambda _self, req: responder(req)):
            for name, build in CASES.items():
                event = build()
                first = module.lambda_handler(event, _Context())  # warm: clients, secret, rules
                assert first["statusCode"] == 200, (name, first)
                samples = []
                responder.requests = 0
                cpu_start = time.process_time()
                for _ in range(requests):
                    start = time.perf_counter()
                    module.lambda_handler(event, _Context())
                    samples.append((time.perf_counter() - start) * 1000)
                cpu_ms = (time.process_time() - cpu_start) * 1000 / requests
                samples.sort()
                results[name] = {
                    "p50_ms": statistics.median(samples),
                    "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
                    "cpu_ms": cpu_ms,
                    "aws_requests": responder.requests / requests,
                }
    return results
