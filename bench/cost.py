"""Cost per million events, from what the other benchmarks measured: DynamoDB request units from
the items the real handler actually sent (sizes rounded up per 1 KB write / 4 KB read), SQS
requests, Lambda requests and GB-seconds (memory and architecture from template.yaml, times the
measured wall time), and for webhook pushes API Gateway and the raw landing. A model built from
measurements, at list prices: not a bill.

Prices are AWS's public on-demand list prices for us-east-1 (N. Virginia), as published when
this table was last checked (PRICES_CHECKED); China regions are priced in CNY and differ. Update
the constants, not the formulas, when prices change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrm_local import cfn_yaml

ROOT = Path(__file__).resolve().parents[1]

PRICES_CHECKED = "2026-12-02"
PRICES_REGION = "us-east-1"
# DynamoDB on-demand (prices halved on 2024-11-01): per million request units
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1e6
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1e6
# Lambda: per request, and per GB-second by architecture (first pricing tier)
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
# SQS standard queue: per request, each 64 KB chunk of a payload is one request
SQS_REQUEST = 0.40 / 1e6
SQS_CHUNK_BYTES = 64 * 1024
# API Gateway HTTP API: per request (first 300 million a month), per 512 KB increment
HTTP_API_REQUEST = 1.00 / 1e6
# S3 Standard: per PUT/COPY/POST/LIST request and per GET request
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
# Kinesis Data Streams (provisioned): per shard-hour and per million 25 KB PUT payload units
KINESIS_SHARD_HOUR = 0.015
KINESIS_PUT_PAYLOAD_UNIT = 0.014 / 1e6
KINESIS_PAYLOAD_UNIT_BYTES = 25 * 1024
KINESIS_RECORDS_PER_SHARD_SECOND = 1000
# Amazon Data Firehose: per GB ingested, each record rounded up to 5 KB
FIREHOSE_GB = 0.029
FIREHOSE_RECORD_MINIMUM_BYTES = 5 * 1024

SQS_MESSAGES_PER_RECEIVE = 10  # ReceiveMessage and DeleteMessageBatch take at most 10 messages
PEAK_EVENTS_PER_SECOND = 2300  # the product's promotion-peak target: shard-hours are spread over it


def dynamodb_item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (strings and binaries by
    length, numbers by significant digits, maps and lists with their 3-byte overhead and 1 byte
    per element)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind in ("S", "B"):
        return len(content.encode()) if isinstance(content, str) else len(content)
    if kind == "N":
        digits = content.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in content.items())
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in content)
    if kind in ("SS", "BS"):
        return sum(len(v.encode()) if isinstance(v, str) else len(v) for v in content)
    if kind == "NS":
        return sum(_value_bytes({"N": v}) for v in content)
    raise ValueError(f"unknown DynamoDB type {kind}")


def write_units(item_bytes: int, transactional: bool = False) -> int:
    return math.ceil(max(item_bytes, 1) / 1024) * (2 if transactional else 1)


def read_units(item_bytes: int) -> int:
    return math.ceil(max(item_bytes, 1) / 4096)  # strongly consistent


@dataclass(frozen=True, slots=True)
class FunctionSize:
    memory_mb: int
    architecture: str

    @property
    def gb_second(self) -> float:
        return LAMBDA_GB_SECOND[self.architecture]


def function_size(logical_id: str, template_path: Path = ROOT / "template.yaml") -> FunctionSize:
    """The function's memory and architecture as deployed (its own properties over Globals)."""
    template = cfn_yaml.load(template_path)
    defaults = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][logical_id].get("Properties", {})
    memory = int(own.get("MemorySize", defaults.get("MemorySize", 128)))
    architecture = (own.get("Architectures") or defaults.get("Architectures") or ["x86_64"])[0]
    return FunctionSize(memory, str(architecture))


@dataclass(frozen=True, slots=True)
class SyncMeasurement:
    """Per event, for a full batch, from bench/sdk_path.py."""

    write_units: float
    read_units: float
    lambda_seconds: float  # wall time per event (DynamoDB answering at a realistic latency)
    batch: int  # events per invocation (one Lambda request per batch)
    message_bytes: int  # the SQS message an event travels in


def sync_cost(measured: SyncMeasurement, size: FunctionSize) -> dict[str, float]:
    """Dollars per million events from the queue to the profile."""
    receives = 2 / SQS_MESSAGES_PER_RECEIVE  # ReceiveMessage + DeleteMessageBatch, 10 at a time
    return {
        "DynamoDB": 1e6
        * (
            measured.write_units * DYNAMODB_WRITE_REQUEST_UNIT
            + measured.read_units * DYNAMODB_READ_REQUEST_UNIT
        ),
        "Lambda": 1e6
        * (
            LAMBDA_REQUEST / measured.batch + measured.lambda_seconds * size.memory_mb / 1024 * size.gb_second
        ),
        "SQS": 1e6 * SQS_REQUEST * receives * math.ceil(measured.message_bytes / SQS_CHUNK_BYTES),
    }


def queue_send_cost(message_bytes: int, messages_per_request: int = 1) -> float:
    """Dollars per million events for putting them on the ingest queue."""
    return 1e6 * SQS_REQUEST * math.ceil(message_bytes / SQS_CHUNK_BYTES) / messages_per_request


@dataclass(frozen=True, slots=True)
class PushMeasurement:
    """Per webhook push, from the webhook benchmarks."""

    lambda_seconds: float  # billed wall time of the WebhookFunction per push
    push_bytes: int  # the raw landing document


def webhook_ingest_candidates(measured: PushMeasurement, size: FunctionSize) -> dict[str, dict[str, float]]:
    """Dollars per million pushes, API Gateway to durably landed and enqueued, for each way of
    landing the raw push. Each candidate's wall time is the handler's plus its own calls."""
    fixed = {
        "API Gateway": 1e6 * HTTP_API_REQUEST,
        "Lambda": 1e6 * (LAMBDA_REQUEST + measured.lambda_seconds * size.memory_mb / 1024 * size.gb_second),
    }
    sqs_send = queue_send_cost(measured.push_bytes)
    firehose = 1e6 * FIREHOSE_GB * max(measured.push_bytes, FIREHOSE_RECORD_MINIMUM_BYTES) / 1024**3
    kinesis_units = math.ceil(measured.push_bytes / KINESIS_PAYLOAD_UNIT_BYTES)
    shards = math.ceil(PEAK_EVENTS_PER_SECOND / KINESIS_RECORDS_PER_SHARD_SECOND)
    kinesis = 1e6 * (
        KINESIS_PUT_PAYLOAD_UNIT * kinesis_units
        + KINESIS_SHARD_HOUR * shards / (PEAK_EVENTS_PER_SECOND * 3600)
    )
    return {
        "S3 PUT per push + SQS send": {**fixed, "landing": 1e6 * S3_PUT, "queue": sqs_send},
        "raw push in the SQS message, one S3 object per batch of 100": {
            **fixed,
            "landing": 1e6 * S3_PUT / 100,
            "queue": sqs_send,
        },
        "Kinesis PutRecord, Firehose from the stream to S3": {
            **fixed,
            "landing": firehose,
            "queue": kinesis,
        },
    }


def render_table(title: str, rows: Mapping[str, Mapping[str, float]], goal: str) -> list[str]:
    parts = sorted({part for row in rows.values() for part in row})
    lines = [
        title,
        "",
        "| " + " | ".join(["", *parts, f"total $ / million ({goal})"]) + " |",
        "|" + "---|" * (len(parts) + 2),
    ]
    for name, row in rows.items():
        cells = [f"{row.get(part, 0.0):.3f}" for part in parts]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{sum(row.values()):.2f}** |")
    return lines


def prices_note() -> str:
    per_million = {
        "DynamoDB write units": DYNAMODB_WRITE_REQUEST_UNIT,
        "read units": DYNAMODB_READ_REQUEST_UNIT,
        "Lambda requests": LAMBDA_REQUEST,
        "SQS requests": SQS_REQUEST,
        "HTTP API requests": HTTP_API_REQUEST,
        "S3 PUTs": S3_PUT,
    }
    listed = ", ".join(f"{name} ${price * 1e6:.3f}/M" for name, price in per_million.items())
    return (
        f"List prices: {PRICES_REGION} on-demand, checked {PRICES_CHECKED}: {listed}, Lambda arm64 "
        f"${LAMBDA_GB_SECOND['arm64']}/GB-s, Firehose ${FIREHOSE_GB}/GB with 5 KB records, Kinesis "
        f"${KINESIS_SHARD_HOUR}/shard-hour spread over {PEAK_EVENTS_PER_SECOND:,} events/s (constants in "
        "bench/cost.py)."
    )
