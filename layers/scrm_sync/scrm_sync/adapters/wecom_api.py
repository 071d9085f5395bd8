"""WeCom server API client (``gettoken``, ``externalcontact/get``, the JS-SDK tickets, customer
tags) over HTTPS with the stdlib.

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
from collections.abc import Sequence
from typing import Any, Protocol

from ..services.ports import WeComRejected, WeComUnavailable
from .credential_cache import Fetch, ProcessCredentialCache

__all__ = ["DEFAULT_API_BASE", "WeComApi", "WeComRejected", "WeComUnavailable"]

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
_TOKEN_ERRORS = frozenset({40014, 42001, 40001})  # invalid / expired access_token
# the contact is not (or no longer) a customer of this corp, or the id is malformed
_REJECTIONS = frozenset({40096, 84061, 40003, 41003})
_CODE_REJECTIONS = frozenset({40029, 41008})  # the OAuth code is invalid, used, expired or missing
# tag writes that can never succeed as sent: not that member's contact (84061), invalid userid or
# external_userid (40003, 40096), invalid tag id (40068: deleted by an admin; the caller re-reads its
# ids), a tag name that exists in the group (40071), a tag outside the app's rights (41017, uncertain)
_TAG_REJECTIONS = frozenset({84061, 40003, 40096, 40068, 40071, 41017})
# 45009 (frequency) and 45033 (concurrency) are transient: WeComUnavailable with the errcode, so
# a caller can close its send budget for the minute WeCom blocks the corp


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

    # --- customer tags (客户标签): POST with a JSON body ----------------------------------------------
    def corp_tags(self, group_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``get_corp_tag_list``: the corp's tag groups (every group, or those named), each with
        ``group_id``, ``group_name``, ``deleted`` and ``tag[] {id, name, deleted}``."""
        body = {"group_id": list(group_ids)} if group_ids else {}
        answer = self._with_token("/cgi-bin/externalcontact/get_corp_tag_list", {}, _TAG_REJECTIONS, body)
        groups = answer.get("tag_group")
        return [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []

    def add_corp_tag(
        self, group_name: str, tag_names: Sequence[str], group_id: str | None = None
    ) -> dict[str, Any]:
        """``add_corp_tag``: tags in an existing group (``group_id``), or a group created by name
        with them (WeCom adds to the group of that name if one exists); the answer's ``tag_group``."""
        body: dict[str, Any] = {"tag": [{"name": name} for name in tag_names]}
        if group_id:
            body["group_id"] = group_id
        else:
            body["group_name"] = group_name
        answer = self._with_token("/cgi-bin/externalcontact/add_corp_tag", {}, _TAG_REJECTIONS, body)
        group = answer.get("tag_group")
        if not isinstance(group, dict):
            raise WeComUnavailable("add_corp_tag answered without tag_group")
        return group

    def mark_tag(self, userid: str, external_userid: str, add: Sequence[str], remove: Sequence[str]) -> None:
        """``mark_tag``: add and remove corp tags on one member's external contact, in one call."""
        body: dict[str, Any] = {"userid": userid, "external_userid": external_userid}
        if add:
            body["add_tag"] = list(add)
        if remove:
            body["remove_tag"] = list(remove)
        if not add and not remove:
            return  # WeCom refuses a call with neither
        self._with_token("/cgi-bin/externalcontact/mark_tag", {}, _TAG_REJECTIONS, body)

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
        self,
        path: str,
        query: dict[str, str],
        rejections: frozenset[int] = _REJECTIONS,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """GET `path` (or POST `body` as JSON) with the app's access_token."""
        rejected: str | None = None
        for _ in range(2):
            token = self._credentials.get(f"{self._app_key}#access_token", self._fetch_token, rejected)
            answer = self._get(path, {"access_token": token, **query}, body)
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

    def _get(self, path: str, query: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._base}{path}?{urllib.parse.urlencode(query)}"
        if not url.startswith(("https://", "http://")):
            raise WeComUnavailable("api_base must be an http(s) URL")
        request = urllib.request.Request(url)  # noqa: S310 - the scheme is checked above
        if body is not None:  # WeCom's POST APIs take UTF-8 JSON (tag names are Chinese)
            request.data = json.dumps(body, ensure_ascii=False).encode()
            request.add_header("Content-Type", "application/json; charset=utf-8")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - checked above
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
