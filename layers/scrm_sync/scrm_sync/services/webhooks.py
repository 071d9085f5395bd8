"""Webhook ingest: verify, land the raw request, enqueue canonical events, ack fast.

Nothing that reaches this code is lost: authentic pushes are landed before the ack, forged
and malformed ones are kept in the quarantine prefix for inspection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from pydantic import ValidationError

from ..channels.base import (
    ChannelAdapter,
    MalformedPush,
    ParsedPush,
    SignatureInvalid,
    WebhookReply,
    WebhookRequest,
)
from ..domain.credentials import ChannelCredentials
from ..domain.events import CanonicalEvent
from ..domain.mapping import apply_rules
from ..domain.rules import Rules, load_rules
from .ingest import QueueUnavailable
from .ports import EventQueue, RawLanding
from .schema_watch import SchemaWatch

log = logging.getLogger(__name__)

DEFAULT_RULES = load_rules({})
MAX_WEBHOOK_BODY_BYTES = 1024 * 1024

# Headers that may carry secrets or tokens are never written to the landing bucket.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})


def landing_key(prefix: str, request: WebhookRequest) -> str:
    at = request.received_at
    return f"{prefix}/webhooks/{request.channel}/dt={at:%Y-%m-%d}/{at:%H%M%S}-{request.request_id}.json"


def landing_document(request: WebhookRequest, note: str | None = None) -> bytes:
    document = {
        "channel": request.channel,
        "method": request.method,
        "received_at": request.received_at.isoformat(),
        "request_id": request.request_id,
        "headers": {k: v for k, v in request.headers.items() if k not in _SECRET_HEADERS},
        "query": dict(request.query),
        "body": request.body.decode("utf-8", errors="surrogateescape"),
    }
    if note:
        document["note"] = note
    return json.dumps(document, ensure_ascii=False).encode("utf-8", errors="surrogateescape")


def mapped_events(rules: Rules, channel: str, push: ParsedPush) -> list[CanonicalEvent]:
    """The push's events with the rules file's field mappings applied per event kind (changes need
    no deploy). A mapping that produces invalid values is skipped; the event still goes through."""
    events = []
    for index, event in enumerate(push.events):
        if index < len(push.sources):
            kind, payload = push.sources[index]
            mapped = apply_rules(rules.mapping_for(channel, kind), payload)
            if mapped.attributes or mapped.metrics:
                document = event.model_dump(mode="json")
                document["attributes"] = {**document["attributes"], **mapped.attributes}
                if document.get("interaction") is not None:
                    metrics = {**document["interaction"]["metrics"], **mapped.metrics}
                    document["interaction"]["metrics"] = metrics
                try:
                    event = CanonicalEvent.model_validate(document)
                except ValidationError:
                    push.unmapped.setdefault("mapping_errors", []).append(kind)
        events.append(event)
    return events


class WebhookIngest:
    def __init__(
        self,
        adapters: Mapping[str, ChannelAdapter],
        credentials: Callable[[], ChannelCredentials],
        landing: RawLanding,
        queue: EventQueue,
        rules: Callable[[], Rules] = lambda: DEFAULT_RULES,
        schema_watch: SchemaWatch | None = None,
        enrichment_queue: EventQueue | None = None,
    ) -> None:
        self._adapters = adapters
        self._credentials = credentials
        self._landing = landing
        self._queue = queue
        self._rules = rules
        self._schema_watch = schema_watch
        self._enrichment_queue = enrichment_queue

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

        self._keep("raw", request)
        try:
            push = adapter.parse(request, credentials)
        except (MalformedPush, ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
            self._keep("quarantine", request, f"malformed: {exc}")
            return WebhookReply(400, f"malformed request: {exc}")
        drift_kinds = self._watch(request.channel, push)
        events = mapped_events(self._rules(), request.channel, push)
        if events:
            messages = [(str(i), event.to_message()) for i, event in enumerate(events)]
            if self._queue.send(messages):
                raise QueueUnavailable("webhook events could not be enqueued")
        if push.enrichments and self._enrichment_queue is not None:
            requests = [(str(i), json.dumps(r)) for i, r in enumerate(push.enrichments)]
            if self._enrichment_queue.send(requests):  # a platform retry re-queues it: harmless
                raise QueueUnavailable("enrichment requests could not be enqueued")
        reply = adapter.ack(request, push)
        return replace(reply, drift_kinds=drift_kinds) if drift_kinds else reply

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

    def _keep(self, prefix: str, request: WebhookRequest, note: str | None = None) -> None:
        self._landing.put(
            landing_key(prefix, request),
            landing_document(request, note),
            {"channel": request.channel, "request-id": request.request_id},
        )
