"""Personal information protection (PIPL): suppression of erased people, and what an erasure is.

Suppression. An erased person must not come back: every raw push is landed, every row change can
be replayed, and platforms retry. So an erasure first records each of the person's identifiers
as *suppressed*, keyed by a salted hash of the identifier's normalized key (HMAC-SHA256 with the
deployment's secret salt; never the value), and identity resolution drops any event naming a
suppressed identifier before it writes anything (services/sync.py). An identifier is only ever
suppressed while nothing owns it (the erasure deletes its link), so only identifiers without an
owner need the check. `unsuppress` (audited) lets a person who comes back and consents again in.

Erasure. One request names a person (a profile id or any identifier); the erasure covers the
profile, the profiles merged into it, and every store that holds their data. Each store has a
status (pending -> erased, or failed with a reason and retried by the next run), shown by
`GET /erasures/{id}`. The values needed to find the person in stores that cannot be searched by
hash (raw landed pushes, quarantine) are kept on the pending erasure only until it completes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .identifiers import Identifier, InvalidIdentifier, normalize_identifier

SUPPRESSED_PREFIX: Final = "suppressed#"
ERASED_PROFILE: Final = "erased"  # what an erased person's orders keep as their profile id

# the stores an erasure covers, in the order a run works through them
STORES: Final = (
    "profiles",  # profile items (fields), and the profiles merged into it
    "identity",  # identity links
    "evidence",  # event records (the evidence of links and fields)
    "timeline",  # timeline entries (orders, interactions)
    "orders",  # hot orders: their link to the person
    "archive",  # archived orders (S3 objects and manifests rewritten)
    "landing",  # raw landed pushes and events
    "quarantine",  # refused and unmappable pushes kept for inspection
    "audit",  # the audit chain's content (digests and the erasure entry stay)
    "watermarks",  # incremental-pull positions naming the person's source row (rewound)
)
StoreStatus = Literal["pending", "erased", "failed"]
ErasureStatus = Literal["pending", "complete", "failed"]
MIN_NEEDLE_LENGTH: Final = 4  # shorter values would match unrelated text


def suppression_key(identifier_key: str, salt: bytes) -> str:
    """The suppression list's key for one normalized identifier key (`type#scope#value`)."""
    digest = hmac.new(salt, identifier_key.encode("utf-8"), hashlib.sha256).hexdigest()
    return SUPPRESSED_PREFIX + digest


def new_erasure_id() -> str:
    return f"er-{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Erasure:
    erasure_id: str
    requested_by: str  # the API key's name, or the operator's tool
    requested_at: str  # ISO 8601, UTC
    profile_ids: tuple[str, ...]  # the profile and the ones merged into it
    identifier_keys: tuple[str, ...]  # normalized keys (kept until the erasure completes)
    # the identifier values, looked for in any text (kept until the erasure completes)
    needles: tuple[str, ...]
    # the profile's text values (name, address...): looked for only in text that no identifier
    # can place (another customer may share a name) (kept until the erasure completes)
    names: tuple[str, ...] = ()
    stores: Mapping[str, StoreStatus] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # store -> why it failed (no values)
    completed_at: str | None = None

    @property
    def status(self) -> ErasureStatus:
        statuses = {self.stores.get(store, "pending") for store in STORES}
        if statuses == {"erased"}:
            return "complete"
        return "failed" if "failed" in statuses else "pending"

    def pending_stores(self) -> list[str]:
        return [store for store in STORES if self.stores.get(store, "pending") != "erased"]

    def with_store(self, store: str, status: StoreStatus, error: str | None = None) -> Erasure:
        errors = {k: v for k, v in self.errors.items() if k != store}
        if error:
            errors[store] = error[:300]
        return replace(self, stores={**self.stores, store: status}, errors=errors)

    def public(self) -> dict[str, object]:
        """What `GET /erasures/{id}` shows: statuses only, never the person's data."""
        return {
            "erasure_id": self.erasure_id,
            "status": self.status,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "completed_at": self.completed_at,
            "profiles": len(self.profile_ids),
            "stores": {store: self.stores.get(store, "pending") for store in STORES},
            "errors": dict(self.errors),
        }


def needles_of(values: Iterable[object]) -> tuple[str, ...]:
    """The texts that name the person in unstructured stores, long enough not to match unrelated
    text (a two- or three-character Chinese name is short but specific enough)."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            text = value.strip()
            if len(text) >= MIN_NEEDLE_LENGTH or _is_cjk_name(text):
                found.add(text)
    return tuple(sorted(found))


def _is_cjk_name(text: str) -> bool:
    return 2 <= len(text) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in text)


class NeedleMatcher:
    """Finds any of the needles in a text (one compiled alternation, longest first), also as
    they appear inside JSON strings (non-ASCII escaped as \\uXXXX)."""

    def __init__(self, needles: Sequence[str]) -> None:
        variants = {form for needle in needles for form in (needle, _json_escaped(needle))}
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def found_in(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None


def _json_escaped(text: str) -> str:
    return "".join(ch if ord(ch) < 128 else f"\\u{ord(ch):04x}" for ch in text)


# -- the landing bucket: what names an erased person ----------------------------------------------
class PersonTest:
    """Whether a landed document names one of the people being erased: an event naming one of
    their identifiers (normalized as the sync normalizes them), one of their identifier values
    anywhere in the text, or (in text without events that can be read) one of their names."""

    def __init__(
        self,
        identifier_keys: Iterable[str],
        needles: Sequence[str],
        names: Sequence[str],
        normalize: Callable[[Mapping[str, Any]], str | None],
    ) -> None:
        self._keys = frozenset(identifier_keys)
        self._strong = NeedleMatcher(needles)
        self._weak = NeedleMatcher([*needles, *names])
        self._normalize = normalize  # a raw identifier -> its key, None when it is invalid

    def event_names_person(self, event: Any) -> bool:
        if not isinstance(event, Mapping):
            return False
        for raw in event.get("identifiers") or []:
            if isinstance(raw, Mapping) and self._normalize(raw) in self._keys:
                return True
        return self._strong.found_in(json.dumps(event, ensure_ascii=False))

    def text_names_person(self, text: str, structured: bool) -> bool:
        return (self._strong if structured else self._weak).found_in(text)


def scrub_line(line: str, person: PersonTest) -> str | None:
    """One line of a landing object without the person: None to drop it. A landing document
    (a push: `channel`, `body`, `events`) goes whole when it names them; a request of canonical
    events (`events`) keeps the events that do not; other text goes when it names them."""
    try:
        document = json.loads(line)
    except ValueError:
        return None if person.text_names_person(line, structured=False) else line
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        return None if person.text_names_person(line, structured=False) else line
    if "body" in document and "channel" in document:  # a landed push: its raw body is theirs too
        named = any(person.event_names_person(e) for e in events)
        return None if named or person.text_names_person(line, structured=True) else line
    kept = [e for e in events if not person.event_names_person(e)]
    if len(kept) == len(events):
        return line
    if not kept:
        return None
    return json.dumps({**document, "events": kept}, ensure_ascii=False)


def scrub_text(text: str, person: PersonTest) -> str | None:
    """A landing object's text (JSON Lines, or one JSON document) without the person; None
    when nothing is left. The text comes back unchanged (the same object) when it names none."""
    try:
        json.loads(text)
        return scrub_line(text, person)  # one JSON document (a request body, pretty or not)
    except ValueError:
        pass
    lines = text.split("\n")
    if len(lines) > 1:
        kept = []
        for line in lines:
            if not line.strip():
                continue
            scrubbed = scrub_line(line, person)
            if scrubbed is not None:
                kept.append(scrubbed)
        if not kept:
            return None
        result = "\n".join(kept) + ("\n" if text.endswith("\n") else "")
        return text if result == text else result
    return None if person.text_names_person(text, structured=False) else text


def identifier_keys_in(text: str, normalize: Callable[[Mapping[str, Any]], str | None]) -> set[str]:
    """The identifier keys of every event in a landing object's text (JSON Lines or one JSON
    document): what to look up on the suppression list."""
    try:
        documents = [json.loads(text)]
    except ValueError:
        documents = []
        for line in text.split("\n"):
            try:
                documents.append(json.loads(line))
            except ValueError:
                continue
    keys: set[str] = set()
    for document in documents:
        events = document.get("events") if isinstance(document, dict) else None
        for event in events if isinstance(events, list) else []:
            for raw in (event.get("identifiers") or []) if isinstance(event, Mapping) else []:
                if isinstance(raw, Mapping) and (key := normalize(raw)) is not None:
                    keys.add(key)
    return keys


def landing_day_prefixes(base: str, now: datetime) -> list[str]:
    """Where requests received about now were landed (`<base>dt=YYYY-MM-DD/`, UTC): today's and
    yesterday's, for a request landed just before midnight and synced just after."""
    today = now.astimezone(UTC).date()
    return [f"{base}dt={day.isoformat()}/" for day in (today - timedelta(days=1), today)]


# -- request bodies (the privacy API) ------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class IdentifierIn(_Body):
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    scope: Annotated[str, StringConstraints(max_length=256)] | None = None

    def normalized(self, default_region: str) -> Identifier:
        try:
            return normalize_identifier(self.type, self.value, self.scope, default_region)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None


class ErasureRequestBody(_Body):
    """POST /erasures: a profile id, or identifiers (any of them finds the person; all of them
    are suppressed), or both."""

    profile_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = None
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _names_someone(self) -> ErasureRequestBody:
        if self.profile_id is None and not self.identifiers:
            raise ValueError("name the person: 'profile_id' or 'identifiers'")
        return self


class ReleaseBody(_Body):
    """POST /suppressions/release: a person who comes back and consents again."""

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=50)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


# -- the access log ------------------------------------------------------------------------------
PURPOSE_HEADER: Final = "x-purpose"
DEFAULT_PURPOSE: Final = "unspecified"
_PURPOSE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


class InvalidPurpose(ValueError):
    pass


def purpose_of(header: str | None) -> str:
    """The purpose a caller names for a read (`X-Purpose: customer_service`), checked: a short
    lowercase token, never free text (which could carry personal data into the log)."""
    if header is None or not header.strip():
        return DEFAULT_PURPOSE
    purpose = header.strip()
    if not _PURPOSE.fullmatch(purpose):
        raise InvalidPurpose("X-Purpose must be a lowercase token (a-z, 0-9, _ and -), at most 64 characters")
    return purpose


@dataclass(frozen=True, slots=True)
class ProfileAccess:
    """One read of a profile: who, which profile (its id, never an identifier or value), when,
    why, and through which route."""

    profile_id: str
    caller: str
    purpose: str
    route: str
    at: datetime


# -- consent per purpose and channel ------------------------------------------------------------
# A profile attribute `consent_<purpose>_<channel>` (true: granted, false: withdrawn), set by any
# event: consent_marketing_wecom, consent_marketing_sms, consent_service_wechat_mp. The person's
# latest statement wins whatever the source said it (domain/profile.py field_writes), and the
# outbound destinations honour it (WeCom tags, webhook subscriptions with a purpose).
CONSENT_PREFIX: Final = "consent_"
_CONSENT_ATTRIBUTE = re.compile(r"^consent_([a-z0-9]+)_([a-z0-9][a-z0-9_]*)$")
_CONSENT_KEY = re.compile(r"^([a-z0-9]+)\.([a-z0-9][a-z0-9_]*)$")


def is_consent_attribute(name: str) -> bool:
    return name.startswith(CONSENT_PREFIX)


def consent_key_of(attribute: str) -> str | None:
    """`consent_marketing_sms` -> "marketing.sms" (None: not a consent attribute's name)."""
    match = _CONSENT_ATTRIBUTE.fullmatch(attribute)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def consent_attribute(key: str) -> str:
    """ "marketing.sms" -> `consent_marketing_sms` (ValueError for a malformed key)."""
    match = _CONSENT_KEY.fullmatch(key)
    if match is None:
        raise ValueError(f"a consent is '<purpose>.<channel>' (e.g. marketing.sms), not {key!r}")
    return f"{CONSENT_PREFIX}{match.group(1)}_{match.group(2)}"


def consents(attributes: Mapping[str, Any]) -> dict[str, bool]:
    """The consents a profile records: "purpose.channel" -> granted."""
    found = {}
    for name, value in attributes.items():
        key = consent_key_of(name)
        if key is not None and isinstance(value, bool):
            found[key] = value
    return found


def consent_allows(recorded: Mapping[str, bool], key: str, grant_required: bool) -> bool:
    """Whether a purpose may use a channel for this person: never after a withdrawal; without a
    recorded statement, only when the purpose does not need an explicit grant."""
    granted = recorded.get(key)
    return granted if granted is not None else not grant_required
