"""Which WeCom corp tags a customer should carry, from the profile's attributes.

Rules live in the rules document under `wecom_tags`:

    {"wecom_tags": {"rules": [
        {"attribute": "member_level", "group": "会员等级",
         "values": {"gold": "金卡", "silver": "银卡", "normal": "普卡"}},
        {"attribute": "lifetime_value", "group": "客户价值", "at_least": 5000, "tag": "高价值"},
        {"attribute": "vip", "group": "客户价值", "equals": true, "tag": "VIP"}]}}

This system only ever adds or removes the tags its rules name (the managed tags); a member's own
tags stay as they are. Each member who follows the contact gets the difference between the tags
the rules want now and the tags this system last wrote for that member (`tag_diff`), in one
`mark_tag` call. Attributes that WeCom itself writes (`wecom_*`: a member's tags, remark, the
followers) cannot drive a rule, so a member's edit in WeCom never echoes back as a tag write.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .followers import FOLLOWER_PREFIX
from .privacy import consent_allows, consent_attribute, consents

NAME_LIMIT = 30  # WeCom's limit for group and tag names
WECOM_OWNED_PREFIX = "wecom_"


@dataclass(frozen=True, order=True, slots=True)
class CorpTag:
    group: str
    name: str

    def label(self) -> str:
        return f"{self.group}/{self.name}"


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > NAME_LIMIT:
        raise ValueError(f"{what} must be 1..{NAME_LIMIT} characters")
    return value


class TagRule(BaseModel):
    """One attribute -> tags of one group: a value map, a threshold (`at_least`) or an equality."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(pattern=r"^[a-z0-9_.]{1,64}$")
    group: str
    values: dict[str, str] | None = None
    at_least: Decimal | None = None
    equals: str | int | float | bool | None = None
    tag: str | None = None

    @field_validator("attribute")
    @classmethod
    def _not_written_by_wecom(cls, attribute: str) -> str:
        if attribute.startswith((WECOM_OWNED_PREFIX, FOLLOWER_PREFIX)):
            raise ValueError("attributes that WeCom writes (wecom_*) cannot drive a tag: it would echo back")
        return attribute

    @field_validator("group")
    @classmethod
    def _group_name(cls, group: str) -> str:
        return _name(group, "group")

    @model_validator(mode="after")
    def _one_kind(self) -> TagRule:
        kinds = [self.values is not None, self.at_least is not None, self.equals is not None]
        if sum(kinds) != 1:
            raise ValueError("a tag rule needs exactly one of values, at_least or equals")
        if self.values is not None:
            if not self.values or self.tag is not None:
                raise ValueError("values maps attribute values to tag names (no separate tag)")
            for tag in self.values.values():
                _name(tag, "tag")
        elif self.tag is None:
            raise ValueError("at_least and equals rules need the tag they set")
        else:
            _name(self.tag, "tag")
        return self

    def tags(self) -> set[CorpTag]:
        names = set(self.values.values()) if self.values is not None else {str(self.tag)}
        return {CorpTag(self.group, name.strip()) for name in names}

    def wanted(self, attributes: Mapping[str, Any]) -> set[CorpTag]:
        value = attributes.get(self.attribute)
        if value is None:
            return set()
        if self.values is not None:
            name = self.values.get(str(value).lower() if isinstance(value, bool) else str(value))
            return {CorpTag(self.group, name.strip())} if name else set()
        if self.at_least is not None:
            if isinstance(value, bool):
                return set()
            try:
                met = Decimal(str(value)) >= self.at_least
            except InvalidOperation:
                return set()
            return {CorpTag(self.group, str(self.tag).strip())} if met else set()
        return {CorpTag(self.group, str(self.tag).strip())} if value == self.equals else set()


class TagRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[TagRule, ...] = ()
    # what the tags are for, on the WeCom channel: a person who withdrew that consent
    # (consent_<purpose>_wecom = false) gets no tags, and the ones written are taken off;
    # with `grant_required`, only people who granted it get tags
    purpose: str = Field(default="marketing", pattern=r"^[a-z0-9]+$")
    grant_required: bool = False

    @property
    def consent(self) -> str:
        return f"{self.purpose}.wecom"

    @property
    def attributes(self) -> frozenset[str]:
        return frozenset(rule.attribute for rule in self.rules) | {consent_attribute(self.consent)}

    def managed(self) -> frozenset[CorpTag]:
        return frozenset(tag for rule in self.rules for tag in rule.tags())

    def desired(self, attributes: Mapping[str, Any]) -> frozenset[CorpTag]:
        if not consent_allows(consents(attributes), self.consent, self.grant_required):
            return frozenset()  # no consent: none of the tags these rules manage
        return frozenset(tag for rule in self.rules for tag in rule.wanted(attributes))

    def groups(self) -> dict[str, frozenset[str]]:
        """Group name -> the tag names the rules use in it."""
        groups: dict[str, set[str]] = {}
        for tag in self.managed():
            groups.setdefault(tag.group, set()).add(tag.name)
        return {group: frozenset(names) for group, names in groups.items()}


@dataclass(frozen=True, slots=True)
class TagDiff:
    add: frozenset[CorpTag]
    remove: frozenset[CorpTag]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def tag_diff(
    desired: Collection[CorpTag], written: Iterable[CorpTag], pending: Iterable[CorpTag] | None = None
) -> TagDiff:
    """What one mark_tag must add and remove so the member's managed tags become `desired`.

    `written` is what this system last wrote for the member. `pending` is the target of a write
    whose call went out but whose record never confirmed: the contact carries either set now, so
    whatever either holds and is no longer wanted is removed, and everything wanted that is not
    in both is added (adding a tag the contact already has is harmless)."""
    wanted = frozenset(desired)
    current = frozenset(written)
    if pending is None:
        return TagDiff(add=wanted - current, remove=current - wanted)
    maybe = frozenset(pending)
    return TagDiff(add=wanted - (current & maybe), remove=(current | maybe) - wanted)


def tag_relevant(document: Mapping[str, Any], rules: TagRules) -> bool:
    """Whether a change document can change some member's tags: a rule's attribute or a
    follower changed, a WeCom contact id was linked, or profiles merged or split."""
    kinds = set(document.get("kinds") or ())
    if kinds & {"merged", "merged_into", "split", "unlink"}:
        return True
    fields = document.get("fields")
    if isinstance(fields, Mapping) and any(
        name in rules.attributes or name.startswith(FOLLOWER_PREFIX) for name in fields
    ):
        return True
    identifiers = document.get("identifiers")
    if isinstance(identifiers, Mapping):
        return any(
            isinstance(i, Mapping) and i.get("type") == "wecom_external_userid"
            for i in identifiers.get("added", [])
        )
    return False
