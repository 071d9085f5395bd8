"""The real WebhookFunction handler in-process, with AWS answered by a canned responder.

Shared by the webhook benchmarks (webhook_ack, webhook_cpu):

* the function's environment is read from template.yaml (WebhookFunction's Variables merged with
  Globals, refs resolved to dummy names by the local stack's template reader), so a change of the
  function's resources (a Kinesis stream instead of a bucket and a queue, say) needs no change here;
* every boto3 client created while `aws_answered_in_process` is active gets two `before-send` hooks:
  a counter (first) and the responder (last). The request is serialized and signed as in Lambda;
  only the network is skipped. Counting happens on the clients, outside the code under test;
* the responder answers each landing, queue, stream, config and schema-watch operation with a
  canned success, whichever of them the handler uses;
* requests are signed by botocore's pure-Python SigV4, as in Lambda: the function ships no awscrt
  (the runtime's boto3 plus the layer), while this venv has it through aws-sam-cli and botocore
  would otherwise sign with CRT (about 25% more CPU per call here).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import botocore.auth
from aws_lambda_powertools.utilities import parameters
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.client import BaseClient
from botocore.httpsession import URLLib3Session
from scrm_local.settings import Settings
from scrm_local.template import Template
from scrm_sync import bootstrap
from scrm_sync.channels.wechat_crypto import WeChatCrypto

from .sdk_path import ENV, ROOT, _Context, _Raw, _response

FUNCTION_ID = "WebhookFunction"
CHANNELS = json.loads((ROOT / "config/channels.dev.json").read_text())
RULES_TEXT = (ROOT / "config/rules.dev.json").read_text()  # the rules `make run` loads

# What the Lambda runtime adds to the template's variables. Tracing is off: there is no X-Ray
# daemon in-process (the deployed function's `Tracing: Active` costs extra and is not measured).
RUNTIME_ENV = {
    **{name: value for name, value in ENV.items() if name.startswith("AWS_")},
    "AWS_LAMBDA_FUNCTION_NAME": "bench-WebhookFunction",
    "POWERTOOLS_TRACE_DISABLED": "1",
}


def webhook_environment() -> dict[str, str]:
    """WebhookFunction's environment as template.yaml declares it (Globals merged), plus the
    variables the Lambda runtime sets."""
    settings = Settings(template_path=ROOT / "template.yaml", project_root=ROOT, stack_name="bench")
    declared = Template.load(settings).function(FUNCTION_ID).environment
    return {**declared, **RUNTIME_ENV}


class _Discard(io.TextIOBase):
    """stdout for the handler's log lines and metrics: writing them costs CPU in Lambda too,
    but keeping a benchmark's worth of them in memory would not."""

    def write(self, text: str) -> int:
        return len(text)


def load_webhook_handler() -> ModuleType:
    """functions/webhook/app.py as a fresh module (the environment must be in place first)."""
    spec = importlib.util.spec_from_file_location("bench_webhook_app", ROOT / "functions/webhook/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SQS's own checksum


def _sequence_number() -> str:
    return str(time.time_ns()).rjust(56, "4")


class CannedAws:
    """Answers each signed request with the success AWS would send, and counts nothing itself
    (see `SignedCallCounter`). Unknown JSON operations get an empty success."""

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        service, operation = event_name.split(".")[1:3]  # "before-send.<service>.<Operation>"
        if service == "s3":
            headers = HTTPHeaders()
            headers["ETag"] = '"bench"'
            return AWSResponse(request.url, 200, headers, _Raw(b""))
        return _response(request, 200, self.answer(service, operation, json.loads(request.body or b"{}")))

    def answer(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The response document of a JSON-protocol operation (its request's JSON body, or the
        call's parameters: the same shape for the members read here)."""
        if service == "s3":
            return {"ETag": '"bench"'}
        answer: Callable[[dict[str, Any]], dict[str, Any]] = getattr(
            self, f"_{service.replace('-', '_')}_{operation}", lambda _params: {}
        )
        return answer(params)

    @staticmethod
    def _secrets_manager_GetSecretValue(body: dict[str, Any]) -> dict[str, Any]:
        return {"ARN": body["SecretId"], "Name": "bench", "SecretString": json.dumps(CHANNELS)}

    @staticmethod
    def _ssm_GetParameter(body: dict[str, Any]) -> dict[str, Any]:
        return {"Parameter": {"Name": body["Name"], "Value": RULES_TEXT, "Type": "String", "Version": 1}}

    @staticmethod
    def _sqs_SendMessage(body: dict[str, Any]) -> dict[str, Any]:
        return {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": _md5(body["MessageBody"])}

    @staticmethod
    def _sqs_SendMessageBatch(body: dict[str, Any]) -> dict[str, Any]:
        ok = [
            {"Id": e["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": _md5(e["MessageBody"])}
            for e in body["Entries"]
        ]
        return {"Successful": ok, "Failed": []}

    @staticmethod
    def _kinesis_PutRecord(body: dict[str, Any]) -> dict[str, Any]:
        return {"ShardId": "shardId-000000000000", "SequenceNumber": _sequence_number()}

    @staticmethod
    def _kinesis_PutRecords(body: dict[str, Any]) -> dict[str, Any]:
        records = [
            {"ShardId": "shardId-000000000000", "SequenceNumber": _sequence_number()} for _ in body["Records"]
        ]
        return {"FailedRecordCount": 0, "Records": records}

    @staticmethod
    def _firehose_PutRecord(body: dict[str, Any]) -> dict[str, Any]:
        return {"RecordId": uuid.uuid4().hex, "Encrypted": False}

    @staticmethod
    def _firehose_PutRecordBatch(body: dict[str, Any]) -> dict[str, Any]:
        answers = [{"RecordId": uuid.uuid4().hex} for _ in body["Records"]]
        return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": answers}

    # DynamoDB (schema watch): no stored schema, so the first message of a kind is the baseline;
    # GetItem/UpdateItem/PutItem answer {} through the default.


class SignedCallCounter:
    """Counts the signed requests of the clients it is hooked on, as "service Operation"."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        self.calls[f"{service} {operation}"] += 1

    def per(self, count: int) -> dict[str, float]:
        return {call: n / count for call, n in sorted(self.calls.items())}


# botocore's own signers for the signature versions these services use (see the module docstring)
LAMBDA_SIGNERS = {
    "v4": botocore.auth.SigV4Auth,
    "v4-query": botocore.auth.SigV4QueryAuth,
    "s3v4": botocore.auth.S3SigV4Auth,
    "s3v4-query": botocore.auth.S3SigV4QueryAuth,
}


def _no_network(_session: Any, request: Any) -> Any:
    raise AssertionError(f"a client the benchmark did not hook tried the network: {request.url}")


@contextlib.contextmanager
def aws_answered_in_process(counter: SignedCallCounter) -> Iterator[None]:
    """Every boto3 client created inside gets the counter and the responder and signs as in
    Lambda; cached clients and Powertools parameter providers made earlier (another benchmark's)
    are forgotten first."""
    responder = CannedAws()
    create_client = boto3.session.Session.client

    def hooked_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = create_client(session, *args, **kwargs)
        client.meta.events.register_first("before-send", counter)
        client.meta.events.register_last("before-send", responder)
        return client

    bootstrap.reset()
    parameters.clear_caches()
    try:
        with (
            mock.patch.object(boto3.session.Session, "client", hooked_client),
            mock.patch.object(URLLib3Session, "send", _no_network),
            mock.patch.dict(botocore.auth.AUTH_TYPE_MAPS, LAMBDA_SIGNERS),
        ):
            yield
    finally:
        bootstrap.reset()  # nothing hooked leaks into the next benchmark
        parameters.clear_caches()


@contextlib.contextmanager
def sdk_calls_skipped() -> Iterator[None]:
    """Each boto3 call returns the responder's answer without being serialized, signed or parsed:
    the CPU left is the handler's own work."""
    responder = CannedAws()

    def canned_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        service = client.meta.service_model.service_id.hyphenize()
        return responder.answer(service, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", canned_api_call):
        yield


@contextlib.contextmanager
def webhook_handler() -> Iterator[tuple[ModuleType, SignedCallCounter]]:
    """The real handler, loaded in its template environment, and the counter of its AWS calls."""
    counter = SignedCallCounter()
    with (
        mock.patch.dict(os.environ, webhook_environment()),
        contextlib.redirect_stdout(_Discard()),
        aws_answered_in_process(counter),
    ):
        yield load_webhook_handler(), counter


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = module.lambda_handler(event, _Context())
    return response


# ---------------------------------------------------------------- one push per channel


def _http_event(
    channel: str, body: bytes, headers: dict[str, str], query: dict[str, str] | None = None
) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((ROOT / "events/webhook/youzan_trade_paid.json").read_text()))
    event["rawPath"] = f"/webhooks/{channel}"
    event["pathParameters"] = {"channel": channel}
    event["headers"] = {"content-type": "application/json", **headers}
    event["queryStringParameters"] = query or {}
    event["body"] = body.decode()
    return event


def wecom_contact_push() -> dict[str, Any]:
    """A safe-mode 客户联系 push, encrypted and signed now with the dev credentials."""
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


PUSHES: dict[str, Callable[[], dict[str, Any]]] = {
    "wecom (AES, 客户联系 event)": wecom_contact_push,
    "wechat_mp (AES, subscribe)": _signed_sample("wechat_mp_subscribe_safe_mode.json"),
    "douyin (follow)": _signed_sample("douyin_new_follow.json"),
    "doudian (verification ping)": _signed_sample("doudian_verification_ping.json"),
    "youzan (trade paid)": _signed_sample("youzan_trade_paid.json"),
}
