"""Marketplace stock push: what a channel allocation's change of available stock means for the
marketplace listing, as an incremental, idempotent update.

A location of kind `channel` (`{"kind": "channel", "channel": "tmall"}`) is the stock a channel
may sell. Each change of its balance (the InventoryTable stream: old and new image) changes what
the listing may sell by the difference of `available` (never below zero on either side), and that
difference is pushed with the channel's incremental API under an idempotency key derived from the
stream record, so a retried push is applied once:
- Tmall `tmall.item.quantity.update` (TOP): `options` `{"type": 2, "outer_biz_key": <hex>}`
  (type 2 = incremental; outer_biz_key, hex only, is the idempotency key for incremental updates;
  reference/inventory.md 3.4, apiId 26178), SKUs in `sku_quantities` by `sku_id`.
- Doudian `sku.syncStock`: `incremental: true` with `idempotent_id` (reference/inventory.md 3.4).
- Youzan `youzan.item.quantity.update` 3.0.0: `type` 1 = incremental, 0 = full (the official Java
  SDK's generated `YouzanItemQuantityUpdateParams`, and its C# port). It takes no idempotency key,
  so each push is claimed before the call and confirmed after (`PushAttempts`): when an earlier
  push of the listing may have been applied without being confirmed (a timeout, a crash), the next
  one sets the listing to what it may sell (`type` 0) instead of adding to an unknown number.
Which listing a SKU is on each channel is the rules' `inventory.listings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints, model_validator

from .inventory import Balance, InventoryRules, Listing

PUSH_CHANNELS: Final = ("tmall", "doudian", "youzan")
PushChannel = Literal["tmall", "doudian", "youzan"]
# channels whose stock API takes an idempotency key; the others are claimed and confirmed
KEYED_CHANNELS: Final = frozenset({"tmall", "doudian"})


class MarketplaceAccount(BaseModel):
    """One channel's API credentials (the channels secret's `marketplace_stock.<channel>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    app_key: Annotated[str, StringConstraints(min_length=1, max_length=128)]  # Youzan: client_id
    app_secret: SecretStr  # Youzan: client_secret
    # Tmall: the shop's `session` key (from the shop's authorization, renewed by the operator).
    # Doudian and Youzan self-use apps need none: with `shop_id` their token is fetched and
    # renewed from the app credentials (Doudian token.create, Youzan /auth/token).
    access_token: SecretStr | None = None
    # Doudian shop_id / Youzan kdt_id
    shop_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] | None = None
    api_base: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None


class MarketplaceAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    tmall: MarketplaceAccount | None = None
    doudian: MarketplaceAccount | None = None
    youzan: MarketplaceAccount | None = None

    @model_validator(mode="after")
    def _what_each_channel_needs(self) -> MarketplaceAccounts:
        if self.tmall is not None and self.tmall.access_token is None:
            raise ValueError("tmall needs the shop's access_token (its session key)")
        doudian = self.doudian
        if doudian is not None and doudian.access_token is None and doudian.shop_id is None:
            raise ValueError("doudian needs shop_id (or a fixed access_token)")
        if self.youzan is not None and self.youzan.shop_id is None:
            raise ValueError("youzan needs shop_id (the shop's kdt_id)")
        return self

    def account(self, channel: str) -> MarketplaceAccount | None:
        return getattr(self, channel, None) if channel in PUSH_CHANNELS else None


@dataclass(frozen=True, slots=True)
class StockChange:
    channel: str
    location: str
    sku: str
    delta: int  # what the listing may sell more (or less)
    available: int  # what it may sell now
    change_id: str  # the stream record: a redelivered record is the same change

    @property
    def idempotency_key(self) -> str:
        """Hex (Tmall's outer_biz_key accepts hex only), stable per change."""
        return hashlib.sha256(f"{self.channel}|{self.change_id}".encode()).hexdigest()[:32]


def channel_of(rules: InventoryRules, location: str) -> str | None:
    known = rules.locations.get(location)
    return known.channel if known is not None and known.kind == "channel" else None


def stock_change(
    rules: InventoryRules, old: Balance | None, new: Balance | None, change_id: str
) -> StockChange | None:
    """The listing update a balance change asks for; None when the location is not a channel
    allocation or what it may sell did not change."""
    current = new or old
    if current is None:
        return None
    channel = channel_of(rules, current.location)
    if channel is None:
        return None
    safety = rules.safety_stock_of(current.sku, current.location)
    before = max(old.available(safety), 0) if old is not None else 0
    after = max(new.available(safety), 0) if new is not None else 0
    if after == before:
        return None
    return StockChange(channel, current.location, current.sku, after - before, after, change_id)


def listing_of(rules: InventoryRules, change: StockChange) -> Listing | None:
    return rules.listings.get(change.channel, {}).get(change.sku)


@dataclass(frozen=True, slots=True)
class ListingUpdate:
    """What is sent for a change: add `change.delta`, or (absolute) set `change.available`."""

    change: StockChange
    absolute: bool = False

    @property
    def quantity(self) -> int:
        return self.change.available if self.absolute else self.change.delta


def listing_key(change: StockChange) -> str:
    """One claim record per channel allocation and SKU (its pushes are in stream order)."""
    return f"stock-push#{change.channel}#{change.location}#{change.sku}"
