"""Webhook ingest: verify, map, write one stream record per push, ack fast.

Nothing that reaches this code is lost: an authentic push is acked only after the ingest stream
accepted its record (the raw request and its canonical events, see push_records.py), which the
stream's delivery stream lands in S3 and its consumer syncs; forged and malformed pushes are
kept in the quarantine prefix for inspection (direct S3 PUTs: the rare abuse path). An authentic push that
cannot be parsed or mapped into storable events is landed too, recorded as a mapping failure
and acked with the platform's success answer: a 4xx or 5xx would only make the platform send
the same bytes again and again, and a fixed rule plus `scrm replay` is what brings it in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..channels.base import (
    ChannelAdapter,
    MalformedPush,
    ParsedPush,
    SignatureInvalid,
    WebhookReply,
    WebhookRequest,
    failure_reason,
)
from ..channels.payloads import READ_ERRORS
from ..domain.credentials import ChannelCredentials
from ..domain.events import CanonicalEvent
from ..domain.mapping import FieldRule, MappingError, apply_rules
from ..domain.profile import normalize_identifiers
from ..domain.rules import Rules, load_rules
from .ingest import QueueUnavailable
from .ports import PushStream, RawLanding, StreamWriteFailed
from .push_records import (
    LANDING_PREFIX,
    MAX_PUSH_RECORD_BYTES,
    batched_landing_prefix,
    landing_document,
    push_record,
)
from .schema_watch import SchemaWatch

log = logging.getLogger(__name__)

DEFAULT_RULES = load_rules({})
MAX_WEBHOOK_BODY_BYTES = 1024 * 1024

# What parsing, mapping and validating an authentic push raise when its content cannot become
# storable canonical events (MalformedPush, MappingError and pydantic's ValidationError are
# ValueErrors; an out-of-range number is an ArithmeticError).
UNMAPPABLE_ERRORS = READ_ERRORS
MAPPING_FAILURES_PREFIX = "quarantine/mapping-failures"


def _dated_key(prefix: str, request: WebhookRequest) -> str:
    at = request.received_at
    return f"{prefix}/{request.channel}/dt={at:%Y-%m-%d}/{at:%H%M%S}-{request.request_id}.json"


def landing_key(prefix: str, request: WebhookRequest) -> str:
    return _dated_key(f"{prefix}/webhooks", request)


def mapping_failure_key(request: WebhookRequest) -> str:
    return _dated_key(MAPPING_FAILURES_PREFIX, request)


@dataclass(frozen=True, slots=True)
class MappingFailure:
    """Why an authentic push, or one event of it, could not become a storable canonical event."""

    stage: Literal["parse", "mapping"]  # the channel's code could not read it, or a rule / the model
    reason: str  # exception type and a message known to carry no payload values
    kind: str | None = None  # the platform's event kind, when the push could be parsed

    def as_dict(self) -> dict[str, str]:
        kind = {"kind": self.kind} if self.kind is not None else {}
        return {**kind, "stage": self.stage, "reason": self.reason}


@dataclass(slots=True)
class MappedPush:
    push: ParsedPush  # empty when the push could not be parsed at all
    events: list[CanonicalEvent] = field(default_factory=list)
    failures: list[MappingFailure] = field(default_factory=list)


def map_push(
    adapter: ChannelAdapter, request: WebhookRequest, credentials: Mapping[str, Any], rules: Rules
) -> MappedPush:
    """An authentic push as storable canonical events, with the rules file's field mappings
    applied per event kind (changes need no deploy), and a failure for each event that cannot
    be mapped (those the adapter could not build included), or one for the whole push when it
    cannot be parsed. The webhook and `scrm replay` both map through here. SignatureInvalid is
    not caught: that push is not authentic."""
    try:
        push = adapter.parse(request, credentials)
    except UNMAPPABLE_ERRORS as exc:
        return MappedPush(ParsedPush(), failures=[MappingFailure("parse", failure_reason(exc))])
    mapped = MappedPush(push)
    mapped.failures.extend(MappingFailure("mapping", item.reason, item.kind) for item in push.refused)
    for index, event in enumerate(push.events):
        kind, payload = push.sources[index] if index < len(push.sources) else (None, None)
        try:
            if kind is not None:
                event = _with_field_mappings(rules.mapping_for(request.channel, kind), event, payload)
        except UNMAPPABLE_ERRORS as exc:
            mapped.failures.append(MappingFailure("mapping", failure_reason(exc), kind))
            continue
        unlinkable = normalize_identifiers(event, rules).unlinkable_reason()
        if unlinkable is not None:  # the sync core could only send it to the DLQ
            mapped.failures.append(MappingFailure("mapping", unlinkable, kind))
            continue
        mapped.events.append(event)
    return mapped


def _with_field_mappings(rules: Iterable[FieldRule], event: CanonicalEvent, payload: Any) -> CanonicalEvent:
    """The event with the mapped attributes and metrics, validated again: a value a rule
    cannot convert, or one the canonical model refuses (not storable), fails the event."""
    mapped = apply_rules(rules, payload)
    if mapped.errors:
        raise MappingError("; ".join(mapped.errors))
    if not (mapped.attributes or mapped.metrics):
        return event
    document = event.model_dump(mode="json")
    document["attributes"] = {**document["attributes"], **mapped.attributes}
    if document.get("interaction") is not None:
        document["interaction"]["metrics"] = {**document["interaction"]["metrics"], **mapped.metrics}
    return CanonicalEvent.model_validate(document)


class StreamUnavailable(QueueUnavailable):
    """The ingest stream did not accept a push's record: nothing is acked, the platform retries."""


class WebhookIngest:
    def __init__(
        self,
        adapters: Mapping[str, ChannelAdapter],
        credentials: Callable[[], ChannelCredentials],
        landing: RawLanding,
        stream: PushStream,
        rules: Callable[[], Rules] = lambda: DEFAULT_RULES,
        schema_watch: SchemaWatch | None = None,
    ) -> None:
        self._adapters = adapters
        self._credentials = credentials
        self._landing = landing
        self._stream = stream
        self._rules = rules
        self._schema_watch = schema_watch

    def handle(self, request: WebhookRequest) -> WebhookReply:
        adapter = self._adapters.get(request.channel)
        credentials = self._credentials().channel(request.channel)
        if adapter is None or credentials is None:
            return WebhookReply(404, "channel not enabled")
        if len(request.body) > MAX_WEBHOOK_BODY_BYTES:
            # platform pushes are a few KB: this is abuse or a misrouted upload; keep its head only
            head = replace(request, body=request.body[:MAX_WEBHOOK_BODY_BYTES])
            self._keep(
                "quarantine",
                head,
                f"too large: {len(request.body)} bytes (kept the first {MAX_WEBHOOK_BODY_BYTES})",
            )
            return WebhookReply(413, f"body larger than {MAX_WEBHOOK_BODY_BYTES} bytes")
        try:
            if request.method == "GET" or adapter.is_handshake(request):
                return adapter.handshake(request, credentials)
            if request.method != "POST":
                return WebhookReply(405, "method not allowed")
            adapter.verify(request, credentials)
        except SignatureInvalid as exc:
            self._keep("quarantine", request, f"signature: {exc}")
            return WebhookReply(exc.status, "signature verification failed")
        except MalformedPush as exc:
            self._keep("quarantine", request, f"malformed: {exc}")
            return WebhookReply(400, f"malformed request: {exc}")

        try:
            mapped = map_push(adapter, request, credentials, self._rules())
        except Exception:
            self._write(request, [], [])  # a bug in the mapping never loses the authentic push
            raise
        push = mapped.push
        drift_kinds = self._watch(request.channel, push)
        # one record: the raw push for the landing bucket, its events for the sync, its enrichment
        # requests for the enrichment queue (forwarded by the stream's consumer, after the ack)
        self._write(request, [event.to_message() for event in mapped.events], push.enrichments)
        if mapped.failures:  # after the write: a record never points at a push that was refused
            self._record_failures(request, mapped)
        # the platform's success answer even when nothing could be mapped: the push is landed
        # and recorded, and a retry of the same bytes would fail the same way
        reply = adapter.ack(request, push)
        return replace(reply, drift_kinds=drift_kinds, unmappable=len(mapped.failures))

    def _write(self, request: WebhookRequest, messages: list[str], enrichments: Any) -> None:
        """The push's record onto the ingest stream; raises StreamUnavailable if it is not taken."""
        record = push_record(request, messages, enrichments)
        try:
            if len(record) <= MAX_PUSH_RECORD_BYTES:
                self._stream.put(record, request.request_id)
                return
            self._write_large(request, messages, enrichments)
        except StreamWriteFailed as exc:
            raise StreamUnavailable(str(exc)) from exc

    def _write_large(self, request: WebhookRequest, messages: list[str], enrichments: Any) -> None:
        """A push too large for one record (its body is close to the 1 MiB limit): the raw request
        is landed on its own in the one-object-per-push layout that `scrm replay` reads, and its
        events travel in as many body-less records as they need."""
        key = landing_key(LANDING_PREFIX, request)
        self._keep(LANDING_PREFIX, request)
        empty = len(push_record(request, [], enrichments, landed_at=key))
        chunk: list[str] = []
        size = empty
        for message in messages:  # each event is far below the limit (storable: at most 25 KB)
            length = len(message.encode("utf-8", errors="surrogateescape")) + 1
            if chunk and size + length > MAX_PUSH_RECORD_BYTES:
                self._stream.put(push_record(request, chunk, enrichments, landed_at=key), request.request_id)
                chunk, size, enrichments = [], empty, ()
            chunk.append(message)
            size += length
        self._stream.put(push_record(request, chunk, enrichments, landed_at=key), request.request_id)

    def _watch(self, channel: str, push: ParsedPush) -> tuple[str, ...]:
        """Schema drift of the push's messages. Never fails the webhook: drift is a diagnosis,
        and the raw push is landed for a replay whatever happens here."""
        if self._schema_watch is None:
            return ()
        drifted = []
        for kind, payload in push.observed:
            try:
                if self._schema_watch.observe(channel, kind, payload) is not None:
                    drifted.append(kind)
            except Exception:  # storage hiccup: the next message of this kind is checked again
                log.warning(
                    "schema drift check failed", extra={"channel": channel, "kind": kind}, exc_info=True
                )
        return tuple(drifted)

    def _record_failures(self, request: WebhookRequest, mapped: MappedPush) -> None:
        """A record an operator lists (`scrm mapping-failures`) before fixing a rule and replaying
        the raw push it points to. Reasons and kinds only: never a payload value, nor a delivery
        id (WeChat's embed the sender's openid)."""
        record = {
            "channel": request.channel,
            "request_id": request.request_id,
            "received_at": request.received_at.isoformat(),
            # the raw push is a line of a batched landing object the delivery stream writes later
            # (its key is not known yet): `scrm replay --request-id` picks it out of that day
            "landing_prefix": batched_landing_prefix(request.received_at.date()),
            "replay": (
                f"scrm replay --source {request.channel} --since {request.received_at:%Y-%m-%d}"
                f" --request-id {request.request_id}"
            ),
            "events_enqueued": len(mapped.events),
            "failures": [failure.as_dict() for failure in mapped.failures],
        }
        self._landing.put(
            mapping_failure_key(request),
            json.dumps(record, ensure_ascii=False).encode(),
            {"channel": request.channel, "request-id": request.request_id},
        )
        log.warning(
            "unmappable webhook push recorded",
            extra={
                "channel": request.channel,
                "failures": [failure.as_dict() for failure in mapped.failures],
                "events_enqueued": len(mapped.events),
            },
        )

    def _keep(self, prefix: str, request: WebhookRequest, note: str | None = None) -> None:
        self._landing.put(
            landing_key(prefix, request),
            landing_document(request, note),
            {"channel": request.channel, "request-id": request.request_id},
        )
