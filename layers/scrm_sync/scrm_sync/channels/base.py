"""The small interface every channel implements: handshake, verify, parse, ack."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from ..domain.events import CanonicalEvent
from ..domain.mapping import MappingError

Verified = TypeVar("Verified")
_MAX_REASON_LENGTH = 300
_MAX_REASON_FIELDS = 5


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


@dataclass(frozen=True, slots=True)
class RefusedEvent:
    """A platform message of an authentic push that could not become a canonical event."""

    kind: str  # the platform's event kind (Douyin event, Doudian tag, Youzan type)
    reason: str  # value-free (failure_reason)


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
    # messages whose event the canonical model refused (not storable, malformed ids): recorded
    # as mapping failures and counted by the webhook, skipped and reported by a replay
    refused: list[RefusedEvent] = field(default_factory=list)

    def add(self, event: CanonicalEvent, kind: str, payload: dict[str, Any]) -> None:
        self.events.append(event)
        self.sources.append((kind, payload))

    def describe(self, kind: str, payload: Mapping[str, Any]) -> ParsedPush:
        """A single-message push: its payload is observed and is the mapping source of each event."""
        document = dict(payload)
        self.observed.append((kind, document))
        self.sources = [(kind, document) for _ in self.events]
        return self

    def refuse(self, kind: str, error: BaseException) -> str:
        """Report a message whose event could not be built; returns the value-free reason."""
        reason = failure_reason(error)
        self.refused.append(RefusedEvent(kind, reason))
        return reason


class SignatureInvalid(Exception):
    """Authentication failed (wrong signature, unknown app, stale timestamp)."""

    status = 401


class MalformedPush(ValueError):
    """The request is authentic (or cannot be checked) but its body cannot be read."""


def failure_reason(exc: BaseException) -> str:
    """The exception type, with its message only where that is known to hold no input value
    (our own MalformedPush / MappingError texts; pydantic's field locations and error types)."""
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        fields = sorted(
            {
                (".".join(str(part) for part in error["loc"]) or "event") + f" ({error['type']})"
                for error in exc.errors(include_url=False, include_input=False, include_context=False)
            }
        )
        detail = ", ".join(fields[:_MAX_REASON_FIELDS]) + (
            ", ..." if len(fields) > _MAX_REASON_FIELDS else ""
        )
        return f"{name}: {detail}"[:_MAX_REASON_LENGTH]
    if isinstance(exc, MalformedPush | MappingError):
        return f"{name}: {exc}"[:_MAX_REASON_LENGTH]
    return name


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


class VerifiedOnce(Generic[Verified]):
    """What an adapter's verify() derived from the request it authenticated (the decrypted
    message), kept for the parse() of that same request object, so a push costs one signature
    check and one decrypt. Per thread; a parse of any other request computes it again."""

    def __init__(self) -> None:
        self._local = threading.local()

    def keep(self, request: WebhookRequest, value: Verified) -> Verified:
        self._local.kept = (request, value)
        return value

    def take(self, request: WebhookRequest) -> Verified | None:
        kept = getattr(self._local, "kept", None)
        self._local.kept = None
        return kept[1] if kept is not None and kept[0] is request else None
