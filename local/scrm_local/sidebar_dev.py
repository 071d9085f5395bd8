"""The WeCom sidebar page, clickable in a plain browser with no internet (`scrm local run` only,
never deployed):

* `/sidebar/` and `/sidebar/<file.ext>` serve the page from `sidebar/` at the project root; the
  API routes (`/sidebar/session`, `/sidebar/jsapi-config`, `/sidebar/customer`) have no
  extension, so they still reach the functions. `/sidebar/config.json` is generated: the corp
  and agent ids of the channels file's `wecom_sidebar` entry, the stub SDK and the fake OAuth page.
* `/__local/sidebar/ww-stub.js`: a stand-in for WeCom's JS-SDK (`wx`) whose external contact,
  entry and errors come from the page's query string (`stub_external_userid`, `stub_entry`,
  `stub_error`, `stub_error_on`) or from SCRM_SIDEBAR_DEV_EXTERNAL_USERID.
* `/__local/wecom/...`: WeCom's server API (scrm_local.fake_wecom; the dev channels file points
  the sidebar's `api_base` here) and its OAuth page, which at once redirects back with a
  one-time code for SCRM_SIDEBAR_DEV_USERID (or the page's `stub_userid`).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .fake_wecom import CORP_ID, FakeWeCom

log = logging.getLogger(__name__)

PAGE_PREFIX = "/sidebar"
FAKE_WECOM_PREFIX = "/__local/wecom"
INSPECT_PREFIX = FAKE_WECOM_PREFIX + "/__inspect"
STUB_PATH = "/__local/sidebar/ww-stub.js"
OAUTH_PATH = FAKE_WECOM_PREFIX + "/connect/oauth2/authorize"
STUB_FILE = Path(__file__).with_name("sidebar_stub") / "ww-stub.js"
DEFAULT_AGENT_ID = "1000002"

Response = tuple[int, list[tuple[str, str]], bytes]
_NO_STORE = ("Cache-Control", "no-store")


def _text(status: int, message: str) -> Response:
    return status, [("Content-Type", "text/plain; charset=utf-8"), _NO_STORE], message.encode()


def _json(status: int, document: Any) -> Response:
    body = json.dumps(document, ensure_ascii=False).encode()
    return status, [("Content-Type", "application/json; charset=utf-8"), _NO_STORE], body


def _content_type(path: Path) -> str:
    if path.suffix in (".js", ".mjs"):
        return "text/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("json") else guessed


@dataclass
class SidebarDev:
    page_root: Path  # the page's folder (sidebar/ at the project root)
    channels_file: Path  # for the wecom_sidebar entry's corp and agent ids
    dev_userid: str = "zhangsan"
    dev_external_userid: str = ""
    wecom: FakeWeCom = field(default_factory=FakeWeCom)

    def respond(self, method: str, target: str, body: bytes = b"") -> Response | None:
        """The answer for a dev-only path; None for everything else (the API routes)."""
        raw_path, _, raw_query = target.partition("?")
        if raw_path.startswith(INSPECT_PREFIX):
            return self._inspect(method, raw_path.removeprefix(INSPECT_PREFIX), body)
        if raw_path.startswith(FAKE_WECOM_PREFIX + "/"):
            path = raw_path.removeprefix(FAKE_WECOM_PREFIX)
            return self._fake_wecom(path, dict(parse_qsl(raw_query)), body if method == "POST" else b"")
        if method not in ("GET", "HEAD"):
            return None
        if raw_path == STUB_PATH:
            defaults = {"external_userid": self.dev_external_userid or None}
            script = f"const STUB_DEFAULTS = {json.dumps(defaults)};\n" + STUB_FILE.read_text("utf-8")
            return 200, [("Content-Type", "text/javascript; charset=utf-8"), _NO_STORE], script.encode()
        if raw_path == PAGE_PREFIX:
            location = PAGE_PREFIX + "/" + (f"?{raw_query}" if raw_query else "")
            return 302, [("Location", location), _NO_STORE], b""
        if not raw_path.startswith(PAGE_PREFIX + "/"):
            return None
        name = raw_path.removeprefix(PAGE_PREFIX + "/")
        if name == "":
            name = "index.html"
        elif "." not in name.rsplit("/", 1)[-1]:
            return None  # an API route
        if name == "config.json":
            return _json(200, self.page_config())
        return self._file(name)

    # --- the page ---------------------------------------------------------------------------------
    def _file(self, name: str) -> Response:
        root = self.page_root.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return _json(404, {"message": "Not Found"})
        return 200, [("Content-Type", _content_type(path)), _NO_STORE], path.read_bytes()

    def _sidebar_entry(self) -> dict[str, Any]:
        try:
            entry = json.loads(self.channels_file.read_text("utf-8")).get("wecom_sidebar")
        except (OSError, ValueError, AttributeError):
            return {}
        return entry if isinstance(entry, dict) else {}

    def page_config(self) -> dict[str, Any]:
        entry = self._sidebar_entry()
        return {
            "_comment": "generated by scrm local run: the stub JS-SDK and the fake WeCom OAuth page",
            "api_base": "",
            "corp_id": str(entry.get("corp_id") or CORP_ID),
            "agent_id": str(entry.get("agent_id") or DEFAULT_AGENT_ID),
            "sdk_scripts": [STUB_PATH],
            "oauth_authorize_url": OAUTH_PATH,
        }

    # --- WeCom ------------------------------------------------------------------------------------
    def _fake_wecom(self, path: str, query: dict[str, str], body: bytes = b"") -> Response:
        if path == "/connect/oauth2/authorize":
            return self._authorize(query)
        status, answer = self.wecom.answer(path, query, body)
        return _json(status, answer)

    def _inspect(self, method: str, path: str, body: bytes) -> Response:
        """The fake WeCom's state for tests and curious developers (dev only, never deployed):
        GET  .../__inspect               every POST call (path, JSON body, time), the corp tag groups
                                         and the tags marked per (member, contact);
        POST .../__inspect/fail          {"path": "/cgi-bin/...", "errcode": 45009, "times": 1};
        POST .../__inspect/contacts      {"external_userid", "name", "follow_user": [userids]}: a
                                         contact externalcontact/get knows (mark_tag then checks
                                         that the member follows it)."""
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return _json(400, {"message": "body must be JSON"})
        if method == "GET" and path in ("", "/"):
            return _json(200, self.wecom.inspect())
        if method == "POST" and path == "/fail" and isinstance(document, dict):
            errcode, times = document.get("errcode", 45009), document.get("times", 1)
            if not str(document.get("path", "")).startswith("/cgi-bin/"):
                return _json(400, {"message": "path must be a WeCom API path (/cgi-bin/...)"})
            if not isinstance(errcode, int) or not isinstance(times, int) or not 1 <= times <= 1000:
                return _json(400, {"message": "errcode must be a number and times 1..1000"})
            self.wecom.fail_next(str(document["path"]), errcode, times)
            return _json(200, {"armed": True})
        if method == "POST" and path == "/contacts" and isinstance(document, dict):
            external = str(document.get("external_userid") or "")
            members = [str(m) for m in document.get("follow_user") or [self.dev_userid]]
            if not external:
                return _json(400, {"message": "external_userid is required"})
            self.wecom.contact(external, str(document.get("name") or "客户"))
            answer = self.wecom.contacts[external]
            template = answer["follow_user"][0]
            answer["follow_user"] = [{**template, "userid": member} for member in members]
            return _json(200, {"external_userid": external, "follow_user": members})
        return _json(404, {"message": "unknown inspection path"})

    def _authorize(self, query: dict[str, str]) -> Response:
        """WeCom's OAuth page for an agent already signed in to the client: straight back to
        redirect_uri with a one-time code (and the state) for the dev member."""
        corp_id = str(self._sidebar_entry().get("corp_id") or CORP_ID)
        if query.get("appid") != corp_id:
            return _text(400, f"appid must be the sidebar's corp_id ({corp_id})")
        if query.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
            return _text(400, "scope must be snsapi_base")
        target = urlsplit(query.get("redirect_uri", ""))
        if target.scheme not in ("http", "https") or not target.netloc:
            return _text(400, "redirect_uri must be an absolute http(s) URL")
        page_query = dict(parse_qsl(target.query, keep_blank_values=True))
        userid = page_query.get("stub_userid") or self.dev_userid
        code = self.wecom.oauth_code(secrets.token_urlsafe(24), userid)
        page_query.update({"code": code, "state": query.get("state", "")})
        location = urlunsplit(target._replace(query=urlencode(page_query), fragment=""))
        log.info("fake WeCom OAuth: a code for member %s", userid)
        return 302, [("Location", location), _NO_STORE], b""
