"""Replay landed webhooks through today's adapters and mappings (`scrm replay`).

Every authentic push is landed raw before it is acked, so when a platform renamed a field or a
mapping rule was wrong, an operator fixes the rule and replays the affected days: each landed
push is verified again (a tampered landing object is refused), parsed, mapped with the current
rules and enqueued. Replayed events get a new event id (`<id>~replay:<run>`), so they are
applied instead of being dropped as duplicates, and their field versions sort just after the
original's: they correct what the original wrote, never what a later event wrote. Replaying the
same run again changes nothing.

Landed pushes are read from both layouts: the batched, GZIP'd objects the raw-landing delivery
stream writes (`raw/webhooks/dt=YYYY-MM-DD/`, one push per line, all channels) and the older
one-object-per-push layout (`raw/webhooks/{channel}/dt=YYYY-MM-DD/`). A delivery stream dates an
object by its oldest record's arrival, so a push received just before or after midnight can sit in
the previous or next day's object: the days around the range are read too, and each push is taken
by its own `received_at` day. A push found twice (the stream delivers at least once) is replayed
once; `request_id` picks one push out of its batched object.

A landed push that cannot be read, verified, parsed or mapped is skipped and reported (key,
request id when known, reason, event kind when known) and the run goes on; the good events of a
push are enqueued even when another event of it is skipped. Pushes the webhook could not map are
listed from their mapping-failure records (`mapping_failures`), written under the landing
bucket's quarantine.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from ..channels.base import ChannelAdapter, SignatureInvalid, WebhookRequest
from ..domain.credentials import ChannelCredentials
from ..domain.events import CanonicalEvent, replay_event_id
from ..domain.rules import Rules
from .ingest import QueueUnavailable
from .ports import EventQueue
from .push_records import batched_landing_prefix, channel_landing_prefix, landing_lines
from .webhooks import MAPPING_FAILURES_PREFIX, UNMAPPABLE_ERRORS, failure_reason, map_push

MAX_REPLAY_DAYS = 366


class LandingArchive(Protocol):
    def keys(self, prefix: str) -> Iterator[str] | list[str]: ...

    def get(self, key: str) -> bytes: ...


@dataclass(slots=True)
class ReplayReport:
    run_id: str
    channel: str
    pushes: int = 0
    events: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"key", "reason"[, "kind", "stage"]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "channel": self.channel,
            "pushes": self.pushes,
            "events": self.events,
            "skipped": self.skipped,
        }


def request_from_landing(document: Mapping[str, Any]) -> WebhookRequest:
    """The request as it was received, from its landing document (see landing_document)."""
    return WebhookRequest(
        channel=str(document["channel"]),
        method=str(document["method"]),
        headers={str(k): str(v) for k, v in document.get("headers", {}).items()},
        query={str(k): str(v) for k, v in document.get("query", {}).items()},
        body=str(document.get("body", "")).encode("utf-8", errors="surrogateescape"),
        received_at=datetime.fromisoformat(str(document["received_at"])),
        request_id=str(document.get("request_id", "")),
    )


class WebhookReplay:
    def __init__(
        self,
        adapters: Mapping[str, ChannelAdapter],
        credentials: Callable[[], ChannelCredentials],
        archive: LandingArchive,
        queue: EventQueue,
        rules: Callable[[], Rules],
        landing_prefix: str = "raw",
    ) -> None:
        self._adapters = adapters
        self._credentials = credentials
        self._archive = archive
        self._queue = queue
        self._rules = rules
        self._prefix = landing_prefix

    def mapping_failures(self, channel: str | None = None, since: date | None = None) -> list[dict[str, Any]]:
        """The webhook's mapping-failure records (oldest day first per channel), each with its
        own key; `landing_key` in a record is the raw push a replay re-reads."""
        prefix = f"{MAPPING_FAILURES_PREFIX}/{channel}/" if channel else f"{MAPPING_FAILURES_PREFIX}/"
        records = []
        for key in self._archive.keys(prefix):
            day = _landing_day(key)
            if since is not None and (day is None or day < since):
                continue
            try:
                record = json.loads(self._archive.get(key))
            except UNMAPPABLE_ERRORS as exc:
                record = {"unreadable": failure_reason(exc)}
            records.append({"key": key, **(record if isinstance(record, dict) else {})})
        return records

    def replay(
        self,
        channel: str,
        since: date,
        until: date | None = None,
        run_id: str | None = None,
        request_id: str | None = None,
    ) -> ReplayReport:
        adapter = self._adapters.get(channel)
        credentials = self._credentials().channel(channel)
        if adapter is None or credentials is None:
            raise LookupError(f"channel {channel!r} is not enabled")
        last = until or datetime.now(UTC).date()
        if last < since or (last - since).days > MAX_REPLAY_DAYS:
            raise ValueError(f"replay range {since}..{last} is empty or longer than {MAX_REPLAY_DAYS} days")
        # landed pushes are old by definition: the replay window would refuse every one of them
        replay_credentials = {**credentials, "replay_window_seconds": 0}
        report = ReplayReport(run_id or uuid.uuid4().hex[:12], channel)
        rules = self._rules()
        seen: set[str] = set()
        for key in self._landing_keys(channel, since, last):
            try:
                lines = list(landing_lines(self._archive.get(key)))
            except (*UNMAPPABLE_ERRORS, OSError, EOFError) as exc:  # gzip raises OSError / EOFError
                report.skipped.append(
                    {"key": key, "reason": f"unreadable landing object: {type(exc).__name__}"}
                )
                continue
            for number, line in lines:
                where = {"key": key} if len(lines) == 1 else {"key": key, "line": str(number)}
                document = self._landed_push(line, where, report)
                if document is None or not _wanted(document, channel, since, last, request_id):
                    continue
                pushed = str(document.get("request_id", ""))
                if pushed and pushed in seen:
                    continue  # delivered twice: replayed once
                seen.add(pushed)
                self._replay_one(
                    document, {**where, "request_id": pushed}, adapter, replay_credentials, rules, report
                )
        return report

    def _landing_keys(self, channel: str, since: date, last: date) -> Iterator[str]:
        """Batched objects of the days around the range, then the channel's per-push objects."""
        day = since - timedelta(days=1)
        while day <= last + timedelta(days=1):
            yield from self._archive.keys(batched_landing_prefix(day, self._prefix))
            day += timedelta(days=1)
        day = since
        while day <= last:
            yield from self._archive.keys(channel_landing_prefix(channel, day, self._prefix))
            day += timedelta(days=1)

    @staticmethod
    def _landed_push(line: bytes, where: dict[str, str], report: ReplayReport) -> dict[str, Any] | None:
        try:
            document = json.loads(line.decode("utf-8", "surrogateescape"))
        except UNMAPPABLE_ERRORS as exc:
            report.skipped.append({**where, "reason": f"unreadable landing object: {type(exc).__name__}"})
            return None
        if not isinstance(document, dict):
            report.skipped.append({**where, "reason": "unreadable landing object: not a JSON object"})
            return None
        return document

    def _replay_one(
        self,
        document: Mapping[str, Any],
        where: dict[str, str],
        adapter: ChannelAdapter,
        credentials: Mapping[str, Any],
        rules: Rules,
        report: ReplayReport,
    ) -> None:
        try:
            request = request_from_landing(document)
        except UNMAPPABLE_ERRORS as exc:
            report.skipped.append({**where, "reason": f"unreadable landing object: {type(exc).__name__}"})
            return
        if request.method != "POST" or adapter.is_handshake(request):
            return  # URL checks carry no customer data
        try:
            adapter.verify(request, credentials)
        except SignatureInvalid as exc:  # e.g. keys rotated since, or the object was altered
            report.skipped.append({**where, "reason": f"signature: {exc}"})
            return
        except UNMAPPABLE_ERRORS as exc:
            report.skipped.append({**where, "reason": f"malformed: {failure_reason(exc)}"})
            return
        report.pushes += 1
        mapped = map_push(adapter, request, credentials, rules)  # the webhook's own mapping
        report.skipped.extend({**where, **failure.as_dict()} for failure in mapped.failures)
        events = [_as_replay(event, report.run_id) for event in mapped.events]
        if not events:
            return
        if self._queue.send([(str(i), event.to_message()) for i, event in enumerate(events)]):
            raise QueueUnavailable(f"replayed events of {where['key']} could not be enqueued")
        report.events += len(events)


def _wanted(
    document: Mapping[str, Any], channel: str, since: date, last: date, request_id: str | None
) -> bool:
    """A push of this channel received in the range (and the one asked for), with its raw request:
    a record whose raw request was landed on its own (`landed_at`) is read from that object."""
    if document.get("channel") != channel or "landed_at" in document:
        return False
    if request_id is not None and document.get("request_id") != request_id:
        return False
    try:
        received = datetime.fromisoformat(str(document["received_at"])).astimezone(UTC).date()
    except (KeyError, ValueError):
        return True  # unreadable time: let the replay report it
    return since <= received <= last


def _as_replay(event: CanonicalEvent, run_id: str) -> CanonicalEvent:
    return event.model_copy(update={"event_id": replay_event_id(event.event_id, run_id)})


def _landing_day(key: str) -> date | None:
    """The `dt=YYYY-MM-DD` day of a dated landing key."""
    for part in key.split("/"):
        if part.startswith("dt="):
            try:
                return date.fromisoformat(part.removeprefix("dt="))
            except ValueError:
                return None
    return None
