"""Freshness through the local stack (`make bench-e2e`): how long until a change is readable.

`scrm local run` is started exactly as the e2e tests start it (tests/e2e/conftest.py), with the
binlog bridge streaming a private MariaDB (tests/mariadb.py). Three paths are driven one after
another, each at a steady rate: POST /events (a canonical event), a signed Douyin webhook push
(SHA-1 signature over the body), and an INSERT committed into the POS table `pos.members` (the
binlog bridge, as DMS would, into CdcStream). Every event is a new customer with a unique
identifier; pollers ask `GET /profiles?type=...&value=...` for a sample of them (about
TIMED_PER_SECOND a second) every POLL_INTERVAL seconds, and an event's freshness is the arrival
of the first answer that shows it minus the time its request started (or its commit returned).
Each path is warmed up first (cold starts are not timed) and the stack drained after it. Timed
events not readable within CAP_S are counted, not timed.

moto, one process, answers every AWS call of the stack, and the senders, pollers, API gateway,
Lambda workers and MariaDB share the machine: these figures are bounded by that, not by AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.mariadb import MariaDB, mariadb_available, running_mariadb

ROOT = Path(__file__).resolve().parents[1]
# The issue asks for 50 events/s; the 2-vCPU development machine does not carry it (MEASURED), so
# the default is the rate an earlier run found carried (p50 1.2-1.5 s). Override with
# SCRM_BENCH_FRESHNESS_RATE / SCRM_BENCH_FRESHNESS_SECONDS.
DEFAULT_RATE = 5.0
DEFAULT_SECONDS = 60.0
GOAL_P99_S = 2.0
DRAIN_S = 180.0  # how long the stack may take to finish one path's work before the next
CAP_S = 30.0  # an event not readable within this is counted, not timed
POLL_INTERVAL = 0.2
# Every event is sent, but only a sample is timed: each poll is a GET /profiles through the
# authorizer and ProfileApiFunction, and polling every event at 20-50 events/s would load the stack
# more than the events do (and the pollers would fall behind, timing themselves).
TIMED_PER_SECOND = 5.0
SENDERS = 8  # sender threads, so a slow request does not hold back the next
POLLERS = 4
# the Douyin credentials of config/channels.dev.json, which `scrm local run` loads by default
DOUYIN = {"client_key": "dev_douyin_client_key", "client_secret": "dev-douyin-client-secret"}
# Why the default is 5 events/s: higher rates were not carried by moto in one process here.
MEASURED = (
    "2026-12-03, 2 vCPU: at 50/s for 60 s GET /profiles and the audit chain's batches timed out and "
    "most events were not readable within 30 s; at 20/s for 30 s and 10/s for 60 s the p99 of "
    "POST /events and the binlog path was 13-30 s with up to half of the events not readable within "
    "30 s (those runs shared the machine with other work, load average 8-15)"
)

EVENTS, WEBHOOK, MYSQL = "POST /events", "signed webhook (Douyin)", "MySQL commit (binlog bridge)"


@dataclass
class Probe:
    query: str  # the GET /profiles query that finds the change once it is readable
    sent: float = 0.0
    readable: float | None = None
    failed: str | None = None  # the send was refused: never readable


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    probe: Probe = field(compare=False)


class Pollers:
    """Threads asking GET /profiles for each outstanding probe every POLL_INTERVAL until it
    answers 200 or CAP_S has passed since it was sent."""

    def __init__(self, stack: RunningStack, threads: int = POLLERS) -> None:
        self.stack = stack
        self._heap: list[_Due] = []
        self._seq = 0
        self._active = 0  # watched and not yet readable or given up: in the heap or being polled
        self._cond = threading.Condition()
        self._stop = False
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def watch(self, probe: Probe) -> None:
        with self._cond:
            self._active += 1
        self._push(probe, time.monotonic() + POLL_INTERVAL)

    def _push(self, probe: Probe, at: float) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, _Due(at, self._seq, probe))
            self._cond.notify()

    def outstanding(self) -> int:
        with self._cond:
            return self._active

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0].at > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0].at - time.monotonic()))
                if self._stop:
                    return
                due = heapq.heappop(self._heap)
            probe = due.probe
            status = 0
            if time.monotonic() - probe.sent >= CAP_S:  # a backlog of polls must not stretch the cap
                with self._cond:
                    self._active -= 1
                continue
            with contextlib.suppress(OSError):
                status, _ = self.stack.call("GET", "/profiles?" + probe.query)
            now = time.monotonic()
            if status != 200 and now - probe.sent < CAP_S:
                self._push(probe, max(now, due.at + POLL_INTERVAL))
                continue
            if status == 200:
                probe.readable = now
            with self._cond:
                self._active -= 1


def paced(rate: float, seconds: float, send: Callable[[int], Probe], pollers: Pollers) -> dict[str, Any]:
    """send(i) for i in 0..rate*seconds at steady times start + i/rate, on SENDERS threads; every
    n-th probe (about TIMED_PER_SECOND a second) is watched from the moment it was sent. Then wait
    for the last ones."""
    count = max(1, round(rate * seconds))
    every = max(1, math.ceil(rate / TIMED_PER_SECOND))  # time every n-th event
    probes: list[Probe] = []  # the timed ones and the refused ones
    sent: list[int] = []
    lags: list[float] = []  # how late each send started against its schedule

    def one(i: int, due: float) -> None:
        lags.append(time.monotonic() - due)
        try:
            probe = send(i)
        except Exception as exc:  # a timeout or a refused connection: counted as refused
            probe = Probe("", failed=repr(exc)[:120])
        if probe.failed is not None or i % every == 0:
            probes.append(probe)
        if probe.failed is None and i % every == 0:
            pollers.watch(probe)
        sent.append(i)

    start = time.monotonic() + 0.2
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="sender") as senders:
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            senders.submit(one, i, due)
    sent_for = time.monotonic() - start
    while pollers.outstanding():
        time.sleep(0.2)
    times = sorted(p.readable - p.sent for p in probes if p.readable is not None)
    failed = [p.failed for p in probes if p.failed]
    timed = [p for p in probes if p.failed is None]
    return {
        "sent": len(sent),
        "refused": len(failed),
        "refusals": sorted(set(failed))[:3],
        "timed": len(timed),
        "readable": len(times),
        "not_readable": len(timed) - len(times),
        "p50_s": _percentile(times, 0.50),
        "p99_s": _percentile(times, 0.99),
        "max_s": times[-1] if times else None,
        "send_seconds": sent_for,
        "max_send_lag_s": max(lags, default=0.0),
    }


def warm_up(stack: RunningStack, send: Callable[[int], Probe], rate: float) -> None:
    """Start the execution environments a path will use before it is timed: on a small machine
    several cold starts at once take tens of seconds each (one alone, a few), so concurrency is
    raised step by step, 1, 2, 4 ... sends at once, up to about what the rate will need (one
    more every 5 events/s, at most SENDERS), each step waiting until its events are readable (the
    sync functions start too). Failures here are not counted."""
    top = min(SENDERS, max(1, math.ceil(rate / 5)))
    sent = 0
    level = 1
    while True:
        with ThreadPoolExecutor(level) as pool:
            probes = [p for p in pool.map(_quietly(send), range(sent, sent + level)) if p.failed is None]
        sent += level
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(POLLERS) as pool:
            while probes and time.monotonic() < deadline:
                found = list(pool.map(lambda p: _quietly_get(stack, p.query), probes))
                probes = [p for p, ok in zip(probes, found, strict=True) if not ok]
                time.sleep(0.2)
        if level >= top:
            return
        level = min(top, level * 2)


def _quietly(send: Callable[[int], Probe]) -> Callable[[int], Probe]:
    def call(i: int) -> Probe:
        try:
            return send(i)
        except Exception as exc:
            return Probe("", failed=repr(exc))

    return call


def _quietly_get(stack: RunningStack, query: str) -> bool:
    with contextlib.suppress(OSError):
        return stack.call("GET", "/profiles?" + query)[0] == 200
    return False


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * q))]


# --- the three paths ------------------------------------------------------------------------------
def _profile_query(type_: str, value: str, scope: str | None = None) -> str:
    return urllib.parse.urlencode({"type": type_, "value": value, **({"scope": scope} if scope else {})})


def post_event(stack: RunningStack, run_id: str) -> Callable[[int], Probe]:
    def send(i: int) -> Probe:
        member = f"FE-{run_id}-{i}"
        event = {
            "event_id": f"fresh-{run_id}-{i}",
            "source": "mdm",
            "type": "profile.updated",
            "occurred_at": datetime.now(UTC).isoformat(),
            "identifiers": [{"type": "member_no", "value": member, "scope": "bench"}],
            "attributes": {"name": f"freshness {i}", "member_level": "gold"},
        }
        probe = Probe(_profile_query("member_no", member, "bench"), sent=time.monotonic())
        status, report = stack.call("POST", "/events", event)
        if status != 202:
            probe.failed = f"{status} {str(report)[:120]}"
        return probe

    return send


def douyin_push(stack: RunningStack, run_id: str) -> Callable[[int], Probe]:
    def send(i: int) -> Probe:
        open_id = f"open-fresh-{run_id}-{i}"
        body = json.dumps(
            {
                "event": "new_video_digg",
                "from_user_id": open_id,
                "client_key": DOUYIN["client_key"],
                "content": {"item_id": "v-fresh", "digg_count": i + 1, "create_time": int(time.time())},
            }
        ).encode()
        signature = hashlib.sha1(DOUYIN["client_secret"].encode() + body).hexdigest()  # noqa: S324 - the platform's scheme
        headers = {"X-Douyin-Signature": signature, "Msg-Id": f"m-{run_id}-{i}"}
        probe = Probe(_profile_query("douyin_openid", open_id, DOUYIN["client_key"]), sent=time.monotonic())
        status, reply = stack.call("POST", "/webhooks/douyin", body, api_key=None, headers=headers)
        if status != 200:
            probe.failed = f"{status} {str(reply)[:120]}"
        return probe

    return send


def pos_member_insert(mariadb: MariaDB, run_id: str) -> tuple[Callable[[int], Probe], Callable[[], None]]:
    """An autocommitted INSERT into pos.members per event, one connection per sender thread;
    the clock starts when the commit has returned."""
    local = threading.local()
    connections: list[Any] = []
    lock = threading.Lock()

    def send(i: int) -> Probe:
        if not hasattr(local, "conn"):
            local.conn = mariadb.connect("pos")
            with lock:
                connections.append(local.conn)
        member = f"FM-{run_id}-{i}"
        with local.conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO members (member_no, phone, name, level, store) VALUES (%s, NULL, %s, %s, %s)",
                (member, f"freshness {i}", "gold", "S017"),
            )
        return Probe(_profile_query("member_no", member, "pos"), sent=time.monotonic())

    def close() -> None:
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()

    return send, close


# --- the run ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _stack_with_cdc() -> Iterator[tuple[RunningStack, MariaDB | None]]:
    if not mariadb_available():  # the binlog path is skipped, the others still run
        with start_local_stack() as stack:
            yield stack, None
        return
    with running_mariadb() as mariadb, tempfile.TemporaryDirectory(prefix="scrm-fresh-") as tmp:
        mariadb.run_sql_file(ROOT / "config" / "pos_schema.sql")
        env = {
            "SCRM_CDC_MYSQL_URL": mariadb.url("pos"),
            "SCRM_CDC_CHECKPOINT": str(Path(tmp) / "checkpoint.json"),
        }
        with start_local_stack(env) as stack:
            yield stack, mariadb


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def run(rate: float | None = None, seconds: float | None = None) -> dict[str, Any]:
    """Each path at `rate` events/s for `seconds` s (defaults: SCRM_BENCH_FRESHNESS_RATE and
    SCRM_BENCH_FRESHNESS_SECONDS, else DEFAULT_RATE and DEFAULT_SECONDS), one after another on one
    local stack."""
    rate = rate if rate is not None else _env_float("SCRM_BENCH_FRESHNESS_RATE", DEFAULT_RATE)
    seconds = seconds if seconds is not None else _env_float("SCRM_BENCH_FRESHNESS_SECONDS", DEFAULT_SECONDS)
    run_id = uuid.uuid4().hex[:8]
    paths: dict[str, dict[str, Any] | None] = {}
    undrained: list[str] = []

    def settle(after: str) -> None:
        """Let the stack finish the previous work (the audit chain trails the profiles) so it
        does not weigh on the next path; a stack that cannot is noted, not fatal."""
        try:
            stack.wait_drained(timeout=DRAIN_S)
        except AssertionError:
            undrained.append(after)

    def measure(name: str, make: Callable[[str], Callable[[int], Probe]]) -> None:
        warm_up(stack, make(run_id + "w"), rate)
        settle(f"warming up {name}")
        figures = paths[name] = paced(rate, seconds, make(run_id), pollers)
        figures["load_average"] = os.getloadavg()[0]
        _progress(name, figures)
        settle(name)

    with _stack_with_cdc() as (stack, mariadb):
        pollers = Pollers(stack)
        try:
            measure(EVENTS, lambda rid: post_event(stack, rid))
            measure(WEBHOOK, lambda rid: douyin_push(stack, rid))
            paths[MYSQL] = None
            if mariadb is not None:
                with contextlib.ExitStack() as closing:

                    def insert(rid: str) -> Callable[[int], Probe]:
                        send, close = pos_member_insert(mariadb, rid)
                        closing.callback(close)
                        return send

                    measure(MYSQL, insert)
        finally:
            pollers.close()
    return {
        "rate": rate,
        "seconds": seconds,
        "cap_s": CAP_S,
        "cpus": os.cpu_count(),
        "paths": paths,
        "undrained": undrained,
    }


def _progress(name: str, figures: dict[str, Any]) -> None:
    print(
        f"freshness: {name}: {figures['sent']} sent, p50 {_seconds(figures['p50_s'])} s, "
        f"p99 {_seconds(figures['p99_s'])} s, {figures['not_readable']} not readable, "
        f"{figures['refused']} refused",
        file=sys.stderr,
        flush=True,
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render(result: dict[str, Any]) -> list[str]:
    rate, seconds = result["rate"], result["seconds"]
    lines = [
        f"Freshness through `scrm local run` (moto), {rate:g} events/s for {seconds:g} s per path, "
        "each event a new customer; readable = the first `GET /profiles` answer that shows it "
        f"(polled every {POLL_INTERVAL:g} s for up to {TIMED_PER_SECOND:g} timed events a second):",
        "",
        f"| path | events sent | p50 s | p99 s | not readable within {result['cap_s']:g} s "
        f"| goal p99 < {GOAL_P99_S:g} s |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in result["paths"].items():
        if figures is None:
            lines.append(f"| {name} | – | – | – | – | not run (no MariaDB server binaries) |")
            continue
        p99 = figures["p99_s"]
        met = p99 is not None and p99 < GOAL_P99_S and figures["not_readable"] == 0 and not figures["refused"]
        timed = f" ({figures['timed']} timed)" if figures["timed"] != figures["sent"] else ""
        refused = f", {figures['refused']} refused" if figures["refused"] else ""
        lines.append(
            f"| {name} | {figures['sent']}{timed}{refused} | {_seconds(figures['p50_s'])} | {_seconds(p99)} "
            f"| {figures['not_readable']} | {'✅' if met else '❌'} |"
        )
    lag = max((f["max_send_lag_s"] for f in result["paths"].values() if f), default=0.0)
    load = max((f["load_average"] for f in result["paths"].values() if f), default=0.0)
    lines += [
        "",
        f"moto, in one process, answers every AWS call of the stack and shares this {result['cpus']}-vCPU "
        "machine with the API gateway, the Lambda workers, the pollers, MariaDB and the load generator: "
        "these figures are bounded by that, not by AWS. POST /events and the webhook time from the "
        "request's start, the binlog path from the commit's return. "
        f"Load average at the end of a path: up to {load:.1f}. "
        + (f"Sends fell behind their schedule by up to {lag:.2f} s. " if lag > 0.25 else "")
        + (
            f"The stack's backlog (queues, streams, the audit chain) had not drained within {DRAIN_S:g} s "
            f"after: {', '.join(result['undrained'])}. "
            if result.get("undrained")
            else ""
        ),
    ]
    if rate < 50:
        lines[-1] += (
            f"Measured at {rate:g} events/s; 50 events/s is beyond what moto in one process carries on "
            f"this machine{f' (measured: {MEASURED})' if MEASURED else ''}."
        )
    lines[-1] = lines[-1].rstrip()
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
