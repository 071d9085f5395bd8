"""WeCom server API client (``gettoken``, ``externalcontact/get``) over HTTPS with the stdlib.

The access_token is cached per (API base, corp, secret) until shortly before it expires, as
WeCom requires (gettoken is rate limited); a token WeCom reports invalid or expired is fetched
again once. Failures are split into transient (network, 5xx, busy, rate limits, unknown codes:
retry later) and rejections (the contact does not exist for this corp: retrying cannot help).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
_TOKEN_ERRORS = frozenset({40014, 42001, 40001})  # invalid / expired access_token
# the contact is not (or no longer) a customer of this corp, or the id is malformed
_REJECTIONS = frozenset({40096, 84061, 40003, 41003})
_EXPIRY_MARGIN_SECONDS = 300


class WeComUnavailable(RuntimeError):
    """Transient: retry later."""


class WeComRejected(ValueError):
    """The API answered that this request can never succeed."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode


_tokens: dict[str, tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class WeComApi:
    def __init__(
        self, corp_id: str, secret: str, api_base: str = DEFAULT_API_BASE, timeout: float = 3.0
    ) -> None:
        self._corp_id = corp_id
        self._secret = secret
        self._base = api_base.rstrip("/")
        self._timeout = timeout
        self._cache_key = hashlib.sha256(f"{self._base}|{corp_id}|{secret}".encode()).hexdigest()

    def external_contact(self, external_userid: str) -> dict[str, Any]:
        """The ``externalcontact/get`` answer (errcode 0) for one external contact."""
        for attempt in range(2):
            token = self._token(refresh=attempt > 0)
            answer = self._get(
                "/cgi-bin/externalcontact/get", {"access_token": token, "external_userid": external_userid}
            )
            errcode = _errcode(answer)
            if errcode == 0:
                return answer
            if errcode in _TOKEN_ERRORS and attempt == 0:
                continue
            if errcode in _REJECTIONS:
                raise WeComRejected(errcode, str(answer.get("errmsg", "")))
            raise WeComUnavailable(f"externalcontact/get errcode {errcode}")
        raise WeComUnavailable("access_token refused twice")

    def _token(self, refresh: bool) -> str:
        now = time.monotonic()
        with _tokens_lock:
            cached = _tokens.get(self._cache_key)
            if cached and not refresh and cached[1] > now:
                return cached[0]
        answer = self._get("/cgi-bin/gettoken", {"corpid": self._corp_id, "corpsecret": self._secret})
        errcode = _errcode(answer)
        token = answer.get("access_token")
        if errcode != 0 or not isinstance(token, str) or not token:
            # a wrong secret is an operator's fix away: keep retrying until the queue gives up
            raise WeComUnavailable(f"gettoken errcode {errcode}")
        expires_in = answer.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else 7200
        with _tokens_lock:
            _tokens[self._cache_key] = (token, now + max(lifetime - _EXPIRY_MARGIN_SECONDS, 60))
        return token

    def _get(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        url = f"{self._base}{path}?{urllib.parse.urlencode(query)}"
        if not url.startswith(("https://", "http://")):
            raise WeComUnavailable("api_base must be an http(s) URL")
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - checked above
                payload = response.read(1_048_576)
        except urllib.error.HTTPError as exc:
            raise WeComUnavailable(f"HTTP {exc.code} from {path}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise WeComUnavailable(f"{path} unreachable: {type(exc).__name__}") from exc
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise WeComUnavailable(f"{path} answered non-JSON") from exc
        if not isinstance(answer, dict):
            raise WeComUnavailable(f"{path} answered {type(answer).__name__}")
        return answer


def _errcode(answer: dict[str, Any]) -> int:
    value = answer.get("errcode", 0)
    return value if isinstance(value, int) else -1
