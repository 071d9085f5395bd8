"""Outbound webhooks: change documents to the subscribers' HTTP endpoints, signed per Standard
Webhooks.

The change feed calls ``documents_for`` once per change: one body per subscription that selects
anything, each queued as (subscription name, body, change id). The queue's handler calls
``WebhookDelivery.deliver`` for each message. Subscriptions are read on every delivery (the
channels secret can change while messages wait): a subscription that was removed or disabled
since is *dropped* (counted, not retried), and the body is narrowed again to what the
subscription asks for now, so a revoked opt-in (e.g. ``identifiers``) also holds for the
messages already queued.

Every attempt is signed afresh with the current time (receivers reject stale timestamps) and the
same ``webhook-id`` (the change id: receivers dedupe on it). Any answer but 2xx, redirects
included, and any network error or timeout raise DeliveryFailed: the caller retries with backoff
and the queue eventually dead-letters the message. Failure reasons name the subscription and the
status only, never the URL (it may carry a token) or the secret.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from ..domain.outbound_webhooks import (
    WebhookSubscriptions,
    encode_body,
    select_for,
    signed_headers,
)


# --- ports --------------------------------------------------------------------------------------
class ReceiverUnreachable(RuntimeError):
    """Transient: the receiver could not be reached or did not answer in time. The message names
    the kind of failure only (never the URL)."""


class WebhookSender(Protocol):
    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        """POST the body as is; the HTTP status (redirects are not followed). Raises
        ReceiverUnreachable on network errors and timeouts."""
        ...


# --- results ------------------------------------------------------------------------------------
class DeliveryFailed(RuntimeError):
    """This attempt failed; retry later (with backoff) and dead-letter in the end."""

    def __init__(self, subscription: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"webhook {subscription}: {reason}")
        self.subscription = subscription
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    subscription: str
    delivery_id: str
    outcome: Literal["delivered", "dropped"]
    status: int | None = None  # the receiver's 2xx when delivered
    reason: str = ""  # why dropped: removed, disabled, nothing selected any more

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


# --- the use cases ------------------------------------------------------------------------------
def documents_for(
    subscriptions: WebhookSubscriptions, document: Mapping[str, Any]
) -> list[tuple[str, bytes]]:
    """(subscription name, exact body) for every subscription the change concerns, by name."""
    bodies: list[tuple[str, bytes]] = []
    for name, subscription in subscriptions.items():
        selected = select_for(subscription, document)
        if selected is not None:
            bodies.append((name, encode_body(selected)))
    return bodies


class WebhookDelivery:
    def __init__(
        self,
        subscriptions: Callable[[], WebhookSubscriptions],
        sender: WebhookSender,
        clock: Callable[[], datetime],
    ) -> None:
        self._subscriptions = subscriptions
        self._sender = sender
        self._clock = clock

    def deliver(self, subscription_name: str, body: bytes, delivery_id: str) -> DeliveryResult:
        subscription = self._subscriptions().get(subscription_name)
        if subscription is None:
            return DeliveryResult(subscription_name, delivery_id, "dropped", reason="removed")
        if not subscription.enabled:
            return DeliveryResult(subscription_name, delivery_id, "dropped", reason="disabled")
        selected = select_for(subscription, _document(subscription_name, body))
        if selected is None:
            return DeliveryResult(subscription_name, delivery_id, "dropped", reason="nothing selected")
        body = encode_body(selected)  # the same bytes unless the subscription was narrowed since
        timestamp = math.floor(self._clock().timestamp())  # per attempt: receivers reject stale ones
        headers = signed_headers(subscription.secret, delivery_id, timestamp, body)
        try:
            status = self._sender.post(subscription.url, headers, body, subscription.timeout_seconds)
        except ReceiverUnreachable as exc:
            raise DeliveryFailed(subscription_name, f"receiver unreachable ({exc})") from None
        if not 200 <= status < 300:
            raise DeliveryFailed(subscription_name, f"HTTP {status}", status)
        return DeliveryResult(subscription_name, delivery_id, "delivered", status=status)


def _document(subscription: str, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise DeliveryFailed(subscription, "the queued body is not JSON") from None
    if not isinstance(document, dict):
        raise DeliveryFailed(subscription, "the queued body is not a JSON object")
    return document
