"""Contact enrichment after the ack: a WeCom contact's details (name, unionid, tags, remark
mobiles) fetched from WeCom's API and fed to the sync core as one more canonical event.

The push's own event has already created or updated the profile, so an API outage holds back
nothing but the details: the request stays on its queue and is retried with backoff, and ends in
the dead-letter queue (kept, not dropped) if WeCom stays down for longer than the queue allows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..channels.wecom_contact import ContactEnrichmentRequest, contact_event
from ..domain.credentials import ChannelCredentials
from ..domain.events import CanonicalEvent
from .ingest import QueueUnavailable
from .ports import EventQueue


class ContactDirectory(Protocol):
    def external_contact(self, external_userid: str) -> dict[str, Any]: ...


class EnrichmentNotConfigured(RuntimeError):
    """The channel's credentials lack what the API needs (retried: an operator can add them)."""


class ContactEnrichment:
    def __init__(
        self,
        credentials: Callable[[], ChannelCredentials],
        directory_for: Callable[[Mapping[str, Any]], ContactDirectory],
        queue: EventQueue,
    ) -> None:
        self._credentials = credentials
        self._directory_for = directory_for
        self._queue = queue

    def enrich(self, request: ContactEnrichmentRequest) -> CanonicalEvent:
        credentials = self._credentials().channel(request.channel)
        if not credentials or not credentials.get("secret") or credentials.get("corp_id") != request.corp_id:
            raise EnrichmentNotConfigured(f"{request.channel}: no API secret for corp {request.corp_id}")
        answer = self._directory_for(credentials).external_contact(request.external_userid)
        event = contact_event(request, answer)
        if self._queue.send([("0", event.to_message())]):
            raise QueueUnavailable("enriched contact could not be enqueued")
        return event
