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
Which listing a SKU is on each channel is the rules' `inventory.listings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints

from .inventory import Balance, InventoryRules, Listing

PUSH_CHANNELS: Final = ("tmall", "doudian")
PushChannel = Literal["tmall", "doudian"]


class MarketplaceAccount(BaseModel):
    """One channel's API credentials (the channels secret's `marketplace_stock.<channel>`). The
    session / access token is kept fresh by the operator (a shop's authorization)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    app_key: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    app_secret: SecretStr
    access_token: SecretStr  # Tmall: the `session` key; Doudian: the shop's access_token
    api_base: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] | None = None


class MarketplaceAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    tmall: MarketplaceAccount | None = None
    doudian: MarketplaceAccount | None = None

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
