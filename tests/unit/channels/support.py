"""Shared checks for channel adapter tests."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.channels.base import ChannelAdapter, MalformedPush, SignatureInvalid, WebhookRequest
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.services.webhooks import WebhookIngest


def call_every_entry_point(
    adapter: ChannelAdapter, request: WebhookRequest, credentials: Mapping[str, Any]
) -> None:
    """Each entry point either succeeds or raises SignatureInvalid / MalformedPush (401/400),
    never anything that would become a 5xx."""
    for call in (
        lambda: adapter.is_handshake(request),
        lambda: adapter.handshake(request, credentials),
        lambda: adapter.verify(request, credentials),
        lambda: adapter.parse(request, credentials),
    ):
        with contextlib.suppress(SignatureInvalid, MalformedPush):
            call()


def webhook_ingest_for(
    adapter: ChannelAdapter, credentials: Mapping[str, Any]
) -> tuple[WebhookIngest, InMemoryLanding, InMemoryPushStream]:
    """The real webhook flow for one channel, with in-memory landing and ingest stream."""
    landing, queue = InMemoryLanding(), InMemoryPushStream()
    loaded = load_credentials({adapter.name: dict(credentials)})
    return WebhookIngest({adapter.name: adapter}, lambda: loaded, landing, queue), landing, queue
