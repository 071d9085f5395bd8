"""Channel allocations' stock, pushed to their marketplaces: each change of what a channel may
sell becomes one incremental, idempotent update of its listing (domain/stock_push.py).

A platform that dedupes by idempotency key (Tmall, Doudian) simply gets the update again when it
is retried. For one that does not (Youzan), each push is claimed before the call and settled
after it; when a claim finds an earlier push unsettled (it may or may not have been applied), the
listing is set to what it may sell instead of incremented, which is right either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ..domain.inventory import Balance, InventoryRules
from ..domain.stock_push import ListingUpdate, listing_key, listing_of, stock_change
from .ports import MarketplaceRejected, MarketplaceStock, MarketplaceUnavailable, PushAttempts

PushOutcome = Literal[
    "pushed", "set", "already_pushed", "not_a_channel", "unchanged", "no_listing", "no_account"
]


class StockPush:
    def __init__(
        self,
        rules: Callable[[], InventoryRules],
        marketplaces: Callable[[str], MarketplaceStock | None],
        attempts: PushAttempts,
    ) -> None:
        self._rules = rules
        self._marketplaces = marketplaces
        self._attempts = attempts

    def apply(self, old: Balance | None, new: Balance | None, change_id: str, sequence: int) -> PushOutcome:
        """One stream record (`change_id` its event id, `sequence` its sequence number). Raises
        MarketplaceUnavailable (retry) or MarketplaceRejected (set aside). "set" is a push that
        set the listing's stock (an earlier push's outcome was unknown)."""
        rules = self._rules()
        current = new or old
        if current is None or current.location not in rules.locations:
            return "not_a_channel"
        change = stock_change(rules, old, new, change_id)
        if change is None:
            known = rules.locations[current.location]
            return "unchanged" if known.kind == "channel" else "not_a_channel"
        listing = listing_of(rules, change)
        if listing is None:
            return "no_listing"
        marketplace = self._marketplaces(change.channel)
        if marketplace is None:
            return "no_account"
        if marketplace.keyed:
            marketplace.push(ListingUpdate(change), listing)
            return "pushed"
        key = listing_key(change)
        claim = self._attempts.begin(key, sequence)
        if claim == "done":
            return "already_pushed"
        update = ListingUpdate(change, absolute=claim == "uncertain")
        try:
            marketplace.push(update, listing)
        except MarketplaceUnavailable as exc:
            # a refused set leaves the earlier, unknown outcome as uncertain as it was
            if not exc.maybe_applied and not update.absolute:
                self._attempts.release(key, sequence)
            raise
        except MarketplaceRejected:
            self._attempts.settle(key, sequence)
            raise
        self._attempts.settle(key, sequence)
        return "set" if update.absolute else "pushed"
