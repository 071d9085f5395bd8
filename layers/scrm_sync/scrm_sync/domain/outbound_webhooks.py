"""Outbound webhooks: who gets which part of a profile change document, and how it is signed.

Subscriptions live in the channels secret under ``outbound_webhooks`` (name -> subscription).
A subscription chooses the change kinds and the profile fields it receives; identifiers (phones,
emails, open ids) are personal data, so a subscriber gets them only when it names the
``identifiers`` kind (and ``unlink``, whose record names the unlinked identifier). Selection
is an allow-list: only the envelope and the parts a subscription asked for are copied out of
the change document, never anything else it may carry.

Deliveries are signed per Standard Webhooks (https://www.standardwebhooks.com/): headers
``webhook-id`` (the change id: the same on every attempt, receivers dedupe on it),
``webhook-timestamp`` (unix seconds of the attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, the key being the base64-decoded
secret after its ``whsec_`` prefix). The secret never appears in a repr, a str or an error.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
)

from .privacy import consent_allows, consent_attribute

ENTRY = "outbound_webhooks"  # the channels-secret entry
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
USER_AGENT = "omnichannel-scrm-sync-webhooks/1"
CONTENT_TYPE = "application/json"

Kind = Literal["fields", "identifiers", "merged", "merged_into", "split", "unlink"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# the document key that carries each kind's data
KIND_KEYS: dict[Kind, str] = {
    "fields": "fields",
    "identifiers": "identifiers",
    "merged": "merged_from",
    "merged_into": "merged_into",
    "split": "split_from",
    "unlink": "unlink",
}
# identifiers and unlinks name identifier values (phones, open ids): personal data a subscriber asks for
PERSONAL_KINDS: frozenset[Kind] = frozenset({"identifiers", "unlink"})
DEFAULT_KINDS: frozenset[Kind] = frozenset(k for k in KINDS if k not in PERSONAL_KINDS)
ENVELOPE = ("type", "version", "id", "profile_id", "sequence", "changed_at", "consent")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII, no spaces: a header value
_MIN_KEY_BYTES, _MAX_KEY_BYTES = 24, 64


class InvalidWebhookSubscriptions(ValueError):
    """The ``outbound_webhooks`` entry does not validate. The message names each subscription and
    field at fault, never a value (secrets, and URLs that may carry tokens)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid outbound_webhooks: " + "; ".join(problems))
        self.problems = problems


def secret_key(secret: SecretStr | str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError (without the secret) when it is not one."""
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    encoded = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(f"must decode to {_MIN_KEY_BYTES}..{_MAX_KEY_BYTES} bytes")
    return key


class WebhookSubscription(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = Field(repr=False)  # may carry a token: see redacted_url
    secret: SecretStr
    kinds: frozenset[Kind] = DEFAULT_KINDS
    fields: tuple[str, ...] = ("*",)  # field names or fnmatch patterns (case-sensitive)
    timeout_seconds: float = Field(default=5.0, ge=1, le=10)
    enabled: StrictBool = True
    # what the receiver uses the data for, on which channel ("marketing.sms"): it gets the changes
    # of people who granted that consent only (README "Privacy")
    purpose: str | None = None

    @field_validator("purpose")
    @classmethod
    def _consent_key(cls, purpose: str | None) -> str | None:
        if purpose is not None:
            consent_attribute(purpose)  # raises for anything but "<purpose>.<channel>"
        return purpose

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        # messages never quote the URL: it may carry a token
        if url != url.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
            raise ValueError("must not contain whitespace or control characters")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("must be an absolute http:// or https:// URL")
        try:
            host, _ = parts.hostname, parts.port  # .port raises on a malformed port
        except ValueError:
            raise ValueError("has an invalid port") from None
        if not host:
            raise ValueError("must name a host")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        return url

    @field_validator("secret")
    @classmethod
    def _whsec(cls, secret: SecretStr) -> SecretStr:
        secret_key(secret)
        return secret

    @field_validator("kinds")
    @classmethod
    def _some_kind(cls, kinds: frozenset[Kind]) -> frozenset[Kind]:
        if not kinds:
            raise ValueError("must name at least one kind")
        return kinds

    @field_validator("fields")
    @classmethod
    def _patterns(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        if not fields:
            raise ValueError('must name at least one field or pattern (leave out the "fields" kind instead)')
        if any(not f or len(f) > 128 for f in fields):
            raise ValueError("patterns must be 1..128 characters")
        return fields

    @property
    def redacted_url(self) -> str:
        """The URL without its user info, query string or path: safe for logs and errors."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"

    @property
    def key(self) -> bytes:
        return secret_key(self.secret)

    def wants_field(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.fields)


class WebhookSubscriptions(BaseModel):
    """The parsed ``outbound_webhooks`` entry: subscription name -> subscription."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    by_name: Mapping[str, WebhookSubscription] = Field(default_factory=dict)

    @classmethod
    def parse(cls, entry: Any) -> WebhookSubscriptions:
        """Validate the entry (None or missing: no subscriptions); InvalidWebhookSubscriptions
        lists every problem as ``<name>.<field>: <what is wrong>``."""
        if entry is None:
            return cls()
        if not isinstance(entry, Mapping):
            raise InvalidWebhookSubscriptions(["must be an object of name -> subscription"])
        parsed: dict[str, WebhookSubscription] = {}
        problems: list[str] = []
        for position, (name, body) in enumerate(entry.items(), start=1):
            if not isinstance(name, str) or not _NAME.match(name):
                problems.append(f"subscription #{position}: its name must match {_NAME.pattern}")
                continue
            try:
                parsed[name] = WebhookSubscription.model_validate(body)
            except ValidationError as exc:
                problems.extend(f"{name}{_where(e['loc'])}: {_message(e['msg'])}" for e in exc.errors())
        if problems:
            raise InvalidWebhookSubscriptions(problems)
        return cls(by_name=dict(sorted(parsed.items())))

    @classmethod
    def from_channels(cls, channels: Mapping[str, Any] | None) -> WebhookSubscriptions:
        """From the whole channels document (its ``outbound_webhooks`` entry)."""
        return cls.parse((channels or {}).get(ENTRY))

    def get(self, name: str) -> WebhookSubscription | None:
        return self.by_name.get(name)

    def items(self) -> list[tuple[str, WebhookSubscription]]:
        """Every subscription, sorted by name."""
        return sorted(self.by_name.items())


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _where(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc) if loc else ""


# --- selection ----------------------------------------------------------------------------------
def select_for(subscription: WebhookSubscription, document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The change document as this subscription may see it: the envelope, the kinds it asked for
    (``fields`` narrowed to its patterns), and nothing else; None when nothing is left or the
    subscription is disabled. The input is not modified."""
    if not subscription.enabled:
        return None
    if subscription.purpose is not None:
        recorded = document.get("consent")
        granted = recorded if isinstance(recorded, Mapping) else {}
        if not consent_allows(granted, subscription.purpose, grant_required=True):
            return None  # no recorded grant for that purpose: nothing of this person
    present = document.get("kinds")
    if not isinstance(present, list):
        return None
    selected: dict[str, Any] = {k: copy.deepcopy(document[k]) for k in ENVELOPE if k in document}
    kinds: list[str] = []
    parts: dict[str, Any] = {}
    for kind in dict.fromkeys(k for k in present if isinstance(k, str)):  # document order, once each
        if kind not in subscription.kinds or kind not in KIND_KEYS:
            continue
        key = KIND_KEYS[kind]
        if key not in document:
            continue
        value = document[key]
        if kind == "fields":
            if not isinstance(value, Mapping):
                continue
            value = {n: v for n, v in value.items() if isinstance(n, str) and subscription.wants_field(n)}
            if not value:
                continue
        kinds.append(kind)
        parts[key] = copy.deepcopy(value)
    if not kinds:
        return None
    return {**selected, "kinds": kinds, **parts}


def encode_body(selected: Mapping[str, Any]) -> bytes:
    """The exact bytes delivered: compact JSON, keys sorted, UTF-8 (not ASCII-escaped)."""
    return json.dumps(selected, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# --- signing ------------------------------------------------------------------------------------
def sign(secret: SecretStr | str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    _check_header("webhook-id", msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be integer unix seconds")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: SecretStr | str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt; the body must be sent exactly as these bytes."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
    }


def _check_header(name: str, value: str) -> None:
    if not isinstance(value, str) or not _HEADER_SAFE.match(value):
        raise ValueError(f"{name} must be 1..256 printable ASCII characters without spaces")
