"""Outbound sync: what a profile change costs on its way out, and how long it takes to arrive.

1. Requests per change (in-process, moto from template.yaml, the fake WeCom, a verifying webhook
   receiver): customers followed by two members each change `member_level`; the real handlers run
   the way Lambda runs them: ChangeFeedFunction over the stream records (profiles and identity),
   then each destination function over what its queue holds. AWS requests are counted per
   function by a botocore `before-send` hook on its clients, WeCom calls at the fake, POSTs at the
   receiver. Cold-start work (the corp's tag group, tokens, the secret and rules) is done in a
   warm-up round and not counted.
2. Change -> delivered through `scrm local run` (as the e2e tests start it): one `POST /events` per
   change at a steady rate, each to another customer; the time from the request's start to the
   signed webhook's arrival at the receiver, and to the `mark_tag` call's arrival at the fake WeCom
   the stack serves. moto answers every AWS call of the stack in one process on this machine, so
   the figures are bounded by that, not by AWS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrm_local.event_records import sqs_record
from scrm_sync import bootstrap
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.followers import follower_field

from tests.dynamodb_streams import StreamTail
from tests.e2e.conftest import RunningStack, start_local_stack
from tests.fake_receiver import RECEIVER_SECRET, FakeReceiver, running_receiver
from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, running_fake_wecom
from tests.integration.conftest import ROOT, load_function
from tests.lambda_context import LambdaContext

from .moto_stack import moto_stack

MEMBERS = ("zhangsan", "lisi")
RULES = json.loads((ROOT / "config/rules.dev.json").read_text())
FEED_VARIABLES = {
    "RULES_PARAMETER_NAME": "RulesParameter",
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "WECOM_TAG_QUEUE_URL": "WeComTagQueue",
    "WEBHOOK_DELIVERY_QUEUE_URL": "WebhookDeliveryQueue",
    "EVENT_BUS_QUEUE_URL": "EventBusQueue",
    "PROFILES_TABLE": "ProfilesTable",
    "IDENTITY_TABLE": "IdentityTable",
    "TIMELINE_TABLE": "TimelineTable",
    "CHECKPOINTS_TABLE": "CheckpointsTable",
    "PROFILE_EVENT_BUS_NAME": "ProfileEventBus",
    "PRIVACY_SALT_SECRET_ARN": "PrivacySaltSecret",
}
DESTINATIONS = (
    ("WeComTagFunction", "wecom_tags", "WeComTagQueue"),
    ("WebhookDeliveryFunction", "webhook_delivery", "WebhookDeliveryQueue"),
    ("EventBusDeliveryFunction", "event_bus_delivery", "EventBusQueue"),
)
DEFAULT_RATE = 2.0  # changes per second through the local stack (moto in one process bounds it)
DEFAULT_SECONDS = 45.0


class AwsRequests:
    """Counts AWS requests by `service.Operation` (answers nothing)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.active = False

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> None:
        if self.active:  # event_name: before-send.<service>.<Operation>
            self.calls[event_name.removeprefix("before-send.")] += 1


def _metered(meter: AwsRequests) -> None:
    for service in ("dynamodb", "sqs", "events", "secretsmanager", "ssm"):
        events = bootstrap.client(service).meta.events
        events.unregister("before-send", unique_id="bench-outbound")
        events.register("before-send", meter, unique_id="bench-outbound")


@contextmanager
def _in_process(receiver_url: str) -> Iterator[tuple[Any, FakeWeCom]]:
    with moto_stack(FEED_VARIABLES, "scrm-bench-outbound") as resources, running_fake_wecom() as wecom:
        channels = {
            "wecom": {"corp_id": CORP_ID, "secret": SECRET, "api_base": wecom.base_url},
            "outbound_webhooks": {"erp": {"url": receiver_url, "secret": RECEIVER_SECRET}},
        }
        resources.clients("secretsmanager").put_secret_value(
            SecretId=resources.names["ChannelCredentialsSecret"], SecretString=json.dumps(channels)
        )
        resources.clients("ssm").put_parameter(
            Name=resources.names["RulesParameter"], Value=json.dumps(RULES), Type="String", Overwrite=True
        )
        bootstrap.reset()
        yield resources, wecom


def _contact_event(n: int, run: str) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "event_id": f"bench-follow-{run}-{n}",
            "source": "wecom",
            "type": "profile.updated",
            "occurred_at": "2026-12-01T09:00:00+08:00",
            "identifiers": [{"type": "wecom_external_userid", "value": f"wmB{run}{n}", "scope": CORP_ID}],
            "attributes": {follower_field(m): m for m in MEMBERS},
        }
    )


def _level_event(n: int, run: str, level: str, round_number: int) -> CanonicalEvent:
    return CanonicalEvent.model_validate(
        {
            "event_id": f"bench-level-{run}-{n}-{round_number}",
            "source": "mdm",
            "type": "profile.updated",
            "occurred_at": datetime(2026, 12, 2, 9, round_number, tzinfo=UTC).isoformat(),
            "identifiers": [{"type": "wecom_external_userid", "value": f"wmB{run}{n}", "scope": CORP_ID}],
            "attributes": {"member_level": level},
        }
    )


def requests_per_change(customers: int = 20) -> dict[str, Any]:
    with running_receiver() as receiver, _in_process(receiver.url) as (resources, wecom):
        clients = resources.clients
        feed = load_function("change_feed")
        destinations = [
            (name, load_function(directory), resources.names[queue])
            for name, directory, queue in DESTINATIONS
        ]
        tails = [StreamTail(clients, resources.names[t]) for t in ("ProfilesTable", "IdentityTable")]
        sqs = clients("sqs")
        meter = AwsRequests()
        _metered(meter)
        run = uuid.uuid4().hex[:6]
        per_function: dict[str, Counter[str]] = {}

        def deliver(counted: bool) -> None:
            records = [r for tail in tails for r in tail.read()]
            meter.calls.clear()
            meter.active = counted
            for start in range(0, len(records), 100):
                feed.lambda_handler({"Records": records[start : start + 100]}, LambdaContext())
            per_function.setdefault("ChangeFeedFunction", Counter()).update(meter.calls if counted else {})
            for name, handler, queue_url in destinations:
                arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                while True:
                    meter.active = False
                    messages = sqs.receive_message(
                        QueueUrl=queue_url,
                        MaxNumberOfMessages=10,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    if not messages:
                        break
                    meter.calls.clear()
                    meter.active = counted
                    answer = handler.lambda_handler(
                        {"Records": [sqs_record(m, arn) for m in messages]}, LambdaContext()
                    )
                    meter.active = False
                    failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                    if failed:
                        raise RuntimeError(f"{name} failed {len(failed)} messages")
                    for message in messages:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    if counted:
                        per_function.setdefault(name, Counter()).update(meter.calls)
            meter.active = False

        quiet = contextlib.redirect_stdout(io.StringIO())  # the handlers' metric lines (EMF)
        for n in range(customers):
            bootstrap.sync().apply(_contact_event(n, run))
        for n in range(customers):  # warm-up: tokens, the tag group, the secret and the rules
            bootstrap.sync().apply(_level_event(n, run, "silver", 1))
        with quiet:
            deliver(counted=False)
        wecom_before = len(wecom.calls)
        posts_before = receiver.attempt_count
        for n in range(customers):
            bootstrap.sync().apply(_level_event(n, run, "gold", 2))
        with contextlib.redirect_stdout(io.StringIO()):
            deliver(counted=True)
        wecom_calls = Counter(wecom.calls[wecom_before:])
        return {
            "customers": customers,
            "members": len(MEMBERS),
            "aws": {name: dict(calls) for name, calls in per_function.items()},
            "wecom": dict(wecom_calls),
            "webhook_posts": receiver.attempt_count - posts_before,
            "tags_right": all(
                wecom.tag_names(m, f"wmB{run}{n}") == {"金卡"} for n in range(customers) for m in MEMBERS
            ),
        }


# --- change -> delivered through the local stack -------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _seed_contacts(stack: RunningStack, run: str, count: int) -> list[str]:
    externals = [f"wmL{run}{n}" for n in range(count)]
    events = [
        {
            "event_id": f"lat-follow-{run}-{n}",
            "source": "wecom",
            "type": "profile.updated",
            "occurred_at": "2026-12-01T09:00:00+08:00",
            "identifiers": [{"type": "wecom_external_userid", "value": external, "scope": CORP_ID}],
            "attributes": {follower_field(m): m for m in MEMBERS},
        }
        for n, external in enumerate(externals)
    ]
    for start in range(0, len(events), 100):
        status, report = stack.call("POST", "/events", {"events": events[start : start + 100]})
        if status != 202:
            raise RuntimeError(f"POST /events answered {status}: {report}")
    stack.wait_drained(timeout=300)
    return externals


def _change(stack: RunningStack, external: str, run: str, n: int, level: str) -> tuple[str, float, float]:
    event_id = f"lat-{run}-{n}"
    event = {
        "event_id": event_id,
        "source": "mdm",
        "type": "profile.updated",
        "occurred_at": datetime.now(UTC).isoformat(),
        "identifiers": [{"type": "wecom_external_userid", "value": external, "scope": CORP_ID}],
        "attributes": {"member_level": level},
    }
    wall, started = time.time(), time.monotonic()
    status, report = stack.call("POST", "/events", event)
    if status != 202:
        raise RuntimeError(f"POST /events answered {status}: {report}")
    return event_id, started, wall


def _arrivals(receiver: FakeReceiver) -> dict[str, float]:
    """event id of the member_level change -> when its webhook arrived (monotonic)."""
    found: dict[str, float] = {}
    with receiver.lock:
        for attempt in receiver.attempts:
            if attempt.status != 200:
                continue
            fields = json.loads(attempt.body).get("fields", {})
            event_id = fields.get("member_level", {}).get("event_id")
            if event_id:
                found.setdefault(event_id, attempt.at)
    return found


def change_to_delivered(rate: float | None = None, seconds: float | None = None) -> dict[str, Any]:
    rate = rate or float(os.environ.get("SCRM_BENCH_OUTBOUND_RATE", DEFAULT_RATE))
    seconds = seconds or float(os.environ.get("SCRM_BENCH_OUTBOUND_SECONDS", DEFAULT_SECONDS))
    count = max(1, round(rate * seconds))
    with running_receiver() as receiver, tempfile.TemporaryDirectory() as folder:
        channels = json.loads((ROOT / "config/channels.dev.json").read_text())
        channels["outbound_webhooks"] = {
            "erp": {"url": receiver.url, "secret": RECEIVER_SECRET, "fields": ["member_level"]}
        }
        path = Path(folder) / "channels.json"
        path.write_text(json.dumps(channels, ensure_ascii=False))
        with start_local_stack({"SCRM_CHANNELS_FILE": str(path)}) as stack:
            run = uuid.uuid4().hex[:6]
            externals = _seed_contacts(stack, run, count + 5)
            for n in range(5):  # warm-up: every function's first environment, the tag group, tokens
                _change(stack, externals[count + n], run, 10_000 + n, "silver")
            stack.wait_drained(timeout=300)
            sent: list[tuple[str, str, float, float]] = []  # event id, external, monotonic, wall
            lock = threading.Lock()
            threads = []
            start = time.monotonic()
            for n in range(count):
                due = start + n / rate
                time.sleep(max(0.0, due - time.monotonic()))

                def one(n: int = n) -> None:
                    event_id, started, wall = _change(stack, externals[n], run, n, "gold")
                    with lock:
                        sent.append((event_id, externals[n], started, wall))

                thread = threading.Thread(target=one)
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            stack.wait_drained(timeout=300)
            deadline = time.monotonic() + 60
            while len(_arrivals(receiver)) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.2)
            webhook = _arrivals(receiver)
            status, state = stack.call("GET", "/__local/wecom/__inspect", api_key=None)
            marks: dict[str, list[float]] = {}
            for request in state["requests"] if status == 200 else []:
                if request["path"].endswith("/mark_tag"):
                    marks.setdefault(request["body"]["external_userid"], []).append(request["at"])
    webhook_s = [webhook[e] - started for e, _, started, _ in sent if e in webhook]
    tag_s = [
        max(at for at in marks[x] if at >= wall) - wall  # the last member's call: the change is delivered
        for _, x, _, wall in sent
        if any(at >= wall for at in marks.get(x, []))
    ]
    return {
        "rate": rate,
        "seconds": seconds,
        "changes": len(sent),
        "webhook": {
            "p50_s": _percentile(webhook_s, 0.5),
            "p99_s": _percentile(webhook_s, 0.99),
            "delivered": len(webhook_s),
        },
        "wecom_tags": {
            "p50_s": _percentile(tag_s, 0.5),
            "p99_s": _percentile(tag_s, 0.99),
            "delivered": len(tag_s),
        },
    }


def run() -> dict[str, Any]:
    return {"requests": requests_per_change(), "latency": change_to_delivered()}


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(result: dict[str, Any]) -> list[str]:
    requests, latency = result["requests"], result["latency"]
    changes = requests["customers"]
    lines = [
        f"Requests per profile change ({changes} customers, each followed by {requests['members']} members, "
        "change `member_level`; every destination on; the real handlers in-process against moto; "
        f"tags right afterwards: {'yes' if requests['tags_right'] else 'NO'}):",
        "",
        "| function | AWS requests per change | by operation |",
        "|---|---|---|",
    ]
    total = 0.0
    for name, calls in requests["aws"].items():
        per_change = sum(calls.values()) / changes
        total += per_change
        detail = ", ".join(f"{op} {n / changes:.2f}" for op, n in sorted(calls.items()))
        lines.append(f"| {name} | {per_change:.2f} | {detail} |")
    lines.append(f"| **all** | **{total:.2f}** | |")
    wecom = ", ".join(
        f"`{path.rsplit('/', 1)[-1]}` {n / changes:.2f}" for path, n in sorted(requests["wecom"].items())
    )
    lines += [
        "",
        f"WeCom calls per change: {wecom or 'none'} (one `mark_tag` per following member); "
        f"webhook POSTs per change: {requests['webhook_posts'] / changes:.2f} (one subscription).",
        "",
        f"Change -> delivered through `scrm local run` ({latency['changes']} changes at "
        f"{latency['rate']:g}/s, each `POST /events` to another customer; moto in one process bounds "
        "these figures):",
        "",
        "| destination | p50 s | p99 s | delivered |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("webhook", "signed webhook at the receiver"),
        ("wecom_tags", "`mark_tag` at WeCom (last member)"),
    ):
        figures = latency[name]
        lines.append(
            f"| {label} | {_seconds(figures['p50_s'])} | {_seconds(figures['p99_s'])} | "
            f"{figures['delivered']}/{latency['changes']} |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
