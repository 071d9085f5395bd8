"""The real WebhookFunction and WebhookSyncFunction handlers with their real composition root, on
resources built from template.yaml in moto: a good push costs exactly one signed AWS call (a
Kinesis PutRecord, counted from outside with a botocore before-send hook on every client the
handler creates), the record reaches the profile through WebhookSyncFunction and the landing
bucket through the delivery stream stand-in, and a stream that refuses the record gets a 503 with
nothing acked."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import importlib.util
import json
import time
import types
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import scrm_sync.bootstrap
from scrm_local.aws import Clients
from scrm_local.event_records import kinesis_record
from scrm_local.firehose_poller import FirehosePoller
from scrm_local.resources import create_resources
from scrm_local.settings import Settings
from scrm_local.template import Template
from scrm_sync.domain.rules import load_rules

from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = json.loads((ROOT / "config" / "channels.dev.json").read_text())
SAMPLE = json.loads((ROOT / "events" / "webhook" / "douyin_new_follow.json").read_text())


class CallCounter:
    """Every request a client made, by (service, operation), seen before it is sent."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:  # before-send.<service>.<operation>
        _, service, operation = event_name.split(".", 2)
        self.calls[(service, operation)] += 1

    def take(self) -> Counter[tuple[str, str]]:
        taken, self.calls = self.calls, Counter()
        return taken


@pytest.fixture
def app(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    settings = Settings(
        template_path=ROOT / "template.yaml", project_root=ROOT, stack_name=f"it{uuid.uuid4().hex[:8]}"
    )
    template = Template.load(settings)
    clients = Clients(moto_endpoint)
    create_resources(template, clients)
    secret = template.resolver.resource("ChannelCredentialsSecret").name
    clients("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(CHANNELS))

    counter = CallCounter()
    make_client = boto3.session.Session.client

    def counted_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = make_client(self, *args, **kwargs)
        client.meta.events.register("before-send", counter)
        return client

    monkeypatch.setattr(boto3.session.Session, "client", counted_client)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def use(function_id: str) -> types.ModuleType:
        """The function's handler, imported afresh in exactly its template environment."""
        fn = template.function(function_id)
        for key, value in fn.environment.items():
            monkeypatch.setenv(key, value)
        scrm_sync.bootstrap.reset()
        spec = importlib.util.spec_from_file_location(
            f"{function_id}_{uuid.uuid4().hex}", fn.code_dir / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    stream = template.resolver.resource("WebhookStream").name
    yield types.SimpleNamespace(
        template=template, clients=clients, counter=counter, use=use, stream=stream, secret=secret
    )
    scrm_sync.bootstrap.reset()


def douyin_push(msg_id: str, likes: int) -> dict[str, Any]:
    body = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": "open-fan-7",
            "client_key": CHANNELS["douyin"]["client_key"],
            "content": {"item_id": "v-1", "digg_count": likes, "create_time": int(time.time())},
        }
    )
    signature = hashlib.sha1(CHANNELS["douyin"]["client_secret"].encode() + body.encode()).hexdigest()  # noqa: S324
    event = copy.deepcopy(SAMPLE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/webhooks/douyin"
    event["pathParameters"] = {"channel": "douyin"}
    event["headers"] = {"content-type": "application/json", "x-douyin-signature": signature, "msg-id": msg_id}
    event["requestContext"]["requestId"] = f"req-{msg_id}"
    event["body"], event["isBase64Encoded"] = body, False
    return event


def stream_records(app: types.SimpleNamespace) -> list[dict[str, Any]]:
    """Every record of the webhook stream, as Lambda's Kinesis event source shows them."""
    kinesis = app.clients("kinesis")
    arn = kinesis.describe_stream_summary(StreamName=app.stream)["StreamDescriptionSummary"]["StreamARN"]
    records = []
    for shard in kinesis.list_shards(StreamName=app.stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=app.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        found = kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        records += [kinesis_record(r, shard["ShardId"], arn) for r in found]
    return records


def test_a_good_push_is_one_put_record_then_synced_and_landed(app):
    webhook = app.use("WebhookFunction")
    warm_up = webhook.lambda_handler(douyin_push("m-0", 1), LambdaContext())
    assert warm_up["statusCode"] == 200  # the cold start read the secret, the rules, the schema
    app.counter.take()

    answer = webhook.lambda_handler(douyin_push("m-1", 5), LambdaContext())
    assert (answer["statusCode"], answer["body"]) == (200, "{}")
    assert app.counter.take() == Counter({("kinesis", "PutRecord"): 1})

    records = stream_records(app)
    documents = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in records]
    assert [d["request_id"] for d in documents] == ["req-m-0", "req-m-1"]
    assert [e["attributes"]["interaction_index"] for e in documents[1]["events"]] == [5]

    # the sync: WebhookSyncFunction on the stream's records, with its own environment
    sync = app.use("WebhookSyncFunction")
    response = sync.lambda_handler({"Records": records}, LambdaContext())
    assert response == {"batchItemFailures": []}
    client_key = CHANNELS["douyin"]["client_key"]
    found = scrm_sync.bootstrap.queries().find(load_rules({}), "douyin_openid", "open-fan-7", client_key)
    assert found is not None and found["attributes"]["interaction_index"] == 5

    # the raw landing: the delivery stream (its local stand-in) writes one batched GZIP object
    (delivery,) = app.template.delivery_streams
    poller = FirehosePoller(delivery, app.clients)
    poller.interval = 0
    poller.setup()
    assert poller.poll_once() and poller.objects_written == 1
    listed = app.clients("s3").list_objects_v2(Bucket=delivery.bucket, Prefix="raw/webhooks/dt=")["Contents"]
    (landed,) = [item["Key"] for item in listed]
    assert landed.endswith(".gz")
    body = app.clients("s3").get_object(Bucket=delivery.bucket, Key=landed)["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["req-m-0", "req-m-1"]
    assert all(json.loads(line)["channel"] == "douyin" and json.loads(line)["body"] for line in lines)


def test_a_stream_that_refuses_the_record_gets_a_503_and_nothing_is_acked(app, monkeypatch):
    webhook = app.use("WebhookFunction")
    monkeypatch.setenv("WEBHOOK_STREAM_NAME", "no-such-stream")  # PutRecord: ResourceNotFound
    scrm_sync.bootstrap.reset()
    answer = webhook.lambda_handler(douyin_push("m-2", 9), LambdaContext())
    assert answer["statusCode"] == 503
    assert stream_records(app) == []
    listed = app.clients("s3").list_objects_v2(Bucket=app.template.delivery_streams[0].bucket)
    assert "Contents" not in listed  # no direct PUT either: the push simply was not taken

    monkeypatch.setenv("WEBHOOK_STREAM_NAME", app.stream)  # the platform's retry, once it is back
    scrm_sync.bootstrap.reset()
    assert webhook.lambda_handler(douyin_push("m-2", 9), LambdaContext())["statusCode"] == 200
    assert len(stream_records(app)) == 1
