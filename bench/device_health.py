"""Edge device health: how much smaller a score is than the raw readings it summarizes, and how many
windows one vCPU scores per second.

- **Data reduction** (goal >= 99 % at 10 kHz with 10 s windows; the seed's figure is 95 %): for a
  mix of machine conditions (healthy, imbalance, misalignment, looseness, outer- and inner-race
  bearing defects), the bytes of each window's raw readings as the sensor sources carry them
  (little-endian float32, 4 bytes a reading; int16 ADC counts, 2 bytes, as the tightest raw form)
  against the bytes synced for it: the score document as published to IoT Core (its MQTT payload)
  and its share of a POST /devices/health body of 30 scores (what a gateway without Greengrass
  sends after a 5-minute gap). Reduction = 1 - synced / raw.
- **Windows/s per vCPU**: `scrm_edge.health.assess` (velocity, features, envelope spectrum, zone,
  hints) on 10 s windows at 10 kHz and 25.6 kHz with bearing geometry configured, in one thread,
  divided by the process CPU time it took (a busy machine slows the wall clock, less the CPU time).
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scrm_edge import signals
from scrm_edge.health import MachineProfile, assess
from scrm_edge.zones import ZoneTable

RPM = 1797.0
MACHINE = MachineProfile.from_dict(
    {
        "device_id": "pump-0042",
        "machine_class": "group2_rigid",
        "rpm": RPM,
        "balls": 9,
        "ball_diameter_mm": 7.94,
        "pitch_diameter_mm": 39.04,
    }
)
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
WINDOW_SECONDS = 10.0
POST_BATCH = 30
GOAL_REDUCTION_PERCENT = 99.0


def windows(rate: float, seeds: range) -> list[np.ndarray]:
    """One window per condition and seed."""
    frequencies = MACHINE.bearing_frequencies()
    assert frequencies is not None
    out = []
    for seed in seeds:
        out += [
            signals.healthy(rate, WINDOW_SECONDS, RPM, seed=seed),
            signals.imbalance(rate, WINDOW_SECONDS, RPM, seed=seed),
            signals.misalignment(rate, WINDOW_SECONDS, RPM, seed=seed),
            signals.looseness(rate, WINDOW_SECONDS, RPM, seed=seed),
            signals.outer_race(rate, WINDOW_SECONDS, RPM, frequencies["bpfo"], seed=seed),
            signals.inner_race(rate, WINDOW_SECONDS, RPM, frequencies["bpfi"], seed=seed),
        ]
    return out


def reduction(rate: float = 10_000.0) -> dict[str, Any]:
    zones = ZoneTable.load()
    readings = windows(rate, range(3))
    documents = [
        assess(window, rate, START + timedelta(seconds=WINDOW_SECONDS * i), MACHINE, zones).to_json()
        for i, window in enumerate(readings)
    ]
    per_reading = {"float32": 4, "int16": 2}
    raw = {name: statistics.mean(len(w) * size for w in readings) for name, size in per_reading.items()}
    mqtt = statistics.mean(len(d) for d in documents)
    body = json.dumps({"scores": [json.loads(d) for d in documents[:POST_BATCH]]}, separators=(",", ":"))
    http = len(body.encode()) / min(POST_BATCH, len(documents))
    return {
        "rate_hz": rate,
        "readings": len(readings[0]),
        "windows": len(readings),
        "raw_bytes": raw,
        "synced_bytes": {"MQTT payload": mqtt, "POST body share": http},
        "reduction_percent": {
            (source, form): 100 * (1 - synced / raw[form])
            for source, synced in (("MQTT payload", mqtt), ("POST body share", http))
            for form in per_reading
        },
    }


def throughput(rate: float, rounds: int = 5) -> dict[str, float]:
    zones = ZoneTable.load()
    batch = windows(rate, range(1))
    assess(batch[0], rate, START, MACHINE, zones)  # warm: imports, FFT plans
    per_cpu, per_wall = [], []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for i, window in enumerate(batch):
            assess(window, rate, START + timedelta(seconds=WINDOW_SECONDS * i), MACHINE, zones)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per_cpu.append(len(batch) / cpu)
        per_wall.append(len(batch) / wall)
    return {
        "windows_per_cpu_second": statistics.median(per_cpu),
        "windows_per_wall_second": statistics.median(per_wall),
    }


def run() -> dict[str, Any]:
    return {
        "reduction": reduction(10_000.0),
        "throughput": {rate: throughput(rate) for rate in (10_000.0, 25_600.0)},
    }


def render(result: dict[str, Any]) -> list[str]:
    red = result["reduction"]
    lines = [
        f"Data reduction at {red['rate_hz'] / 1000:g} kHz, {WINDOW_SECONDS:g} s windows "
        f"({red['readings']:,} readings each; {red['windows']} windows of six machine conditions). "
        f"Goal: ≥ {GOAL_REDUCTION_PERCENT:g} % "
        "(the seed's figure: 95 %):",
        "",
        "| synced as | bytes per window | vs float32 raw ({:,.0f} B) | vs int16 raw ({:,.0f} B) |".format(
            red["raw_bytes"]["float32"], red["raw_bytes"]["int16"]
        ),
        "|---|---|---|---|",
    ]
    for source, synced in red["synced_bytes"].items():
        cells = []
        for form in ("float32", "int16"):
            percent = red["reduction_percent"][(source, form)]
            mark = "✅" if percent >= GOAL_REDUCTION_PERCENT else "❌"
            cells.append(f"{percent:.2f} % {mark}")
        lines.append(f"| {source} | {synced:,.0f} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "Scoring throughput (`assess`: velocity, features, envelope spectrum, zone, hints; one thread, "
        "bearing geometry configured):",
        "",
        "| sample rate | windows/s per vCPU (CPU time) | windows/s (wall) | real time per vCPU |",
        "|---|---|---|---|",
    ]
    for rate, figures in result["throughput"].items():
        per_cpu, per_wall = figures["windows_per_cpu_second"], figures["windows_per_wall_second"]
        lines.append(
            f"| {rate / 1000:g} kHz × {WINDOW_SECONDS:g} s | {per_cpu:,.1f} | {per_wall:,.1f} "
            f"| {per_cpu * WINDOW_SECONDS:,.0f} sensors |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
