"""The change feed's fan-out: each change document goes to the queue of every destination that
wants it, so a destination that fails (WeCom down, a receiver gone) holds back only its own queue.

- `wecom_tags`: a small message naming the profile, when the change can affect its tags (the
  writer reads the profile as it is then);
- `webhooks`: one message per subscription that selects something of the change (the exact body
  it will be signed and posted with);
- `event_bus`: the document, for `scrm.profile.changed` events on the bus.

The destination queues are FIFO: a profile's messages (per subscription, for webhooks) are
delivered in order, one at a time, and a message's deduplication id is derived from the
document's id, so a stream record delivered twice within the queue's five-minute window is sent
once (and after that the destinations' own idempotency takes over).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.change_feed import bounded, compact_json
from ..domain.credentials import ChannelCredentials
from ..domain.rules import Rules
from ..domain.wecom_tags import tag_relevant
from .outbound_webhooks import documents_for

WECOM_TAGS = "wecom_tags"
WEBHOOKS = "webhooks"
EVENT_BUS = "event_bus"
DESTINATIONS = (WECOM_TAGS, WEBHOOKS, EVENT_BUS)
MAX_DOCUMENT_BYTES = 200_000  # below SQS's and EventBridge's 256 KB, with room for the envelope


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    body: str
    group: str  # FIFO message group: the messages of one group are delivered in order
    deduplication_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class Outbox(Protocol):
    def send(self, destination: str, messages: Sequence[OutboundMessage]) -> list[int]:
        """Enqueue `messages` on the destination's queue; the indexes of those that failed."""
        ...


def _dedup(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class ChangeFeed:
    def __init__(
        self,
        rules: Callable[[], Rules],
        credentials: Callable[[], ChannelCredentials],
        outbox: Outbox,
        destinations: frozenset[str],
        consent_of: Callable[[str], dict[str, bool]] | None = None,
    ) -> None:
        self._rules = rules
        self._credentials = credentials
        self._outbox = outbox
        self._destinations = destinations
        self._consent_of = consent_of  # a profile's recorded consents, for identity documents

    def messages(self, document: Mapping[str, Any]) -> dict[str, list[OutboundMessage]]:
        """What each enabled destination gets for one change document. Every document carries
        the profile's recorded consents (an identity document looks them up), which webhook
        subscriptions with a purpose honour and event bus rules can match on."""
        if "consent" not in document and self._consent_of is not None:
            document = {**document, "consent": self._consent_of(str(document["profile_id"]))}
        out: dict[str, list[OutboundMessage]] = {}
        doc_id, profile_id = str(document["id"]), str(document["profile_id"])
        if WECOM_TAGS in self._destinations and tag_relevant(document, self._rules().wecom_tags):
            body = {"id": doc_id, "profile_id": profile_id, "changed_at": document.get("changed_at")}
            out[WECOM_TAGS] = [OutboundMessage(json.dumps(body), profile_id, _dedup(doc_id, WECOM_TAGS))]
        if WEBHOOKS in self._destinations:
            subscriptions = self._credentials().outbound_webhooks
            out[WEBHOOKS] = [
                OutboundMessage(
                    body.decode(),
                    f"{name}#{profile_id}",
                    _dedup(doc_id, WEBHOOKS, name),
                    {
                        "subscription": name,
                        "delivery_id": doc_id,
                        "changed_at": str(document.get("changed_at")),
                    },
                )
                for name, body in documents_for(subscriptions, bounded(document, MAX_DOCUMENT_BYTES))
            ]
        if EVENT_BUS in self._destinations:
            body_text = compact_json(bounded(document, MAX_DOCUMENT_BYTES))
            out[EVENT_BUS] = [OutboundMessage(body_text, profile_id, _dedup(doc_id, EVENT_BUS))]
        return {destination: messages for destination, messages in out.items() if messages}

    def publish(self, documents: Sequence[tuple[str, Mapping[str, Any]]]) -> set[str]:
        """Fan out (record key, document) pairs; the keys of the records whose messages could
        not all be enqueued (their stream records are retried)."""
        batches: dict[str, list[tuple[str, OutboundMessage]]] = {}
        for key, document in documents:
            for destination, messages in self.messages(document).items():
                batches.setdefault(destination, []).extend((key, message) for message in messages)
        failed: set[str] = set()
        for destination, pairs in batches.items():
            for index in self._outbox.send(destination, [message for _, message in pairs]):
                failed.add(pairs[index][0])
        return failed
