"""Which WeCom members follow (have added) an external contact, kept on the customer's profile.

Each member is one profile field, `wecom_follower_<hash of the userid>`, whose value is the userid
while the member follows the customer and is cleared when either side deletes the other. Being
ordinary fields, they take the sync core's precedence (the latest change wins, whatever order
the pushes arrive in; a cleared field keeps its version, so an older add cannot revive it). The
userid is hashed into the name because field names allow only [a-z0-9_] and userids do not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

FOLLOWER_PREFIX = "wecom_follower_"


def follower_field(userid: str) -> str:
    return FOLLOWER_PREFIX + hashlib.sha256(userid.encode()).hexdigest()[:24]


def follows(attributes: Mapping[str, Any], userid: str) -> bool:
    return bool(userid) and attributes.get(follower_field(userid)) == userid


def followers(attributes: Mapping[str, Any]) -> list[str]:
    return sorted(
        value
        for name, value in attributes.items()
        if name.startswith(FOLLOWER_PREFIX) and isinstance(value, str) and follower_field(value) == name
    )
