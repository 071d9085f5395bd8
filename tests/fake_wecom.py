"""A local stand-in for WeCom's server API (gettoken, externalcontact/get): tests never call the
internet. It can be switched down (HTTP 503), made to expire tokens, and records every call."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CORP_ID = "ww0000000000000dev"
SECRET = "dev-wecom-secret"


@dataclass
class FakeWeCom:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # external_userid -> answer
    down: bool = False
    expire_next_token: bool = False
    calls: list[str] = field(default_factory=list)
    tokens_issued: int = 0
    base_url: str = ""

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
        self.calls.append(path)
        if self.down:
            return 503, {}
        if path == "/cgi-bin/gettoken":
            if query.get("corpid") != CORP_ID or query.get("corpsecret") != SECRET:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
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
        return 404, {}


@contextmanager
def running_fake_wecom() -> Iterator[FakeWeCom]:
    fake = FakeWeCom()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            status, body = fake.answer(url.path, query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
