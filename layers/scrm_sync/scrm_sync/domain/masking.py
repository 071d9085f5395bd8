"""How personal values are shown to somebody who may see that they exist but not what they are:
log lines, and sidebar agents without the role that shows contact details in full.

Phones keep their first three and last four digits (enough to match a support ticket, not to
call anyone), addresses their first characters (province and city), emails the first letter of
the local part and the domain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A phone is masked only as a whole token: CN mobiles (optional +86/0086/86 prefix, optional - or
# space separators) and other E.164 numbers. Digits inside ids (UUIDs, hex digests, `p_` ids,
# sequence numbers, hyphen-joined ids) and inside decimal numbers are not phones: a token that
# touches an id character ([0-9A-Za-z_]), a hyphen joined to one, or a decimal point between digits
# is left alone. ASCII only, so CJK text right next to a number (手机13800138000) still masks it.
_ID = "[0-9A-Za-z_]"
_PHONE = re.compile(
    rf"(?<!{_ID})(?<!{_ID}-)(?<![0-9]\.)"
    r"(?:(?:(?:\+|00)?86[- ]?)?(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})|\+[1-9][0-9]{6,14})"
    rf"(?!{_ID})(?!-{_ID})(?!\.[0-9])",
    re.ASCII,
)


def mask_phones(text: str) -> str:
    """CN mobiles keep their first three and last four digits, other numbers the country code's
    first digits and the last two: enough to match a support ticket, not to call anyone."""

    def shorten(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1)}****{match.group(3)}"
        digits = match.group(0)
        return f"{digits[:4]}****{digits[-2:]}"

    return _PHONE.sub(shorten, text)


def mask_address(text: str) -> str:
    """广东省深圳市南山区科技园1号 -> 广东省深圳市****: province and city stay, the rest goes."""
    kept = text.strip()[:6]
    return f"{kept}****" if kept else text


def mask_email(text: str) -> str:
    local, at, domain = text.partition("@")
    if not at:
        return mask_phones(text)
    return f"{local[:1]}***@{domain}"


# Keys whose values are contact details wherever they appear (profile attributes, order data)
PHONE_KEYS = frozenset(
    {"phone", "mobile", "receiver_mobile", "receiver_phone", "remark_mobiles", "buyer_phone"}
)
ADDRESS_KEYS = frozenset(
    {"address", "receiver_address", "shipping_address", "delivery_address", "home_address"}
)
EMAIL_KEYS = frozenset({"email"})


def mask_contact_details(value: Any, key: str | None = None) -> Any:
    """`value` with every phone, address and email masked: by key name where the key says what it
    is, and phone numbers inside any other text."""
    if isinstance(value, Mapping):
        return {k: mask_contact_details(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_contact_details(item, key) for item in value]
    if not isinstance(value, str):
        return value
    name = (key or "").lower()
    if name in ADDRESS_KEYS or name.endswith("_address"):
        return mask_address(value)
    if name in EMAIL_KEYS or name.endswith("_email"):
        return mask_email(value)
    if name in PHONE_KEYS or name.endswith(("_phone", "_mobile")):
        masked = mask_phones(value)
        return masked if masked != value else (f"{value[:3]}****{value[-2:]}" if len(value) > 6 else "****")
    return mask_phones(value)


def mask_identifier_value(type_: str, value: str) -> str:
    if type_ == "phone":
        return str(mask_contact_details(value, "phone"))
    if type_ == "email":
        return mask_email(value)
    return value
