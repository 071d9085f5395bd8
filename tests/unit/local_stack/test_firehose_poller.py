"""The local stand-in for a Kinesis-sourced Firehose delivery stream: the template's delivery stream
read as AWS configures it, prefixes evaluated as Firehose does, and records buffered until the
size or (capped) interval hint, then written as one GZIP object."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrm_local import firehose_poller
from scrm_local.firehose_poller import MAX_LOCAL_INTERVAL, FirehosePoller, evaluate_prefix, object_key
from scrm_local.settings import Settings
from scrm_local.template import DeliveryStreamSpec, Template

ROOT = Path(__file__).resolve().parents[3]


def spec(**overrides: Any) -> DeliveryStreamSpec:
    values: dict[str, Any] = {
        "logical_id": "RawLandingDeliveryStream",
        "name": "st-RawLandingDeliveryStream",
        "stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/st-WebhookStream",
        "bucket": "st-landingbucket",
        "prefix": "raw/webhooks/dt=!{timestamp:yyyy-MM-dd}/",
        "error_prefix": "raw/webhooks-errors/!{firehose:error-output-type}/",
        "interval_seconds": 300.0,
        "size_bytes": 100,
        "compression": "GZIP",
        **overrides,
    }
    return DeliveryStreamSpec(**values)


def test_the_templates_delivery_stream_reads_the_webhook_stream_into_the_landing_bucket():
    template = Template.load(
        Settings(template_path=ROOT / "template.yaml", project_root=ROOT, stack_name="st")
    )
    (delivery,) = template.delivery_streams
    assert delivery.name == "st-RawLandingDeliveryStream"
    assert delivery.stream_arn.endswith(":stream/st-WebhookStream")
    assert delivery.bucket == "st-landingbucket"
    assert delivery.prefix == "raw/webhooks/dt=!{timestamp:yyyy-MM-dd}/"
    assert delivery.compression == "GZIP" and delivery.interval_seconds == 300
    assert delivery.size_bytes == 64 * 1024 * 1024


def test_prefix_expressions_are_evaluated_like_firehose():
    at = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
    assert evaluate_prefix("raw/webhooks/dt=!{timestamp:yyyy-MM-dd}/", at) == "raw/webhooks/dt=2026-11-24/"
    assert evaluate_prefix("x/!{timestamp:yyyy/MM/dd/HH}/", at) == "x/2026/11/24/23/"
    assert evaluate_prefix("e/!{firehose:error-output-type}/", at) == "e/processing-failed/"
    with pytest.raises(ValueError):
        evaluate_prefix("!{partitionKeyFromQuery:channel}/", at)
    key = object_key(spec(), at)
    assert key.startswith("raw/webhooks/dt=2026-11-24/st-RawLandingDeliveryStream-1-2026-11-24-23-59-58-")
    assert key.endswith(".gz")


class FakeReader:
    def __init__(self) -> None:
        self.waiting: list[bytes] = []

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str]:
        batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
        records = [
            {"kinesis": {"data": base64.b64encode(d).decode(), "approximateArrivalTimestamp": 1764028800.5}}
            for d in batch
        ]
        return records, iterator


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[Key] = Body


def poller(delivery: DeliveryStreamSpec) -> tuple[FirehosePoller, FakeReader, FakeS3]:
    s3, reader = FakeS3(), FakeReader()
    running = FirehosePoller(delivery, lambda service: s3)  # type: ignore[arg-type]
    running.reader = reader  # type: ignore[assignment]
    running.iterators = {"shardId-000000000000": "it"}
    return running, reader, s3


def test_records_are_buffered_until_the_capped_interval_then_written_as_one_gzip_object(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(firehose_poller.time, "monotonic", lambda: clock[0])
    running, reader, s3 = poller(spec(size_bytes=10_000))
    assert running.interval == MAX_LOCAL_INTERVAL  # the template's 300 s, capped locally

    reader.waiting = [b'{"n": 1}\n', b'{"n": 2}\n']
    running.poll_once()
    assert s3.objects == {} and running.backlog() == 2  # buffered: not landed yet, still backlog
    clock[0] += MAX_LOCAL_INTERVAL
    running.poll_once()
    ((key, body),) = s3.objects.items()
    assert key.startswith("raw/webhooks/dt=2025-11-25/") and key.endswith(".gz")
    assert gzip.decompress(body) == b'{"n": 1}\n{"n": 2}\n' and running.backlog() == 0


def test_the_size_hint_writes_an_object_before_the_interval(monkeypatch):
    monkeypatch.setattr(firehose_poller.time, "monotonic", lambda: 5.0)
    running, reader, s3 = poller(spec(size_bytes=20, compression="UNCOMPRESSED"))
    reader.waiting = [b"x" * 12 + b"\n", b"y" * 12 + b"\n"]
    running.poll_once()
    ((key, body),) = s3.objects.items()
    assert body == b"x" * 12 + b"\n" + b"y" * 12 + b"\n" and not key.endswith(".gz")


def test_a_failed_write_keeps_the_buffer_for_the_next_poll(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(firehose_poller.time, "monotonic", lambda: clock[0])
    running, reader, s3 = poller(spec(size_bytes=10_000))
    reader.waiting = [b'{"n": 1}\n']

    def refuse(**_: Any) -> None:
        raise ConnectionError("s3 down")

    monkeypatch.setattr(s3, "put_object", refuse)
    running.poll_once()
    clock[0] += 5
    running.poll_once()
    assert running.backlog() == 1  # kept, not dropped
    monkeypatch.undo()
    monkeypatch.setattr(firehose_poller.time, "monotonic", lambda: 10.0)
    running.poll_once()
    assert len(s3.objects) == 1 and running.backlog() == 0
