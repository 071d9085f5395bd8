"""Inventory: what a reservation costs, and how fast stock moves next to profile traffic.

1. Reservations, in-process: the real InventoryApiFunction handler (`POST /inventory/reservations`)
   against moto from template.yaml. AWS requests are counted per reservation by a botocore
   `before-send` hook on the handler's clients; CPU is the calling thread's own (`thread_time`:
   moto answers on threads of its own, so its work is not counted), giving reservations/s per
   vCPU. Then 8 threads reserve the last 10 units of one SKU from 3 channels (the use case, as 8
   execution environments would): every refusal reads the stock to say where else there is
   some, which the requests per attempt show.
2. Inventory vs profile latency through `scrm local run`, under mixed load: POST /events carrying
   profile updates (each a new customer) and inventory receipts (each a new SKU) at the same
   steady rate, interleaved; readable = GET /profiles finds the customer / GET /inventory/{sku}
   shows the units. moto, in one process, answers every AWS call: it bounds these figures.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from scrm_sync import bootstrap
from scrm_sync.domain.inventory import InventoryMovement, ReservationRequest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.integration.conftest import ROOT, load_function
from tests.lambda_context import LambdaContext

from .moto_stack import moto_stack

API_VARIABLES = {
    "CHANNELS_SECRET_ARN": "ChannelCredentialsSecret",
    "RULES_PARAMETER_NAME": "RulesParameter",
    "INVENTORY_TABLE": "InventoryTable",
    "PROFILE_EVENT_BUS_NAME": "ProfileEventBus",
}
RULES = json.loads((ROOT / "config/rules.dev.json").read_text())
CHANNELS = json.loads((ROOT / "config/channels.dev.json").read_text())
SAMPLE = json.loads((ROOT / "events/inventory_api/post_reservation.json").read_text())
WAREHOUSE = "wh-shanghai"
DEFAULT_RATE = 2.0  # events per second per kind through the local stack (moto bounds it)
DEFAULT_SECONDS = 40.0
CAP_S = 30.0
POLL_S = 0.3  # readers poll the API: more often, and they become the load


class AwsRequests:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> None:
        self.calls[event_name.removeprefix("before-send.")] += 1


def _reservation_event(reservation_id: str, sku: str, channel: str = "tmall") -> dict[str, Any]:
    body = {
        "reservation_id": reservation_id,
        "location": WAREHOUSE,
        "channel": channel,
        "lines": [{"sku": sku, "quantity": 1}],
    }
    event = json.loads(json.dumps(SAMPLE))
    event["body"] = json.dumps(body)
    return event


def reservation_cost(count: int = 400, rounds: int = 3) -> dict[str, Any]:
    with (
        moto_stack(API_VARIABLES, "scrm-bench-inventory") as resources,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        resources.clients("secretsmanager").put_secret_value(
            SecretId=resources.names["ChannelCredentialsSecret"], SecretString=json.dumps(CHANNELS)
        )
        resources.clients("ssm").put_parameter(
            Name=resources.names["RulesParameter"], Value=json.dumps(RULES), Type="String", Overwrite=True
        )
        bootstrap.reset()
        app = load_function("inventory_api")
        sku = f"BENCH-{uuid.uuid4().hex[:6]}"
        stock = InventoryMovement(kind="receipt", sku=sku, location=WAREHOUSE, quantity=count * rounds + 100)
        bootstrap.inventory().apply("bench", f"seed-{sku}", bootstrap.inventory().now(), stock)
        for n in range(20):  # warm-up: the secret, the rules, the clients, the first connections
            app.lambda_handler(_reservation_event(f"warm-{sku}-{n}", sku), LambdaContext())
        meter = AwsRequests()
        for service in ("dynamodb", "secretsmanager", "ssm", "events"):
            bootstrap.client(service).meta.events.register("before-send", meter, unique_id="bench-inventory")
        statuses: Counter[int] = Counter()
        cpu_rounds, wall_rounds = [], []
        for round_number in range(rounds):  # medians of several rounds: these machines are noisy
            meter.calls.clear()
            cpu_start, wall_start = time.thread_time(), time.perf_counter()
            for n in range(count):
                event = _reservation_event(f"r{round_number}-{sku}-{n}", sku)
                statuses[app.lambda_handler(event, LambdaContext())["statusCode"]] += 1
            cpu_rounds.append(time.thread_time() - cpu_start)
            wall_rounds.append(time.perf_counter() - wall_start)
        cpu, wall = statistics.median(cpu_rounds), statistics.median(wall_rounds)
        sequential = dict(meter.calls)

        # contention: 8 threads, 3 channels, the last 10 units of another SKU
        last = f"LAST-{uuid.uuid4().hex[:6]}"
        seed = InventoryMovement(kind="receipt", sku=last, location=WAREHOUSE, quantity=10)
        bootstrap.inventory().apply("bench", f"seed-{last}", bootstrap.inventory().now(), seed)
        meter.calls.clear()
        attempts = [(f"{c}-{last}-{n}", c) for n in range(8) for c in ("tmall", "doudian", "youzan")]

        # the use case itself on 8 threads: Powertools keeps the current request in class state,
        # so a handler module serves one invocation at a time per process (as Lambda runs it)
        use_case = bootstrap.inventory()

        def reserve(attempt: tuple[str, str]) -> int:
            request = ReservationRequest.model_validate(
                json.loads(_reservation_event(attempt[0], last, attempt[1])["body"])
            )
            return {"reserved": 201, "exists": 200, "short": 409}[use_case.reserve(request).status]

        with ThreadPoolExecutor(8) as pool:
            contended = Counter(pool.map(reserve, attempts))
        stock_after = cast(dict[str, int], bootstrap.inventory().stock(last)["total"])
    return {
        "reservations": count,
        "rounds": rounds,
        "statuses": dict(statuses),
        "cpu_ms_per_reservation": 1000 * cpu / count,
        "reservations_per_vcpu_second": count / cpu if cpu else None,
        "wall_ms_per_reservation": 1000 * wall / count,
        "requests_per_reservation": {op: n / count for op, n in sorted(sequential.items())},
        "contention": {
            "attempts": len(attempts),
            "statuses": dict(contended),
            "requests_per_attempt": {op: n / len(attempts) for op, n in sorted(meter.calls.items())},
            "available_after": stock_after["available"],
        },
    }


# --- latency under mixed load --------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _profile_event(run: str, n: int) -> tuple[dict[str, Any], str]:
    phone = f"139{(int(run, 16) * 1000 + n) % 10**8:08d}"
    event = {
        "event_id": f"bench-mixed-{run}-{n}",
        "source": "mdm",
        "type": "profile.updated",
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "identifiers": [{"type": "phone", "value": phone}],
        "attributes": {"member_level": "gold"},
    }
    return event, f"/profiles?type=phone&value={phone}"


def _stock_event(run: str, n: int) -> tuple[dict[str, Any], str]:
    sku = f"MIX-{run}-{n}"
    event = {
        "event_id": f"bench-stock-{run}-{n}",
        "source": "wms",
        "type": "inventory",
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "inventory": {"kind": "receipt", "sku": sku, "location": WAREHOUSE, "quantity": 5},
    }
    return event, f"/inventory/{sku}"


def _readable(stack: RunningStack, kind: str, path: str) -> bool:
    with contextlib.suppress(OSError):
        status, body = stack.call("GET", path)
        if kind == "profile":
            return status == 200
        return status == 200 and body["total"]["on_hand"] == 5
    return False


def _timed(stack: RunningStack, kind: str, event: dict[str, Any], path: str) -> float | None:
    started = time.monotonic()
    status, _ = stack.call("POST", "/events", event)
    if status != 202:
        return None
    while time.monotonic() - started < CAP_S:
        if _readable(stack, kind, path):
            return time.monotonic() - started
        time.sleep(POLL_S)
    return None


def mixed_latency(rate: float | None = None, seconds: float | None = None) -> dict[str, Any]:
    rate = rate or float(os.environ.get("SCRM_BENCH_INVENTORY_RATE", DEFAULT_RATE))
    seconds = seconds or float(os.environ.get("SCRM_BENCH_INVENTORY_SECONDS", DEFAULT_SECONDS))
    count = max(1, round(rate * seconds))
    results: dict[str, list[float | None]] = {"inventory": [], "profile": []}
    lock = threading.Lock()
    with start_local_stack() as stack:
        run = uuid.uuid4().hex[:6]
        for n in range(3):  # warm-up: each function's first environment
            _timed(stack, "profile", *_profile_event(run, 90_000 + n))
            _timed(stack, "inventory", *_stock_event(run, 90_000 + n))

        def one(kind: str, n: int) -> None:
            event, path = _profile_event(run, n) if kind == "profile" else _stock_event(run, n)
            took = _timed(stack, kind, event, path)
            with lock:
                results[kind].append(took)

        start = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            for n in range(count):
                for offset, kind in enumerate(("profile", "inventory")):
                    due = start + (n + offset / 2) / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    pool.submit(one, kind, n)
    figures: dict[str, Any] = {"rate": rate, "seconds": seconds}
    for kind, times in results.items():
        readable = [t for t in times if t is not None]
        figures[kind] = {
            "sent": len(times),
            "not_readable": len(times) - len(readable),
            "p50_s": _percentile(readable, 0.5),
            "p99_s": _percentile(readable, 0.99),
        }
    return figures


def run() -> dict[str, Any]:
    return {"cost": reservation_cost(), "latency": mixed_latency()}


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(result: dict[str, Any]) -> list[str]:
    cost, latency = result["cost"], result["latency"]
    ops = ", ".join(f"{op} {n:.2f}" for op, n in cost["requests_per_reservation"].items())
    contention = cost["contention"]
    contended_ops = ", ".join(f"{op} {n:.2f}" for op, n in contention["requests_per_attempt"].items())
    return [
        f"Reservations through the real InventoryApiFunction handler in-process (moto from template.yaml; "
        f"{cost['reservations']} one-line reservations per round, median of {cost['rounds']} rounds):",
        "",
        "| figure | value |",
        "|---|---|",
        f"| handler CPU per reservation (our thread, not moto's) | {cost['cpu_ms_per_reservation']:.2f} ms |",
        f"| reservations/s per vCPU | {cost['reservations_per_vcpu_second']:.0f} |",
        f"| AWS requests per reservation | {sum(cost['requests_per_reservation'].values()):.2f} ({ops}) |",
        f"| 8 threads, 3 channels, the last 10 units: answers | {contention['statuses']} of "
        f"{contention['attempts']}; available afterwards {contention['available_after']} |",
        f"| requests per contended attempt | {sum(contention['requests_per_attempt'].values()):.2f} "
        f"({contended_ops}) |",
        "",
        "Inventory vs profile events under mixed load through `scrm local run` "
        f"({latency['rate']:g} events/s of each kind for {latency['seconds']:g} s, interleaved; "
        "request -> readable through the API; moto in one process bounds these figures):",
        "",
        "| events | sent | p50 s | p99 s | not readable within 30 s |",
        "|---|---|---|---|---|",
        *(
            f"| {kind} | {latency[kind]['sent']} | {_seconds(latency[kind]['p50_s'])} "
            f"| {_seconds(latency[kind]['p99_s'])} | {latency[kind]['not_readable']} |"
            for kind in ("inventory", "profile")
        ),
    ]


if __name__ == "__main__":
    print("\n".join(render(run())))
