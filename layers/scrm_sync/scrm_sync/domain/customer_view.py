"""What a sidebar agent sees of one customer: the profile's header (name, member tier, tags, the
channels the customer is known on), identifiers and fields, and a page of the timeline, with
contact details masked unless the agent's role shows them in full."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .followers import FOLLOWER_PREFIX, followers
from .masking import mask_contact_details, mask_identifier_value
from .profile import Profile

# identifier types that say which channel knows the customer (fields and timeline entries name
# their source themselves)
_IDENTIFIER_CHANNELS = {
    "wecom_external_userid": "wecom",
    "wechat_openid": "wechat_mp",
    "taobao_open_uid": "tmall",
    "douyin_openid": "douyin",
    "youzan_open_id": "youzan",
}
TAG_FIELDS = ("wecom_tags", "tags")


def customer_view(profile: Profile, entries: Sequence[Mapping[str, Any]], *, masked: bool) -> dict[str, Any]:
    values = {name: value for name, value in profile.values.items() if value is not None}
    channels = {version.source for name, version in profile.versions.items() if name in values}
    channels |= {str(entry["source"]) for entry in entries if entry.get("source")}
    channels |= {_IDENTIFIER_CHANNELS[i.type] for i in profile.identifiers if i.type in _IDENTIFIER_CHANNELS}
    attributes = {
        name: value for name, value in sorted(values.items()) if not name.startswith(FOLLOWER_PREFIX)
    }
    identifiers = [identifier.as_dict() for identifier in sorted(profile.identifiers)]
    timeline = [dict(entry) for entry in entries]
    if masked:
        attributes = mask_contact_details(attributes)
        timeline = mask_contact_details(timeline)
        identifiers = [
            {**identifier, "value": mask_identifier_value(identifier["type"], str(identifier["value"]))}
            for identifier in identifiers
        ]
    return {
        "profile_id": profile.profile_id,
        "name": attributes.get("name"),
        "member_level": attributes.get("member_level"),
        "tags": _tags(values),
        "channels": sorted(channels),
        "followed_by": followers(values),
        "identifiers": identifiers,
        "attributes": attributes,
        "masked": masked,
        "timeline": timeline,
    }


def _tags(values: Mapping[str, Any]) -> list[str]:
    tags: list[str] = []
    for field in TAG_FIELDS:
        value = values.get(field)
        if isinstance(value, str):
            tags += [tag.strip() for tag in value.split(",") if tag.strip()]
        elif isinstance(value, list):
            tags += [str(tag) for tag in value if str(tag).strip()]
    return list(dict.fromkeys(tags))
