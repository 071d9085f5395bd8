"""WeCom JS-SDK signatures for `wx.config` (corp ticket) and `wx.agentConfig` (app ticket).

Both use the same algorithm (WeCom doc 96909): SHA-1 hex of
`jsapi_ticket=...&noncestr=...&timestamp=...&url=...`, keys in that order, values not
URL-encoded, `timestamp` in seconds, `url` the page URL without its `#...` fragment. The nonce
and the clock are the caller's (they are not pure); this module only decides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_PAGE_URL_LENGTH = 2048  # a sidebar page URL with its query; anything longer is not a page


class InvalidPageUrl(ValueError):
    """The `url` a signature was asked for is not a page WeCom could open."""


def page_url_for_signing(url: str) -> str:
    """The page URL WeCom signs against: absolute http(s), without the fragment."""
    if not isinstance(url, str) or not url:
        raise InvalidPageUrl("url is required")
    if len(url) > MAX_PAGE_URL_LENGTH:
        raise InvalidPageUrl(f"url is longer than {MAX_PAGE_URL_LENGTH} characters")
    if any(ord(char) < 0x21 for char in url):
        raise InvalidPageUrl("url contains whitespace or control characters")
    without_fragment = url.split("#", 1)[0]
    parts = urlsplit(without_fragment)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPageUrl("url must be an absolute http(s) page URL")
    return without_fragment


def jsapi_signature(ticket: str, nonce_str: str, timestamp: int, url: str) -> str:
    text = f"jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - the algorithm WeCom prescribes


@dataclass(frozen=True)
class PageSignature:
    """What `wx.config` / `wx.agentConfig` take besides corp and agent ids."""

    timestamp: int
    nonce_str: str
    signature: str

    def as_json(self) -> dict[str, str | int]:
        return {"timestamp": self.timestamp, "nonceStr": self.nonce_str, "signature": self.signature}


def sign_page(ticket: str, url: str, nonce_str: str, timestamp: int) -> PageSignature:
    page = page_url_for_signing(url)
    return PageSignature(timestamp, nonce_str, jsapi_signature(ticket, nonce_str, timestamp, page))
