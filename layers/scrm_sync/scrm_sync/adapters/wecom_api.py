"""WeCom server API client (``gettoken``, ``externalcontact/get``, the JS-SDK tickets) over HTTPS
with the stdlib.

One client is one app (corp id + that app's secret): WeCom issues an access_token per app, and
the app ticket that signs ``wx.agentConfig`` must be fetched with the token of the same agent.
Tokens and tickets live in a credential cache (this process's, or the one all Lambdas share) and
are refreshed shortly before they expire, one caller at a time, as WeCom requires (their issuing
calls are rate limited). A token WeCom reports invalid or expired is refreshed once, unless
somebody else already has. Failures are split into transient (network, 5xx, busy, rate limits,
unknown codes: retry later) and rejections (this request can never succeed).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from .credential_cache import Fetch, ProcessCredentialCache

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
_TOKEN_ERRORS = frozenset({40014, 42001, 40001})  # invalid / expired access_token
# the contact is not (or no longer) a customer of this corp, or the id is malformed
_REJECTIONS = frozenset({40096, 84061, 40003, 41003})
_CODE_REJECTIONS = frozenset({40029, 41008})  # the OAuth code is invalid, used, expired or missing


class WeComUnavailable(RuntimeError):
    """Transient: retry later."""

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


class WeComRejected(ValueError):
    """The API answered that this request can never succeed."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode


class CredentialCache(Protocol):
    def get(self, name: str, fetch: Fetch, rejected: str | None = None) -> str: ...


_process_cache = ProcessCredentialCache()  # the default: shared by the clients of this process


class WeComApi:
    def __init__(
        self,
        corp_id: str,
        secret: str,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 3.0,
        credentials: CredentialCache | None = None,
    ) -> None:
        self._corp_id = corp_id
        self._secret = secret
        self._base = api_base.rstrip("/")
        self._timeout = timeout
        self._credentials = credentials or _process_cache
        # names the app's credentials in a shared cache without the secret itself
        self._app_key = hashlib.sha256(f"{self._base}|{corp_id}|{secret}".encode()).hexdigest()[:32]

    def external_contact(self, external_userid: str) -> dict[str, Any]:
        """The ``externalcontact/get`` answer (errcode 0) for one external contact."""
        return self._with_token("/cgi-bin/externalcontact/get", {"external_userid": external_userid})

    def member_for_code(self, code: str) -> dict[str, Any]:
        """``auth/getuserinfo``: who the one-time OAuth code (5 minutes) was issued to: ``userid`` for a
        member of the corp, ``openid`` / ``external_userid`` for anybody else."""
        return self._with_token("/cgi-bin/auth/getuserinfo", {"code": code}, _CODE_REJECTIONS)

    def corp_jsapi_ticket(self) -> str:
        """The corp ticket that signs ``wx.config`` (7200 s; a corp may fetch 400 per hour)."""
        return self._credentials.get(
            f"{self._app_key}#corp_jsapi_ticket", lambda: self._ticket("/cgi-bin/get_jsapi_ticket", {})
        )

    def agent_jsapi_ticket(self) -> str:
        """The app ticket that signs ``wx.agentConfig`` (7200 s; an app may fetch 100 per hour)."""
        return self._credentials.get(
            f"{self._app_key}#agent_jsapi_ticket",
            lambda: self._ticket("/cgi-bin/ticket/get", {"type": "agent_config"}),
        )

    def _ticket(self, path: str, query: dict[str, str]) -> tuple[str, Any]:
        answer = self._with_token(path, query)
        ticket = answer.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise WeComUnavailable(f"{path} answered without a ticket")
        return ticket, answer.get("expires_in")

    def _with_token(
        self, path: str, query: dict[str, str], rejections: frozenset[int] = _REJECTIONS
    ) -> dict[str, Any]:
        rejected: str | None = None
        for _ in range(2):
            token = self._credentials.get(f"{self._app_key}#access_token", self._fetch_token, rejected)
            answer = self._get(path, {"access_token": token, **query})
            errcode = _errcode(answer)
            if errcode == 0:
                return answer
            if errcode in _TOKEN_ERRORS and rejected is None:
                rejected = token
                continue
            if errcode in rejections:
                raise WeComRejected(errcode, str(answer.get("errmsg", "")))
            raise WeComUnavailable(f"{path} errcode {errcode}", errcode)
        raise WeComUnavailable("access_token refused twice")

    def _fetch_token(self) -> tuple[str, Any]:
        answer = self._get("/cgi-bin/gettoken", {"corpid": self._corp_id, "corpsecret": self._secret})
        errcode = _errcode(answer)
        token = answer.get("access_token")
        if errcode != 0 or not isinstance(token, str) or not token:
            # a wrong secret is an operator's fix away: keep retrying until the queue gives up
            raise WeComUnavailable(f"gettoken errcode {errcode}", errcode)
        return token, answer.get("expires_in")

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
