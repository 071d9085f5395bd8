"""Webhook time to ack, per channel: the real WebhookFunction handler in-process (verify, decrypt,
parse, map, land, enqueue, ack) in its template environment, with AWS answered by an in-process
responder (webhook_harness), so the figure is the handler's own work. Platforms allow 5 s; the
target is p99 under 50 ms."""

from __future__ import annotations

import statistics
import time

from .webhook_harness import PUSHES, invoke, webhook_handler


def run(requests: int = 300) -> dict[str, dict[str, float]]:
    results = {}
    with webhook_handler() as (module, _):
        for name, build in PUSHES.items():
            event = build()
            first = invoke(module, event)  # warm: clients, secret, rules
            assert first["statusCode"] == 200, (name, first)
            samples = []
            for _ in range(requests):
                start = time.perf_counter()
                invoke(module, event)
                samples.append((time.perf_counter() - start) * 1000)
            samples.sort()
            results[name] = {
                "p50_ms": statistics.median(samples),
                "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            }
    return results


if __name__ == "__main__":
    for name, figures in run().items():
        print(f"{name}: p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms")
