"""A local stand-in for WeCom's server API (gettoken, externalcontact/get, auth/getuserinfo, the
JS-SDK tickets): neither the tests nor the local stack's sidebar ever call the internet. It can be
switched down (HTTP 503), made to expire tokens or to answer slowly (so concurrent callers
overlap), and records every call. The tests serve it on a port of their own
(tests/fake_wecom.py); `scrm local run` serves it under /__local/wecom (see sidebar_dev)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

CORP_ID = "ww0000000000000dev"  # the dev-only ids and secret in config/channels.dev.json
SECRET = "dev-wecom-secret"  # noqa: S105 - a dev-only dummy, as in the channels file


@dataclass
class FakeWeCom:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # external_userid -> answer
    down: bool = False
    expire_next_token: bool = False
    calls: list[str] = field(default_factory=list)
    oauth_codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # one-time code -> answer
    tokens_issued: int = 0
    tickets_issued: int = 0
    latency_seconds: float = 0.0  # how long gettoken and the ticket calls take
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def oauth_code(self, code: str, userid: str | None = None, openid: str | None = None) -> str:
        """A one-time OAuth code WeCom would hand the page for a member (userid) or anybody else."""
        who = {"userid": userid} if userid else {"openid": openid or "oDEV-not-a-member"}
        with self._lock:
            self.oauth_codes[code] = {"errcode": 0, "errmsg": "ok", **who}
        return code

    def count(self, path: str) -> int:
        return self.calls.count(path)

    def contact(self, external_userid: str, name: str, unionid: str | None = None, **follow: Any) -> None:
        contact: dict[str, Any] = {"external_userid": external_userid, "name": name, "type": 1, "gender": 2}
        if unionid:
            contact["unionid"] = unionid
        follow_user = {"userid": "zhangsan", "remark": "", "createtime": 1764000000, "tags": [], **follow}
        self.contacts[external_userid] = {
            "errcode": 0,
            "errmsg": "ok",
            "external_contact": contact,
            "follow_user": [follow_user],
        }

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """WeCom's answer to one server API call (HTTP status, JSON body)."""
        with self._lock:
            self.calls.append(path)
        if self.down:
            return 503, {}
        if path in ("/cgi-bin/gettoken", "/cgi-bin/get_jsapi_ticket", "/cgi-bin/ticket/get"):
            time.sleep(self.latency_seconds)
        if path == "/cgi-bin/gettoken":
            if query.get("corpid") != CORP_ID or query.get("corpsecret") != SECRET:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            with self._lock:
                self.tokens_issued += 1
                return 200, {"errcode": 0, "access_token": f"token-{self.tokens_issued}", "expires_in": 7200}
        if path == "/cgi-bin/externalcontact/get":
            if query.get("access_token") != f"token-{self.tokens_issued}" or self.expire_next_token:
                self.expire_next_token = False
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            found = self.contacts.get(query.get("external_userid", ""))
            if found is None:
                return 200, {"errcode": 84061, "errmsg": "not external contact"}
            return 200, found
        if path == "/cgi-bin/auth/getuserinfo":
            if query.get("access_token") != f"token-{self.tokens_issued}":
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            with self._lock:
                answer = self.oauth_codes.pop(query.get("code", ""), None)  # single use
            return 200, answer or {"errcode": 40029, "errmsg": "invalid code"}
        if path in ("/cgi-bin/get_jsapi_ticket", "/cgi-bin/ticket/get"):
            if query.get("access_token") != f"token-{self.tokens_issued}" or self.expire_next_token:
                self.expire_next_token = False
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            if path == "/cgi-bin/ticket/get" and query.get("type") != "agent_config":
                return 200, {"errcode": 40004, "errmsg": "invalid type"}
            with self._lock:
                self.tickets_issued += 1
                issued = self.tickets_issued
            kind = "agent" if path == "/cgi-bin/ticket/get" else "corp"
            ticket = f"{kind}-ticket-{issued}"
            return 200, {"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200}
        return 404, {}
