"""Stock pushes to a platform that dedupes nothing (Youzan): whatever fails, however often and in
whatever way (an error answer, an answer lost after the update was applied, a connection that
never reached the platform) and however often Lambda redelivers records, the listing ends at
what the channel allocation may sell, and every push is incremental unless an outcome was
unknown."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.domain.inventory import Balance, InventoryRules, Listing, Location
from scrm_sync.domain.stock_push import ListingUpdate
from scrm_sync.services.ports import MarketplaceUnavailable, PushClaim
from scrm_sync.services.stock_push import StockPush

SKU, LOCATION = "LIP-1", "youzan-shop"
RULES = InventoryRules(
    locations={LOCATION: Location(kind="channel", channel="youzan")},
    listings={"youzan": {SKU: Listing(item_id="520000001", sku_id="36000001")}},
)
OUTCOMES = ("ok", "error_answer", "lost_answer", "never_arrived")


@dataclass
class Claims:
    """DynamoPushAttempts' semantics (tests/integration/test_stock_push_moto.py runs the real one)."""

    settled: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    def begin(self, key: str, sequence: int) -> PushClaim:
        if self.settled.get(key, -1) >= sequence:
            return "done"
        uncertain = key in self.pending
        self.pending[key] = sequence
        return "uncertain" if uncertain else "clear"

    def settle(self, key: str, sequence: int) -> None:
        if self.settled.get(key, -1) < sequence:
            self.settled[key] = sequence
            self.pending.pop(key, None)

    def release(self, key: str, sequence: int) -> None:
        if self.pending.get(key) == sequence:
            del self.pending[key]


@dataclass
class Youzan:
    stock: int = 0
    kinds: list[str] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    keyed = False

    def push(self, update: ListingUpdate, listing: Listing) -> None:
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome in ("error_answer", "never_arrived"):
            raise MarketplaceUnavailable(outcome, maybe_applied=outcome == "never_arrived")
        self.kinds.append("set" if update.absolute else "add")
        self.stock = update.quantity if update.absolute else max(0, self.stock + update.quantity)
        if outcome == "lost_answer":
            raise MarketplaceUnavailable(outcome)


@settings(max_examples=300, deadline=None)
@given(
    on_hand=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12),
    outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=30),
    redeliveries=st.lists(st.integers(min_value=0, max_value=11), max_size=6),
)
def test_the_listing_ends_at_what_the_channel_may_sell(
    on_hand: list[int], outcomes: list[str], redeliveries: list[int]
) -> None:
    youzan, claims = Youzan(script=list(outcomes)), Claims()
    push = StockPush(lambda: RULES, lambda channel: youzan, claims)
    balances = [Balance(SKU, LOCATION, on_hand=n) for n in on_hand]
    records = list(zip([None, *balances[:-1]], balances, strict=True))

    def deliver(index: int) -> None:
        old, new = records[index]
        while True:  # Lambda retries a failed record before it moves on
            try:
                push.apply(old, new, f"record-{index}", sequence=100 + index)
                return
            except MarketplaceUnavailable:
                continue

    for index in range(len(records)):
        deliver(index)
        for again in redeliveries:  # a bisected or retried batch brings earlier records again
            if again <= index:
                deliver(again)

    assert youzan.stock == on_hand[-1]
    unknown = outcomes.count("lost_answer") + outcomes.count("never_arrived")
    assert youzan.kinds.count("set") <= unknown
    if unknown == 0:
        assert set(youzan.kinds) <= {"add"}
