"""Channel credentials (the JSON document in the channels secret) and API key checks."""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .outbound_webhooks import WebhookSubscriptions
from .stock_push import MarketplaceAccounts


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ApiKeys(_Entry):
    keys: dict[str, str] = Field(default_factory=dict)  # caller name -> key

    def caller_for(self, presented: str | None) -> str | None:
        """Name of the caller whose key matches, compared in constant time over every key."""
        if not presented:
            return None
        match = None
        for name, key in sorted(self.keys.items()):
            if hmac.compare_digest(presented.encode(), key.encode()):
                match = name
        return match


class ChannelCredentials(BaseModel):
    """Missing channels are simply disabled (their webhooks answer 404)."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)  # secrets

    wecom: _Entry | None = None
    wechat_mp: _Entry | None = None
    douyin: _Entry | None = None
    doudian: _Entry | None = None
    youzan: _Entry | None = None
    api: ApiKeys = Field(default_factory=ApiKeys)
    wecom_robot: _Entry | None = None
    # receivers of the change feed's signed webhooks; validated with the rest of the secret, so a
    # bad subscription never replaces the last valid document
    outbound_webhooks: WebhookSubscriptions = Field(default_factory=WebhookSubscriptions)
    # marketplace APIs the stock push calls (tmall, doudian): app key, secret, the shop's token
    marketplace_stock: MarketplaceAccounts = Field(default_factory=MarketplaceAccounts)

    @field_validator("outbound_webhooks", mode="before")
    @classmethod
    def _subscriptions(cls, entry: object) -> WebhookSubscriptions:
        return entry if isinstance(entry, WebhookSubscriptions) else WebhookSubscriptions.parse(entry)

    def channel(self, name: str) -> dict[str, Any] | None:
        """The credentials of one channel, or None when it is not configured (disabled)."""
        if name in type(self).model_fields:
            entry = getattr(self, name)
            return entry.model_dump() if isinstance(entry, _Entry) else None
        extra = (self.model_extra or {}).get(name)  # channels added by integrators
        return dict(extra) if isinstance(extra, dict) else None


def load_credentials(document: dict[str, Any] | None) -> ChannelCredentials:
    return ChannelCredentials.model_validate(document or {})
