"""When a cached WeCom credential (access_token, JS-SDK ticket) may be used, and who refreshes it.

WeCom rate-limits the calls that issue credentials (a corp's jsapi ticket 400 per hour, an app's
100 per hour; a herd of gettoken calls is answered with 45033), so every Lambda shares one cached
copy and one caller at a time refreshes it, holding a lease. A credential is refreshed some
minutes before WeCom's expiry; while one caller refreshes, the others keep using the old copy if
it has enough life left, and wait for the new one only if it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

DEFAULT_LIFETIME_SECONDS = 7200  # WeCom's expires_in for tokens and tickets
REFRESH_MARGIN_SECONDS = 300  # refresh this long before WeCom's expiry
MIN_REMAINING_SECONDS = 60  # never hand out a credential with less life than this left


@dataclass(frozen=True)
class CachedCredential:
    value: str
    expires_at: float  # epoch seconds

    def due_for_refresh(self, now: float) -> bool:
        return now >= self.expires_at - REFRESH_MARGIN_SECONDS

    def usable(self, now: float) -> bool:
        return now < self.expires_at - MIN_REMAINING_SECONDS


def expiry(fetched_at: float, expires_in: Any) -> float:
    """WeCom's `expires_in` (seconds) from the moment the request was sent; a missing or nonsensical
    value counts as the documented 7200 s."""
    valid = isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0
    return fetched_at + (expires_in if valid else DEFAULT_LIFETIME_SECONDS)


class Step(Enum):
    USE = "use"  # hand out the cached value
    REFRESH = "refresh"  # take the lease and fetch a new value
    WAIT = "wait"  # someone else is refreshing and the cached value cannot be used meanwhile


def next_step(
    cached: CachedCredential | None, now: float, refreshing_elsewhere: bool, rejected: str | None = None
) -> Step:
    """`rejected` is a value WeCom has just refused (an access_token reported invalid): it is never
    handed out again, but a different cached value (already refreshed by someone else) is."""
    current = cached if cached is not None and cached.value != rejected else None
    if current is not None and not current.due_for_refresh(now):
        return Step.USE
    if refreshing_elsewhere:
        return Step.USE if current is not None and current.usable(now) else Step.WAIT
    return Step.REFRESH
