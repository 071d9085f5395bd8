"""Channel allocations' stock, pushed to their marketplaces: each change of what a channel may
sell becomes one incremental, idempotent update of its listing (domain/stock_push.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ..domain.inventory import Balance, InventoryRules
from ..domain.stock_push import listing_of, stock_change
from .ports import MarketplaceStock

PushOutcome = Literal["pushed", "not_a_channel", "unchanged", "no_listing", "no_account"]


class StockPush:
    def __init__(
        self, rules: Callable[[], InventoryRules], marketplaces: Callable[[str], MarketplaceStock | None]
    ) -> None:
        self._rules = rules
        self._marketplaces = marketplaces

    def apply(self, old: Balance | None, new: Balance | None, change_id: str) -> PushOutcome:
        """Raises MarketplaceUnavailable (retry) or MarketplaceRejected (set aside)."""
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
        marketplace.push(change, listing)
        return "pushed"
