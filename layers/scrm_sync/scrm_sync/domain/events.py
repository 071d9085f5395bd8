"""Canonical event model v1: the one shape every channel, CDC stream and integrator is
normalized into before it reaches the sync core.

Event types:
- `profile.updated`: attributes of the customer named by the identifiers.
- `order.created` / `order.updated`: an `order` (status "deleted" when its source row is gone).
- `interaction`: an `interaction` (message, like, visit...).
- `tag.changed`: a tag added or removed, as attributes.
- `identifiers.removed` (added in v1, additive): the source no longer vouches for these
  identifiers (a deleted member row). The sync core removes their links from the profile that
  owns them; the profile and its fields stay, and a later event naming them links them again.
  It carries identifiers only. Unlike the other types its effect depends on order relative to
  the same source's events for those identifiers (CDC keeps a row's changes in order).
- `inventory` (added in v1, additive): one stock movement (`inventory`, see domain/inventory.py)
  at one location. It names no customer, so it needs no identifiers; it goes to the inventory
  queue (the priority lane), never to the profile sync.

What the model accepts is storable (domain/storable.py): numbers DynamoDB holds exactly, at most
MAX_ATTRIBUTES_PER_EVENT attributes, MAX_EVENT_BYTES as queued. Times are RFC 3339 text with an
offset in JSON (code may pass aware datetimes).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .inventory import InventoryMovement, InventoryRules
from .privacy import consent_key_of, is_consent_attribute
from .storable import MAX_ATTRIBUTES_PER_EVENT, as_exact_float, check_event_size, check_number, check_scalar

SCHEMA_VERSION: Literal["1"] = "1"
MAX_EVENTS_PER_REQUEST = 500

EventType = Literal[
    "profile.updated",
    "order.created",
    "order.updated",
    "interaction",
    "tag.changed",
    "identifiers.removed",
    "inventory",
]
ORDER_EVENT_TYPES = frozenset({"order.created", "order.updated"})
IDENTIFIERS_REMOVED: Literal["identifiers.removed"] = "identifiers.removed"
INVENTORY: Literal["inventory"] = "inventory"

SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# One validator for the whole value, so an error is located at the attribute ("attributes.points")
AttributeValue = Annotated[
    str | bool | int | float | None, BeforeValidator(as_exact_float), AfterValidator(check_scalar)
]


def _storable_number(number: Decimal | float) -> Decimal | float:
    check_number(number)
    return number


StorableDecimal = Annotated[Decimal, AfterValidator(_storable_number)]
StorableFloat = Annotated[float, BeforeValidator(as_exact_float), AfterValidator(_storable_number)]

# RFC 3339 date-time with an offset (seconds required, "T" or a space between date and time).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: Any) -> Any:
    """JSON must carry a time as RFC 3339 text: a unix number would be read as one silently.
    Code that builds events may pass an aware datetime."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-01T09:30:00+08:00"
        )
    return value


Rfc3339Time = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierIn(_Model):
    """An identifier as sent; normalization (and rejection of masked values) happens later."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: Annotated[str, StringConstraints(max_length=512)]
    scope: Annotated[str, StringConstraints(max_length=256)] | None = None


class OrderLine(_Model):
    line_id: ShortText | None = None  # the source's own id of the line (Taobao `oid`)
    sku: ShortText | None = None
    name: Annotated[str, StringConstraints(max_length=512)] | None = None
    quantity: StorableDecimal = Decimal(1)
    price: StorableDecimal | None = None
    amount: StorableDecimal | None = None


class Order(_Model):
    order_id: ShortText
    status: ShortText
    total: StorableDecimal | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    created_at: Rfc3339Time | None = None
    lines: list[OrderLine] = Field(default_factory=list, max_length=500)


class Interaction(_Model):
    kind: ShortText
    content: Annotated[str, StringConstraints(max_length=8192)] | None = None
    channel_ref: ShortText | None = None
    metrics: dict[AttributeName, StorableFloat] = Field(default_factory=dict)


class CanonicalEvent(_Model):
    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: ShortText
    source: SourceName
    type: EventType
    occurred_at: Rfc3339Time
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=50, validate_default=True)
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, max_length=MAX_ATTRIBUTES_PER_EVENT
    )
    order: Order | None = None
    interaction: Interaction | None = None
    inventory: InventoryMovement | None = None

    @field_validator("identifiers")
    @classmethod
    def _names_a_customer(cls, identifiers: list[IdentifierIn], info: ValidationInfo) -> list[IdentifierIn]:
        if not identifiers and info.data.get("type") != INVENTORY:
            raise ValueError("at least one identifier must name the customer")
        return identifiers

    @field_validator("attributes")
    @classmethod
    def _consents(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        for name, value in attributes.items():
            well_formed = consent_key_of(name) is not None and isinstance(value, bool | None)
            if is_consent_attribute(name) and not well_formed:
                raise ValueError(f"{name}: a consent is consent_<purpose>_<channel> set to true or false")
        return attributes

    @model_validator(mode="after")
    def _payload_matches_type(self) -> CanonicalEvent:
        if self.type == INVENTORY:
            if self.inventory is None:
                raise ValueError("inventory events need an 'inventory'")
            if self.identifiers or self.attributes or self.order or self.interaction:
                raise ValueError(
                    "inventory events carry an 'inventory' only (no identifiers, attributes, ...)"
                )
        elif self.inventory is not None:
            raise ValueError("only inventory events carry an 'inventory'")
        if self.type in ORDER_EVENT_TYPES and self.order is None:
            raise ValueError(f"{self.type} events need an 'order'")
        if self.type == "interaction" and self.interaction is None:
            raise ValueError("interaction events need an 'interaction'")
        if self.type == IDENTIFIERS_REMOVED and (self.attributes or self.order or self.interaction):
            raise ValueError(f"{IDENTIFIERS_REMOVED} events carry identifiers only")
        try:
            message = self.to_message()
        except ValueError:  # pydantic cannot write an unpaired surrogate ("\ud800") as UTF-8
            raise ValueError("text holds an unpaired surrogate escape, which is not Unicode") from None
        check_event_size(message)
        return self

    @property
    def idempotency_key(self) -> str:
        return f"{self.source}#{self.event_id}"

    def to_message(self) -> str:
        """The queue message body (JSON, lossless for decimals and times)."""
        return self.model_dump_json(exclude_none=False)


def needs_stock(event: CanonicalEvent, rules: InventoryRules) -> bool:
    """An order from a channel with a fulfilment location: the inventory lane holds its lines
    (as well as the profile sync recording it)."""
    return event.order is not None and event.source in rules.fulfilment


def parse_event(payload: Any) -> CanonicalEvent:
    """Validate one event from untrusted JSON (raises pydantic.ValidationError)."""
    return CanonicalEvent.model_validate(payload)


def occurred_at_utc(event: CanonicalEvent) -> datetime:
    return event.occurred_at.astimezone(UTC)


# A replayed event (`scrm replay`) is the original with a new id: applied instead of dropped as a
# duplicate, its field versions sorting just after the original's (same time and source).
REPLAY_MARK = "~replay:"


def replay_event_id(event_id: str, run_id: str) -> str:
    return f"{original_event_id(event_id)}{REPLAY_MARK}{run_id}"


def original_event_id(event_id: str) -> str:
    return event_id.split(REPLAY_MARK, 1)[0]
