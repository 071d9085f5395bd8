"""Shared checks for channel adapter tests."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from scrm_sync.channels.base import ChannelAdapter, MalformedPush, SignatureInvalid, WebhookRequest


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
