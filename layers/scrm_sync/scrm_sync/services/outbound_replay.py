"""`scrm outbound replay`: deliveries that ended in a destination's dead-letter queue go back onto
its queue once the cause is fixed (a receiver is back, WeCom's trusted IP is listed). A replayed
message keeps its body and group, so its delivery id is unchanged and receivers that already
have it dedupe it; the WeCom tag writer re-reads the profile and writes only what is missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class RedriveCount:
    moved: int = 0
    kept: int = 0  # left in the dead-letter queue (filtered out, over the limit, or a dry run)


class DeadLetters(Protocol):
    def destinations(self) -> list[str]: ...

    def redrive(
        self, destination: str, wanted: Callable[[Mapping[str, str]], bool], limit: int | None, dry_run: bool
    ) -> RedriveCount: ...


class OutboundReplay:
    def __init__(self, dead_letters: DeadLetters) -> None:
        self._dead_letters = dead_letters

    def replay(
        self,
        destination: str | None = None,
        subscription: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, RedriveCount]:
        known = self._dead_letters.destinations()
        if destination is not None and destination not in known:
            raise LookupError(f"unknown destination {destination!r}: one of {', '.join(known)}")
        chosen = [destination] if destination else known

        def wanted(attributes: Mapping[str, str]) -> bool:
            return subscription is None or attributes.get("subscription") == subscription

        return {name: self._dead_letters.redrive(name, wanted, limit, dry_run) for name in chosen}
