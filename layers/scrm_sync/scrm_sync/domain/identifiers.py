"""Identifier normalization: one spelling per real-world identifier, so lookups and links agree.

A value that cannot be an identifier (a masked `138****8000`, an unparsable phone) raises
`InvalidIdentifier`; callers report it and never store it as a link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import phonenumbers

# Identifier types and whether they only make sense within a scope (app id, corp id, program).
SCOPE_REQUIRED: Final[dict[str, bool]] = {
    "phone": False,
    "email": False,
    "wechat_unionid": False,
    "wechat_openid": True,  # scope = official account / mini program app id
    "wecom_external_userid": True,  # scope = corp id
    "member_no": True,  # scope = brand or loyalty program
    "taobao_open_uid": False,  # scope = seller, when known
    "douyin_openid": False,  # scope = client key, when known
    "youzan_open_id": False,  # scope = shop (kdt_id), when known
    "device_id": False,  # an edge device (IoT thing name), linked to its owner by a registration
}
IDENTIFIER_TYPES: Final[frozenset[str]] = frozenset(SCOPE_REQUIRED)

_MAX_VALUE_LENGTH = 256
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL_OR_SEPARATOR = re.compile(r"[\x00-\x1f\x7f#]")


class InvalidIdentifier(ValueError):
    """The value cannot identify a customer (masked, malformed or of an unknown type)."""


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    type: str
    value: str
    scope: str = ""

    @property
    def key(self) -> str:
        """The identity-graph key: type, scope and value, which together name one identifier."""
        return f"{self.type}#{self.scope}#{self.value}"

    @classmethod
    def from_key(cls, key: str) -> Identifier:
        type_, scope, value = key.split("#", 2)
        return cls(type_, value, scope)

    def as_dict(self) -> dict[str, str]:
        out = {"type": self.type, "value": self.value}
        if self.scope:
            out["scope"] = self.scope
        return out


def normalize_identifier(
    type_: str, value: object, scope: object = None, default_region: str = "CN"
) -> Identifier:
    if type_ not in SCOPE_REQUIRED:
        raise InvalidIdentifier(f"unknown identifier type {type_!r}")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidIdentifier("value must be a string")
    text = str(value).strip()
    if not text:
        raise InvalidIdentifier("value is empty")
    if "*" in text:
        raise InvalidIdentifier("value is masked")
    if len(text) > _MAX_VALUE_LENGTH:
        raise InvalidIdentifier("value is too long")
    scope_text = "" if scope is None else str(scope).strip()
    if SCOPE_REQUIRED[type_] and not scope_text:
        raise InvalidIdentifier(f"{type_} needs a scope")
    if _CONTROL_OR_SEPARATOR.search(scope_text):
        raise InvalidIdentifier("scope contains control characters or '#'")

    if type_ == "phone":
        text = normalize_phone(text, default_region)
    elif type_ == "email":
        text = text.lower()
        if not _EMAIL.match(text):
            raise InvalidIdentifier("not an email address")
    elif re.search(r"[\x00-\x1f\x7f]", text):
        raise InvalidIdentifier("value contains control characters")
    return Identifier(type_, text, scope_text)


def normalize_phone(text: str, default_region: str = "CN") -> str:
    """E.164 form of a phone number; `138 0013 8000`, `+86-138-0013-8000` and
    `008613800138000` all become `+8613800138000`."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identifier_key_of(raw: Mapping[str, object], default_region: str = "CN") -> str | None:
    """The identity-graph key of an identifier as an event carries it ({type, value, scope}),
    or None when it is not a valid identifier."""
    try:
        return normalize_identifier(
            str(raw.get("type", "")), raw.get("value"), raw.get("scope"), default_region
        ).key
    except InvalidIdentifier:
        return None
