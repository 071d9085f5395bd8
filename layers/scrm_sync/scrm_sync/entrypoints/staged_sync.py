"""One batch handler invocation through the batch-staged sync core, for every function that syncs
batches of canonical events (ProfileSyncFunction from the queue, WebhookSyncFunction from the
webhook stream): the staged batch, the outcome metrics and logs of each event, and which records
must be retried when the batch's evidence could not be written.

Lambda runs one invocation per execution environment at a time, so a handler keeps one
`StagedInvocation` per invocation in a module variable that its record threads share.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ..domain.events import CanonicalEvent
from ..domain.privacy import landing_day_prefixes
from ..services.erasure import LateArrivals
from ..services.sync import EvidenceNotWritten, ProfileSync, SyncBatch, SyncOutcome
from .observability import SourceBreakdown


class StagedInvocation:
    def __init__(self, sync: ProfileSync, events: Sequence[CanonicalEvent], logger: Logger) -> None:
        self.batch: SyncBatch = sync.batch(events)  # stage one: one identity read for all
        self._logger = logger
        self._lock = threading.Lock()  # records run on several threads
        # the batch's metrics, added once at its end (Powertools' add_metric is not cheap)
        self._counts: Counter[str] = Counter()
        self._lags_ms: list[float] = []

    def apply(self, event: CanonicalEvent, by_source: SourceBreakdown) -> SyncOutcome:
        """Stage two for one event, counted; its evidence waits for `finish`."""
        outcome = self.batch.apply(event)
        if outcome.suppressed:  # an erased person's: dropped, counted, never logged with values
            with self._lock:
                self._counts.update(EventsSuppressed=1)
            by_source.count(event.source, "EventsSuppressed")
            return outcome
        lag_ms = max((datetime.now(UTC) - event.occurred_at).total_seconds() * 1000, 0.0)
        # a redelivered event finds every field version already there: counted, not an error
        duplicate = bool(outcome.duplicates) and not outcome.applied and not outcome.created
        with self._lock:
            self._counts.update(
                EventsSynced=1,
                ProfilesCreated=int(outcome.created),
                FieldConflicts=len(outcome.conflicts),
                ProfilesMerged=len(outcome.merged),
                EventsDuplicate=int(duplicate),
                ProfileItemFull=int(bool(outcome.too_large)),
            )
            self._lags_ms.append(lag_ms)
        by_source.count(event.source, "EventsSynced")
        by_source.count(event.source, "FieldConflicts", len(outcome.conflicts))
        by_source.count(event.source, "ProfilesMerged", len(outcome.merged))
        by_source.count(event.source, "EventsDuplicate", int(duplicate))
        by_source.lag(event.source, lag_ms)
        if outcome.too_large:
            # the event is done (links, evidence, timeline); only these fields could not be stored
            self._logger.warning(
                "profile item at DynamoDB's size limit: fields not stored",
                extra={
                    "event": event.idempotency_key,
                    "profile_id": outcome.profile_id,
                    "fields": outcome.too_large,
                },
            )
        self._logger.debug(
            "event synced",
            extra={
                "event": event.idempotency_key,
                "profile_id": outcome.profile_id,
                "applied": outcome.applied,
                "conflicts": len(outcome.conflicts),
                "merged": outcome.merged,
            },
        )
        return outcome

    def finish(self, records: Mapping[str, Iterable[str]]) -> set[str]:
        """Stage three: the evidence of every event applied. Returns the records (id -> the event
        keys it carries) to retry because their evidence could not be written."""
        try:
            self.batch.finish()
        except EvidenceNotWritten as exc:
            self._logger.warning(
                "evidence not written; the batch's events will be retried",
                extra={"events": len(exc.event_keys), "error": type(exc.__cause__).__name__},
            )
            return {record for record, keys in records.items() if exc.event_keys.intersection(keys)}
        return set()

    @property
    def suppressed(self) -> int:
        """Events of erased people dropped in this batch."""
        with self._lock:
            return self._counts["EventsSuppressed"]

    def note_late_arrivals(self, arrivals: Callable[[], LateArrivals], landing_bases: Iterable[str]) -> None:
        """When the batch dropped events of erased people, their requests were landed anyway
        (before the sync read them): note those days for the next erasure run to scrub."""
        if not self.suppressed:
            return
        now = datetime.now(UTC)
        prefixes = sorted({p for base in landing_bases for p in landing_day_prefixes(base, now)})
        arrivals().note(prefixes, now.isoformat(timespec="seconds"))

    def add_metrics(self, metrics: Metrics) -> None:
        for name, count in sorted(self._counts.items()):
            if count:
                metrics.add_metric(name, MetricUnit.Count, count)
        for lag_ms in self._lags_ms:
            metrics.add_metric("SyncLag", MetricUnit.Milliseconds, lag_ms)


def with_failures(response: Mapping[str, Any], failed: Iterable[str]) -> dict[str, Any]:
    """The partial batch response with these records added to its failures (once each)."""
    reported = list(response.get("batchItemFailures", []))
    already = {failure["itemIdentifier"] for failure in reported}
    added = [{"itemIdentifier": record} for record in sorted(set(failed) - already)]
    return {**response, "batchItemFailures": reported + added}
