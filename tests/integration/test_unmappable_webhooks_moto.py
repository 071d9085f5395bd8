"""The real WebhookFunction handler on S3 and Kinesis (in-process moto): a signed Douyin push with
`"digg_count": 1e400` is acked with Douyin's success body, counted (`WebhooksUnmappable`),
recorded as a mapping failure that `scrm mapping-failures` lists, and landed (through the stream
and the delivery stream's batched objects) with no events to sync; `scrm replay` then finishes,
re-queues the good pushes, reports the bad one and exits 3."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import types
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import scrm_sync.bootstrap
from scrm_local import cli
from scrm_local.firehose_poller import FirehosePoller
from scrm_local.template import DeliveryStreamSpec
from scrm_sync.adapters.messaging import KinesisPushStream, S3RawLanding, SqsEventQueue
from scrm_sync.channels import ADAPTERS
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.replay import WebhookReplay
from scrm_sync.services.webhooks import WebhookIngest

from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = json.loads((ROOT / "config" / "channels.dev.json").read_text())
CREDENTIALS = load_credentials(CHANNELS)
SAMPLE = json.loads((ROOT / "events" / "webhook" / "douyin_new_follow.json").read_text())
BUCKET = "scrm-test-landing"
STREAM = "scrm-test-webhooks"
# douyin keeps its default (content.digg_count -> int); doudian paid orders map their points
RULES = load_rules(
    {"mappings": {"doudian": {"101": [{"source": "data.points", "target": "points", "transform": "int"}]}}}
)


@dataclass
class Stack:
    handler: types.ModuleType
    s3: Any
    sqs: Any
    queue_url: str
    kinesis: Any
    delivery: FirehosePoller
    seen: int = 0

    def post(self, channel: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        event = copy.deepcopy(SAMPLE)
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/{channel}"
        event["pathParameters"] = {"channel": channel}
        event["headers"] = {"content-type": "application/json", **headers}
        event["requestContext"]["requestId"] = uuid.uuid4().hex
        event["body"], event["isBase64Encoded"] = body.decode(), False
        return dict(self.handler.lambda_handler(event, LambdaContext()))

    def queued(self) -> list[dict[str, Any]]:
        """What `scrm replay` queued."""
        found = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]

    def streamed(self) -> list[dict[str, Any]]:
        """The events of the push records the webhook wrote since the last call (what the sync gets)."""
        shard = self.kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
        iterator = self.kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = self.kinesis.get_records(ShardIterator=iterator)["Records"][self.seen :]
        self.seen += len(records)
        return [event for r in records for event in json.loads(r["Data"])["events"]]

    def land(self) -> None:
        """The delivery stream writes what the stream holds as a batched object."""
        assert self.delivery.poll_once()

    def keys(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture
def stack(in_process_aws: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    s3, sqs, kinesis = boto3.client("s3"), boto3.client("sqs"), boto3.client("kinesis")
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName="scrm-test-ingest")["QueueUrl"]
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    landing, queue = S3RawLanding(s3, BUCKET), SqsEventQueue(sqs, queue_url)
    webhooks = WebhookIngest(
        ADAPTERS, lambda: CREDENTIALS, landing, KinesisPushStream(kinesis, STREAM), lambda: RULES
    )
    replay = WebhookReplay(ADAPTERS, lambda: CREDENTIALS, landing, queue, lambda: RULES)
    spec = importlib.util.spec_from_file_location("webhook_app_unmappable", ROOT / "functions/webhook/app.py")
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    handler.webhooks = lambda: webhooks  # type: ignore[attr-defined]
    # `scrm` against this "running stack": its composition root builds the replay above
    monkeypatch.setattr(scrm_sync.bootstrap, "replay", lambda: replay)
    monkeypatch.setattr(
        cli,
        "attach",
        lambda: types.SimpleNamespace(activate=lambda: None, deactivate=lambda: None),
    )
    arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    spec = DeliveryStreamSpec(
        "RawLandingDeliveryStream",
        "raw-landing",
        arn,
        BUCKET,
        "raw/webhooks/dt=!{timestamp:yyyy-MM-dd}/",
        "raw/webhooks-errors/",
        interval_seconds=0,
        size_bytes=64 * 1024 * 1024,
        compression="GZIP",
    )
    delivery = FirehosePoller(spec, boto3.client)
    delivery.setup()
    return Stack(handler, s3, sqs, queue_url, kinesis, delivery)


def douyin_digg(msg_id: str, digg_count: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event": "new_video_digg",
            "from_user_id": "open-fan-42",
            "client_key": CHANNELS["douyin"]["client_key"],
            "content": {"item_id": "v-1", "digg_count": "DIGG"},
        }
    ).replace('"DIGG"', digg_count)  # a bare JSON number, exactly as the platform sends it
    encoded = body.encode()
    signature = hashlib.sha1(CHANNELS["douyin"]["client_secret"].encode() + encoded).hexdigest()  # noqa: S324
    return encoded, {"x-douyin-signature": signature, "msg-id": msg_id}


def emitted_metrics(out: str) -> list[tuple[str, float, str]]:
    """(metric, value, channel dimension) of each EMF document the handler printed."""
    found = []
    for line in out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                found.append(
                    (
                        metric["Name"],
                        sum(value) if isinstance(value, list) else value,
                        document.get("channel", "*"),
                    )
                )
    return found


def test_an_overflowing_douyin_push_is_acked_counted_recorded_and_replay_reports_it(stack, capsys):
    capsys.readouterr()
    answer = stack.post("douyin", *douyin_digg("m-inf", "1e400"))
    assert (answer["statusCode"], answer["body"]) == (200, "{}")  # Douyin's success: no retries
    emitted = emitted_metrics(capsys.readouterr().out)
    assert ("WebhooksUnmappable", 1.0, "douyin") in emitted
    assert ("WebhooksUnmappable", 1.0, "*") in emitted  # the service-wide series the alarm watches
    assert stack.streamed() == []  # landed through the stream, nothing to sync

    assert cli.main(["mapping-failures", "--source", "douyin"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["landing_prefix"].startswith("raw/webhooks/dt=")
    assert record["failures"][0]["kind"] == "new_video_digg"
    assert record["key"] in stack.keys("quarantine/mapping-failures/douyin/")

    good = stack.post("douyin", *douyin_digg("m-7", "7"))
    assert good["statusCode"] == 200
    assert [m["attributes"]["interaction_index"] for m in stack.streamed()] == [7]
    stack.land()
    (raw_key,) = stack.keys(record["landing_prefix"])  # both pushes, in one batched object
    assert not any(m[0] == "WebhooksUnmappable" for m in emitted_metrics(capsys.readouterr().out))

    today = datetime.now(UTC).date().isoformat()
    status = cli.main(["replay", "--source", "douyin", "--since", today, "--run-id", "r1"])
    report = json.loads(capsys.readouterr().out)
    assert status == 3
    assert (report["pushes"], report["events"]) == (2, 1)
    assert [(s["key"], s["request_id"], s["kind"]) for s in report["skipped"]] == [
        (raw_key, record["request_id"], "new_video_digg")
    ]
    assert [m["event_id"] for m in stack.queued()] == ["m-7~replay:r1"]


def test_the_good_message_of_a_partly_unmappable_doudian_push_is_queued(stack, capsys):
    def message(msg_id: str, points: str) -> str:
        data = {"p_id": 1, "pay_time": 1764000100, "post_tel": "13800138000"}
        return json.dumps({"tag": "101", "msg_id": msg_id, "data": data})[:-2] + f', "points": {points}}}}}'

    body = f"[{message('d-good', '5')}, {message('d-bad', '1e400')}]".encode()
    credentials = CHANNELS["doudian"]
    sign = hashlib.md5(credentials["app_key"].encode() + body + credentials["app_secret"].encode())  # noqa: S324
    capsys.readouterr()
    answer = stack.post("doudian", body, {"app-id": credentials["app_key"], "event-sign": sign.hexdigest()})
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"code": 0, "msg": "success"})
    assert [(m["event_id"], m["attributes"]["points"]) for m in stack.streamed()] == [("d-good", 5)]
    assert ("WebhooksUnmappable", 1.0, "doudian") in emitted_metrics(capsys.readouterr().out)
    (key,) = stack.keys("quarantine/mapping-failures/doudian/")
    record = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert record["events_enqueued"] == 1 and [f["kind"] for f in record["failures"]] == ["101"]
    assert "13800138000" not in json.dumps(record)
