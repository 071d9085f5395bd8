"""The small interface every channel implements: handshake, verify, parse, ack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..domain.events import CanonicalEvent


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    channel: str
    method: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    body: bytes  # exactly as received: signatures are computed over these bytes
    received_at: datetime
    request_id: str


@dataclass(frozen=True, slots=True)
class WebhookReply:
    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    drift_kinds: tuple[str, ...] = ()  # event kinds whose payload drifted from the known schema
    unmappable: int = 0  # events (or a whole push) that could not be mapped: recorded, still acked


@dataclass(slots=True)
class ParsedPush:
    events: list[CanonicalEvent] = field(default_factory=list)
    # the platform's own delivery id(s): platforms retry, these make the retries harmless
    delivery_ids: list[str] = field(default_factory=list)
    unmapped: dict[str, Any] = field(default_factory=dict)
    # per event (same index): (event kind, platform payload) for the rules file's field mappings
    sources: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # every platform message of the push, including those that made no event: schema drift
    # detection compares them with what the source sent before
    observed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # follow-up work for after the ack (e.g. fetch a WeCom contact's details): ids only
    enrichments: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: CanonicalEvent, kind: str, payload: dict[str, Any]) -> None:
        self.events.append(event)
        self.sources.append((kind, payload))

    def describe(self, kind: str, payload: Mapping[str, Any]) -> ParsedPush:
        """A single-message push: its payload is observed and is the mapping source of each event."""
        document = dict(payload)
        self.observed.append((kind, document))
        self.sources = [(kind, document) for _ in self.events]
        return self


class SignatureInvalid(Exception):
    """Authentication failed (wrong signature, unknown app, stale timestamp)."""

    status = 401


class MalformedPush(ValueError):
    """The request is authentic (or cannot be checked) but its body cannot be read."""


class ChannelAdapter(Protocol):
    name: str

    def handshake(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> WebhookReply:
        """Answer the platform's URL check (GET, or a verification POST); raise SignatureInvalid."""
        ...

    def is_handshake(self, request: WebhookRequest) -> bool: ...

    def verify(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> None:
        """Raise SignatureInvalid unless the push is authentic."""
        ...

    def parse(self, request: WebhookRequest, credentials: Mapping[str, Any]) -> ParsedPush:
        """Canonical events carried by an authentic push; raise MalformedPush."""
        ...

    def ack(self, request: WebhookRequest, push: ParsedPush) -> WebhookReply:
        """The body the platform expects, so it stops retrying."""
        ...
