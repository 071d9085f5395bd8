"""Figures 2 and 3: the real ProfileSyncFunction handler with real boto3 clients, the network
replaced by an in-process responder that answers each DynamoDB request with a canned response.
boto3 serialization and request signing count; the network does not (figure 2). With the
responder sleeping a realistic DynamoDB latency, the wall time of a 100-message batch gives the
Lambda-seconds per 1,000 events (figure 3)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import statistics
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.httpsession import URLLib3Session
from scrm_sync import bootstrap

from . import cost
from .workload import known_update, merge, new_customer

ROOT = Path(__file__).resolve().parents[1]
ENV = {  # what every bench function gets: a region, dummy credentials, Powertools
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench-not-a-key",
    "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
SYNC_ENV = {  # and ProfileSyncFunction's own variables (template.yaml)
    **ENV,
    "PROFILES_TABLE": "bench-profiles",
    "IDENTITY_TABLE": "bench-identity",
    "TIMELINE_TABLE": "bench-timeline",
    "RULES_PARAMETER_NAME": "bench-rules",
    "PRIVACY_SALT_SECRET_ARN": "bench-privacy-salt",
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _response(request: Any, status: int, payload: dict[str, Any]) -> AWSResponse:
    body = json.dumps(payload).encode()
    headers = HTTPHeaders()
    for name, value in {
        "x-amzn-requestid": str(uuid.uuid4()),
        "x-amz-crc32": str(zlib.crc32(body)),  # botocore verifies DynamoDB response checksums
        "content-type": "application/x-amz-json-1.0",
    }.items():
        headers[name] = value
    return AWSResponse(request.url, status, headers, _Raw(body))


class CannedDynamoDB:
    """Answers as DynamoDB would for one scenario: 'new', 'known', 'duplicate' or 'merge'."""

    def __init__(self, scenario: str, latency: float = 0.0) -> None:
        self.scenario = scenario
        self.latency = latency

    def __call__(self, request: Any) -> AWSResponse:
        if self.latency:
            time.sleep(self.latency)
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        operation = target.rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        if target.startswith("AmazonSSM"):
            return _response(
                request,
                200,
                {"Parameter": {"Name": body["Name"], "Value": "{}", "Type": "String", "Version": 1}},
            )
        if target.startswith("secretsmanager"):  # the suppression list's salt
            secret = {"Name": body["SecretId"], "SecretString": json.dumps({"salt": "bench-" + "s" * 58})}
            return _response(request, 200, secret)
        handler: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]] = getattr(
            self, f"_{operation}", lambda _: (200, {})
        )
        status, payload = handler(body)
        return _response(request, status, payload)

    def _BatchGetItem(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ((table, spec),) = body["RequestItems"].items()
        if self.scenario == "new":
            return 200, {"Responses": {table: []}}
        items = [
            {
                "identifier_key": key["identifier_key"],
                "profile_id": {"S": self._owner(key["identifier_key"]["S"])},
            }
            for key in spec["Keys"]
        ]
        return 200, {"Responses": {table: items}}

    def _owner(self, identifier_key: str) -> str:
        """A known customer's identifiers are all on one profile; a merge event's phone and
        openid are on two."""
        if self.scenario != "merge":
            return "p_known"
        return "p_a" if identifier_key.startswith("phone#") else "p_b"

    def _UpdateItem(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.scenario == "duplicate" and ".k < :k0" in body.get("ConditionExpression", ""):
            names, values = body["ExpressionAttributeNames"], body["ExpressionAttributeValues"]
            item = {"pk": body["Key"]["pk"], "sk": body["Key"]["sk"]}
            for placeholder, name in names.items():
                if placeholder.startswith("#m"):
                    item[name] = values[":m" + placeholder[2:]]
            return 400, {
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": item,
            }
        return 200, {}

    def _GetItem(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = body["Key"]
        if body.get("ProjectionExpression") == "redirect_to":
            return 200, {"Item": {"pk": key["pk"]}}
        meta = {
            "k": {"S": "0020" + "0" * 18 + "wechat_mp|b1"},
            "s": {"S": "wechat_mp"},
            "t": {"S": "2026-11-11T00:00:00+00:00"},
            "e": {"S": "b1"},
        }
        return 200, {"Item": {**key, "v:nickname": {"S": "xm"}, "m:nickname": {"M": meta}}}

    def _Query(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        item = {
            "identifier_key": {"S": "wechat_openid#wx-bench#oBench"},
            "profile_id": {"S": "p_b"},
            "type": {"S": "wechat_openid"},
        }
        return 200, {"Items": [item], "Count": 1}

    def _BatchWriteItem(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"UnprocessedItems": {}}


class ItemSizes:
    """What a profile and an identity item weigh, as the handler writes them for a new customer
    (a known customer's update rewrites an item of that size; a read reads one)."""

    def __init__(self) -> None:
        self.profile_bytes = 1024
        self.identity_bytes = 256

    def learn(self, transact_items: list[dict[str, Any]]) -> None:
        puts = [action["Put"]["Item"] for action in transact_items if "Put" in action]
        profiles = [item for item in puts if "pk" in item]
        identities = [item for item in puts if "identifier_key" in item]
        if profiles:
            self.profile_bytes = max(cost.dynamodb_item_bytes(item) for item in profiles)
        if identities:
            self.identity_bytes = max(cost.dynamodb_item_bytes(item) for item in identities)


class RequestMeter:
    """A botocore `before-send` hook on the handler's own client: counts each DynamoDB request
    by operation and the request units it consumes (from the items it carries, or the measured
    item sizes for what it reads and updates). It answers nothing: the responder does."""

    def __init__(self, sizes: ItemSizes) -> None:
        self.sizes = sizes
        self.calls: Counter[str] = Counter()
        self.write_units = 0.0
        self.read_units = 0.0
        self.learn_sizes = True  # from the new customers' TransactWriteItems
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        writes, reads = self._units(operation, body)
        with self._lock:
            self.calls[operation] += 1
            self.write_units += writes
            self.read_units += reads

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.write_units = self.read_units = 0.0

    def _units(self, operation: str, body: dict[str, Any]) -> tuple[float, float]:
        profile, identity = self.sizes.profile_bytes, self.sizes.identity_bytes
        if operation == "BatchGetItem":
            keys = sum(len(spec["Keys"]) for spec in body["RequestItems"].values())
            return 0.0, keys * cost.read_units(identity)
        if operation == "BatchWriteItem":
            puts = [
                r["PutRequest"]["Item"]
                for rs in body["RequestItems"].values()
                for r in rs
                if "PutRequest" in r
            ]
            return float(sum(cost.write_units(cost.dynamodb_item_bytes(item)) for item in puts)), 0.0
        if operation == "TransactWriteItems":
            if self.learn_sizes:
                self.sizes.learn(body["TransactItems"])
            units = 0
            for action in body["TransactItems"]:
                if "Put" in action:
                    units += cost.write_units(
                        cost.dynamodb_item_bytes(action["Put"]["Item"]), transactional=True
                    )
                else:  # an update of a profile or identity item in place
                    units += cost.write_units(
                        profile if "pk" in next(iter(action.values()))["Key"] else identity, True
                    )
            return float(units), 0.0
        if operation == "UpdateItem":
            return float(cost.write_units(profile if "pk" in body["Key"] else identity)), 0.0
        if operation == "GetItem":
            return 0.0, float(cost.read_units(profile))
        if operation == "Query":
            return 0.0, float(cost.read_units(identity * 2))
        return 0.0, 0.0


def _load_handler() -> Any:
    path = ROOT / "functions/profile_sync/app.py"
    spec = importlib.util.spec_from_file_location("bench_profile_sync_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Context:
    function_name = "bench-ProfileSyncFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 1024
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _sqs_batch(events: list[Any]) -> dict[str, Any]:
    records = []
    for i, event in enumerate(events):
        body = event.to_message()
        records.append(
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"r-{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-ingest",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def _events(scenario: str, n: int) -> list[Any]:
    if scenario == "new":
        return [new_customer(i) for i in range(n)]
    if scenario in ("known", "duplicate"):
        return [known_update(i) for i in range(n)]
    return [merge(i)[2] for i in range(n)]


SCENARIOS = {
    "new": "new customer",
    "known": "known customer update",
    "merge": "merge",
    "duplicate": "duplicate",
}


def _metered_client(meter: RequestMeter) -> None:
    """Hang the meter on the DynamoDB client the handler's bootstrap built (one per process)."""
    events = bootstrap.client("dynamodb").meta.events
    events.unregister("before-send.dynamodb", unique_id="bench-meter")
    events.register("before-send.dynamodb", meter, unique_id="bench-meter")


def run(batch: int = 100, runs: int = 5, latency: float = 0.005) -> dict[str, Any]:
    """Per event kind: CPU per event with AWS answered in-process (figure 2), DynamoDB requests
    and request units per event counted on the handler's client, and the wall time of a batch
    with DynamoDB answering in `latency` seconds (figure 3: Lambda-seconds)."""
    results: dict[str, Any] = {"sdk": {}, "lambda": {}}
    sizes = ItemSizes()
    with mock.patch.dict(os.environ, SYNC_ENV), contextlib.redirect_stdout(io.StringIO()):
        module = _load_handler()
        for scenario, label in SCENARIOS.items():
            cpu, walls, cpu_with_latency = [], [], []
            requests: dict[str, float] = {}
            meter = RequestMeter(sizes)
            for _ in range(runs):
                responder = CannedDynamoDB(scenario)
                events = _sqs_batch(_events(scenario, batch))
                with mock.patch.object(URLLib3Session, "send", lambda _self, req, r=responder: r(req)):
                    bootstrap.reset()
                    module.lambda_handler(_sqs_batch(_events(scenario, 1)), _Context())  # cold start outside
                    start = time.process_time()
                    response = module.lambda_handler(events, _Context())
                    cpu.append((time.process_time() - start) / batch * 1e6)
                    assert not response["batchItemFailures"], response
                    # the same batch again, counted: the meter's own work stays out of the CPU figure
                    _metered_client(meter)
                    meter.clear()
                    response = module.lambda_handler(_sqs_batch(_events(scenario, batch)), _Context())
                assert not response["batchItemFailures"], response
                requests = {op: count / batch for op, count in sorted(meter.calls.items())}
                write_units, read_units = meter.write_units / batch, meter.read_units / batch

                slow = CannedDynamoDB(scenario, latency=latency)
                events = _sqs_batch(_events(scenario, batch))
                with mock.patch.object(URLLib3Session, "send", lambda _self, req, r=slow: r(req)):
                    bootstrap.reset()
                    module.lambda_handler(_sqs_batch(_events(scenario, 1)), _Context())
                    wall0, cpu0 = time.perf_counter(), time.process_time()
                    module.lambda_handler(events, _Context())
                    walls.append(time.perf_counter() - wall0)
                    cpu_with_latency.append(time.process_time() - cpu0)
            if scenario == "new":
                meter.learn_sizes = False
            results["sdk"][label] = {
                "cpu_us_per_event": statistics.median(cpu),
                "requests_per_event": sum(requests.values()),
                "requests": requests,
                "write_units_per_event": write_units,
                "read_units_per_event": read_units,
                "wall_s_per_event": statistics.median(walls) / batch,
                "message_bytes": len(_events(scenario, 1)[0].to_message().encode()),
            }
            if label == "known customer update":
                wall, cpu_s = statistics.median(walls), statistics.median(cpu_with_latency)
                results["lambda"] = {
                    "batch": batch,
                    "latency_ms": latency * 1000,
                    "wall_s_per_batch": wall,
                    "cpu_s_per_batch": cpu_s,
                    "lambda_seconds_per_1000_events": wall * 1000 / batch,
                    "wall_over_cpu": wall / cpu_s,
                }
        results["item_bytes"] = {"profile": sizes.profile_bytes, "identity": sizes.identity_bytes}
    return results
