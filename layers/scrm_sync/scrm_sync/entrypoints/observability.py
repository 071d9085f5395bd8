"""Per-source metrics for batch handlers.

Alarms watch the service-level metrics (one time series each: EventsSynced, EventsFailed,
SyncLag); operators drill down by source with the same metrics under a `source` dimension. A
batch mixes sources, and Powertools' shared Metrics object has one dimension set per flush, so
the breakdown is accumulated during the batch and written as one EMF document per source.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

_EMF_VALUES_PER_METRIC = 100  # the embedded metric format's limit per document


class SourceBreakdown:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._lags: dict[str, list[float]] = defaultdict(list)

    def count(self, source: str, metric: str, value: int = 1) -> None:
        if value:
            with self._lock:
                self._counts[source][metric] += value

    def lag(self, source: str, milliseconds: float) -> None:
        with self._lock:
            self._lags[source].append(max(milliseconds, 0.0))

    def flush(self) -> None:
        """Write one EMF document per source (and per 100 lag values) and start over."""
        with self._lock:
            counts, lags = self._counts, self._lags
            self._counts, self._lags = defaultdict(Counter), defaultdict(list)
        for source in sorted(set(counts) | set(lags)):
            values = lags.get(source, [])
            chunks = [
                values[i : i + _EMF_VALUES_PER_METRIC] for i in range(0, len(values), _EMF_VALUES_PER_METRIC)
            ]
            for index, chunk in enumerate(chunks or [[]]):
                metrics = EphemeralMetrics()
                metrics.add_dimension("source", source)
                if index == 0:
                    for name, value in sorted(counts.get(source, Counter()).items()):
                        metrics.add_metric(name, MetricUnit.Count, value)
                for milliseconds in chunk:
                    metrics.add_metric("SyncLag", MetricUnit.Milliseconds, milliseconds)
                if metrics.metric_set:
                    metrics.flush_metrics()
