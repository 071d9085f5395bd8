"""Figure 1: domain CPU per event: event -> identity decision -> precedence -> writes, with the
in-memory repository (no serialization, no network)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.sync import ProfileSync

from .workload import known_update, merge, new_customer

RULES = load_rules({})


def _cpu_per_event(prepare: Callable[[ProfileSync], list[Any]], runs: int) -> float:
    samples = []
    for _ in range(runs):
        sync = ProfileSync(InMemoryProfileRepository(), lambda: RULES)
        events = prepare(sync)
        start = time.process_time()
        for event in events:
            sync.apply(event)
        samples.append((time.process_time() - start) / len(events) * 1e6)
    return statistics.median(samples)


def run(n: int = 2000, runs: int = 5) -> dict[str, float]:
    def new(_: ProfileSync) -> list[Any]:
        return [new_customer(i) for i in range(n)]

    def known(sync: ProfileSync) -> list[Any]:
        for i in range(n):
            sync.apply(new_customer(i))
        return [known_update(i) for i in range(n)]

    def merges(sync: ProfileSync) -> list[Any]:
        joins = []
        for i in range(n // 2):
            a, b, both = merge(i)
            sync.apply(a)
            sync.apply(b)
            joins.append(both)
        return joins

    def duplicates(sync: ProfileSync) -> list[Any]:
        events = [new_customer(i) for i in range(n)]
        for event in events:
            sync.apply(event)
        return events

    return {
        "new customer": _cpu_per_event(new, runs),
        "known customer update": _cpu_per_event(known, runs),
        "merge": _cpu_per_event(merges, runs),
        "duplicate": _cpu_per_event(duplicates, runs),
    }


def merge_scaling(sizes: tuple[int, ...] = (200, 8000), merges: int = 100, runs: int = 5) -> dict[int, float]:
    """Domain CPU of a merge with `size` events already synced (other customers): a merge moves
    only the loser's links, so the figure should not grow with the data."""
    results = {}
    for size in sizes:

        def prepare(sync: ProfileSync, size: int = size) -> list[Any]:
            for i in range(size):
                sync.apply(new_customer(1_000_000 + i))
            joins = []
            for i in range(merges):
                a, b, both = merge(i)
                sync.apply(a)
                sync.apply(b)
                joins.append(both)
            return joins

        results[size] = _cpu_per_event(prepare, runs)
    return results
