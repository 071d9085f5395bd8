"""`make bench`: run the benchmarks, print the figures, write bench/RESULTS.md and the README's
benchmark section. Figures are medians of several runs; see BENCHMARKS.md for definitions."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import (
    archive,
    binlog_bridge,
    cost,
    device_health,
    domain_cpu,
    freshness,
    inventory,
    outbound,
    sdk_path,
    sidebar_customer,
    webhook_ack,
    webhook_cpu,
    wecom_peer,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU, {model}, Python {platform.python_version()}"


GOAL_REQUESTS = {"new customer": 1.5, "known customer update": 1.3, "duplicate": 1.3}
GOAL_SDK_CPU_US = {"known customer update": 1200}
GOAL_SYNC_COST = {"known customer update": 2.0}


def _goal(value: float, goal: float | None, fmt: str) -> str:
    if goal is None:
        return format(value, fmt)
    mark = "✅" if value <= goal else "❌"
    return f"{value:{fmt}} {mark} ≤ {goal:g}"


def sync_section(domain: dict[str, float], sdk: dict[str, Any], scaling: dict[int, float]) -> list[str]:
    lam = sdk["lambda"]
    lines = [
        "### Sync: ProfileSyncFunction, batches of 100 SQS messages",
        "",
        "| event kind | domain CPU µs/event (≤ 250) | SDK path CPU µs/event | DynamoDB requests/event "
        "| requests per event | write / read units per event |",
        "|---|---|---|---|---|---|",
    ]
    for kind, domain_us in domain.items():
        measured = sdk["sdk"][kind]
        ops = ", ".join(f"{op} {n:g}" for op, n in measured["requests"].items())
        lines.append(
            f"| {kind} | {_goal(domain_us, 250, '.0f')} "
            f"| {_goal(measured['cpu_us_per_event'], GOAL_SDK_CPU_US.get(kind), '.0f')} "
            f"| {_goal(measured['requests_per_event'], GOAL_REQUESTS.get(kind), '.2f')} | {ops} "
            f"| {measured['write_units_per_event']:g} / {measured['read_units_per_event']:g} |"
        )
    small, large = min(scaling), max(scaling)
    lines += [
        "",
        f"Lambda-seconds per 1,000 known updates (DynamoDB answering in {lam['latency_ms']:g} ms): "
        f"**{lam['lambda_seconds_per_1000_events']:.2f} s**; wall time is "
        f"{_goal(lam['wall_over_cpu'], 1.5, '.2f')}x the batch's CPU time.",
        "",
        f"Domain merge with {small:,} vs {large:,} events already synced: {scaling[small]:.0f} µs vs "
        f"{scaling[large]:.0f} µs per merge ({scaling[large] / scaling[small]:.2f}x; goal: flat).",
        "",
        "- *Domain CPU*: canonical event -> identity decision -> field precedence -> writes, in-memory "
        "repository.",
        "- *SDK path*: the real ProfileSyncFunction handler and boto3 clients; the network is replaced by an "
        "in-process responder with canned DynamoDB answers, so serialization and signing count. Requests and "
        "request units are counted by a botocore `before-send` hook on the handler's own client.",
        "- Staged batch: one identity read (BatchGetItem, 100 keys a page) for the whole batch, one "
        "conditional write per event, evidence and timeline entries in BatchWriteItem pages of 25. A "
        "merge takes the per-event path (resolve, redirect, copy fields, re-point links).",
    ]
    return lines


def cost_section(sdk: dict[str, Any]) -> list[str]:
    size = cost.function_size("ProfileSyncFunction")
    rows: dict[str, dict[str, float]] = {}
    for kind, measured in sdk["sdk"].items():
        message_bytes = measured["message_bytes"]
        rows[kind] = {
            **cost.sync_cost(
                cost.SyncMeasurement(
                    write_units=measured["write_units_per_event"],
                    read_units=measured["read_units_per_event"],
                    lambda_seconds=measured["wall_s_per_event"],
                    batch=sdk["lambda"]["batch"],
                    message_bytes=message_bytes,
                ),
                size,
            ),
            "enqueue": cost.queue_send_cost(message_bytes, messages_per_request=10),
        }
    known = sum(rows["known customer update"].values())
    return [
        *cost.render_table(
            "### Cost per million events: enqueued (SendMessageBatch of 10) -> synced to the profile",
            rows,
            f"known update goal ≤ ${GOAL_SYNC_COST['known customer update']:g}",
        ),
        "",
        f"Known customer update: **${known:.2f} per million** "
        f"({'✅' if known <= GOAL_SYNC_COST['known customer update'] else '❌'} goal ≤ $2). Lambda: "
        f"{size.memory_mb} MB {size.architecture} (template.yaml) times the measured wall time per event "
        "with "
        "DynamoDB answering in 5 ms. DynamoDB: request units from the items the handler sent (a profile item "
        f"of {sdk['item_bytes']['profile']} bytes, identity items of {sdk['item_bytes']['identity']} bytes, "
        "an evidence item per event; transactional writes count double). Ingest (API Gateway, webhook) is "
        "in the webhook table.",
        "",
        cost.prices_note(),
    ]


# What a WebhookFunction invocation waits for besides its own CPU, per candidate (a model for the
# cost table, not a measurement): the DynamoDB-like latency of one SQS, Kinesis or Firehose call,
# an S3 PUT's longer one.
CALL_LATENCY_S = {"S3 PUT": 0.025, "queue": 0.008}
GOAL_PUSH_COST = 1.5
PUSH_BYTES = 2048  # a WeCom safe-mode push as landed: headers, query and the encrypted XML body


def ingest_cost_section(webhook: dict[str, Any], push_bytes: int) -> list[str]:
    size = cost.function_size("WebhookFunction")
    cpu_s = statistics.median(r["cpu_us_per_push"] for r in webhook["handler"].values()) / 1e6
    walls = {  # candidate -> the calls the handler waits for
        "S3 PUT per push + SQS send": cpu_s + CALL_LATENCY_S["S3 PUT"] + CALL_LATENCY_S["queue"],
        "raw push in the SQS message, one S3 object per batch of 100": cpu_s + CALL_LATENCY_S["queue"],
        "Kinesis PutRecord, Firehose from the stream to S3": cpu_s + CALL_LATENCY_S["queue"],
    }
    rows = {
        name: cost.webhook_ingest_candidates(cost.PushMeasurement(walls[name], push_bytes), size)[name]
        for name in walls
    }
    return [
        *cost.render_table(
            "Cost per million webhook pushes, API Gateway to durably landed and queued, per landing design",
            rows,
            f"goal ≤ ${GOAL_PUSH_COST:g}",
        ),
        "",
        f"Lambda: {size.memory_mb} MB {size.architecture}, billed for the measured handler CPU "
        f"({cpu_s * 1e6:.0f} µs, median over channels) plus the calls it waits for (modelled: "
        f"{CALL_LATENCY_S['queue'] * 1e3:g} ms per queue or stream call, "
        f"{CALL_LATENCY_S['S3 PUT'] * 1e3:g} ms per S3 PUT); a push of {push_bytes:,} bytes. The sync "
        "side is in the table above.",
    ]


def render() -> str:
    domain = domain_cpu.run()
    scaling = domain_cpu.merge_scaling()
    sdk = sdk_path.run()
    acks = webhook_ack.run()
    webhook = webhook_cpu.run()
    peer = wecom_peer.run()
    archived = archive.run()
    binlog = binlog_bridge.run()
    sidebar = sidebar_customer.run()
    out = outbound.run()
    stock = inventory.run()
    devices = device_health.run()
    fresh = freshness.run()  # last: it starts the whole local stack
    commit = subprocess.run(  # noqa: S603
        [shutil.which("git") or "git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()} (commit {commit or 'n/a'}); "
        "medians of several runs; reproduce with `make bench`. ✅/❌ compare a figure with its goal.",
        "",
        *sync_section(domain, sdk, scaling),
        "",
        *cost_section(sdk),
        "",
        "### Webhooks",
        "",
        *webhook_cpu.render(webhook),
        "",
        *ingest_cost_section(webhook, PUSH_BYTES),
        "",
        *wecom_peer.render(peer),
        "",
        "Time to ack, in-process (verify, decrypt, parse, map, land, enqueue; AWS answered in-process; "
        "platforms allow 5 s, target p99 < 50 ms):",
        "",
        "| channel | p50 ms | p99 ms |",
        "|---|---|---|",
        *(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |" for name, r in acks.items()),
        "",
        "### Change data capture: the binlog bridge",
        "",
        *binlog_bridge.render(binlog),
        "",
        "### Order archive",
        "",
        *archive.render(archived),
        "",
        "### WeCom sidebar: the customer 360",
        "",
        *sidebar_customer.render(sidebar),
        "",
        "### Outbound: profile changes to WeCom tags, signed webhooks and the event bus",
        "",
        *outbound.render(out),
        "",
        "### Inventory: reservations and the priority lane",
        "",
        *inventory.render(stock),
        "",
        "### Edge device health: vibration windows -> health scores",
        "",
        *device_health.render(devices),
        "",
        "### Freshness: request or commit -> readable profile",
        "",
        *freshness.render(fresh),
    ]
    return "\n".join(lines)


def main() -> None:
    text = render()
    print(text)
    RESULTS.write_text("# Benchmark results\n\n" + text + "\n", encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    if START in readme and END in readme:
        readme = re.sub(
            re.escape(START) + r".*?" + re.escape(END), f"{START}\n{text}\n{END}", readme, flags=re.DOTALL
        )
        README.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
