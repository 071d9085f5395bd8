"""A local stand-in for WeCom's server API (gettoken, externalcontact/get, auth/getuserinfo, the
JS-SDK tickets, customer tags: get_corp_tag_list, add_corp_tag, mark_tag): neither the tests nor
the local stack ever call the internet. It can be switched down (HTTP 503), made to expire tokens,
to answer slowly (so concurrent callers overlap) or to answer an errcode (45009: the frequency
limit) for the next calls of an API, and records every call with its JSON body. The tests serve
it on a port of their own (tests/fake_wecom.py); `scrm local run` serves it under /__local/wecom
(see sidebar_dev), with its state at /__local/wecom/__inspect."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

TAG_PATHS = (
    "/cgi-bin/externalcontact/get_corp_tag_list",
    "/cgi-bin/externalcontact/add_corp_tag",
    "/cgi-bin/externalcontact/mark_tag",
)


@dataclass
class TagGroup:
    group_id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)  # tag id -> name
    deleted_tags: set[str] = field(default_factory=set)


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
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"at", "path", "body"} of POSTs
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)  # group id -> group
    marked: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (userid, contact) -> tag ids
    failures: dict[str, list[int]] = field(default_factory=dict)  # path -> errcodes to answer next
    _ids: Any = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- test helpers -------------------------------------------------------------------------------
    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """Answer `errcode` to the next `times` calls of `path` (e.g. 45009, the frequency limit)."""
        with self._lock:
            self.failures.setdefault(path, []).extend([errcode] * times)

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies of the POST calls made to `path`, in order."""
        with self._lock:
            return [dict(r["body"]) for r in self.requests if r["path"] == path]

    def tag_names(self, userid: str, external_userid: str) -> set[str]:
        """The corp tags on the contact as that member sees them (names of live tags)."""
        with self._lock:
            names = self._names()
            return {names[t] for t in self.marked.get((userid, external_userid), set()) if t in names}

    def delete_tag(self, name: str) -> None:
        """An admin deleting a tag in the console."""
        with self._lock:
            for group in self.tag_groups.values():
                for tag_id, tag_name in list(group.tags.items()):
                    if tag_name == name:
                        group.deleted_tags.add(tag_id)

    def inspect(self) -> dict[str, Any]:
        """The state the local stack's /__local/wecom/__inspect shows."""
        with self._lock:
            names = self._names()
            return {
                "requests": [dict(r) for r in self.requests],
                "tag_groups": [self._group_json(g) for g in self.tag_groups.values()],
                "marked": [
                    {"userid": u, "external_userid": e, "tags": sorted(names[t] for t in ids if t in names)}
                    for (u, e), ids in sorted(self.marked.items())
                ],
            }

    def _names(self) -> dict[str, str]:
        return {
            tag_id: name
            for group in self.tag_groups.values()
            for tag_id, name in group.tags.items()
            if tag_id not in group.deleted_tags
        }

    def _group_json(self, group: TagGroup, only: list[str] | None = None) -> dict[str, Any]:
        tags = [
            {
                "id": tag_id,
                "name": name,
                "create_time": 1764000000,
                "order": 0,
                "deleted": tag_id in group.deleted_tags,
            }
            for tag_id, name in group.tags.items()
            if only is None or tag_id in only
        ]
        return {
            "group_id": group.group_id,
            "group_name": group.name,
            "create_time": 1764000000,
            "order": 0,
            "deleted": False,
            "tag": tags,
        }

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

    def answer(self, path: str, query: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, Any]]:
        """WeCom's answer to one server API call (HTTP status, JSON body)."""
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return 200, {"errcode": 47001, "errmsg": "data format error"}
        with self._lock:
            self.calls.append(path)
            if body:
                self.requests.append({"at": time.time(), "path": path, "body": document})
            injected = self.failures.get(path)
            failure = injected.pop(0) if injected else None
        if self.down:
            return 503, {}
        if failure is not None:
            return 200, {"errcode": failure, "errmsg": "injected by the fake"}
        if path in TAG_PATHS:
            if query.get("access_token") != f"token-{self.tokens_issued}":
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            with self._lock:
                return 200, self._tags(path, document if isinstance(document, dict) else {})
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
            return 200, self._with_marked_tags(query.get("external_userid", ""), found)
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

    # --- customer tags ------------------------------------------------------------------------------
    def _tags(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The tag APIs' semantics (called with the lock held)."""
        if path.endswith("/get_corp_tag_list"):
            wanted = body.get("group_id") or []
            groups = [g for g in self.tag_groups.values() if not wanted or g.group_id in wanted]
            return {"errcode": 0, "errmsg": "ok", "tag_group": [self._group_json(g) for g in groups]}
        if path.endswith("/add_corp_tag"):
            return self._add_corp_tag(body)
        return self._mark_tag(body)

    def _add_corp_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        names = [str(t.get("name", "")) for t in body.get("tag") or [] if isinstance(t, dict)]
        if not names or any(not 0 < len(n) <= 30 for n in names):
            return {"errcode": 40058, "errmsg": "invalid tag name"}
        group: TagGroup | None
        if body.get("group_id"):
            group = self.tag_groups.get(str(body["group_id"]))
            if group is None:
                return {"errcode": 40068, "errmsg": "invalid tagid"}
        else:
            name = str(body.get("group_name") or "")
            group = next((g for g in self.tag_groups.values() if g.name == name), None)
            if group is None:  # WeCom adds to the existing group of that name
                group = TagGroup(f"etGROUP{next(self._ids)}", name)
                self.tag_groups[group.group_id] = group
        live = {n for t, n in group.tags.items() if t not in group.deleted_tags}
        if live & set(names) or len(set(names)) != len(names):
            return {"errcode": 40071, "errmsg": "tag name already exists"}
        created = []
        for name in names:
            tag_id = f"etTAG{next(self._ids)}"
            group.tags[tag_id] = name
            created.append(tag_id)
        return {"errcode": 0, "errmsg": "ok", "tag_group": self._group_json(group, created)}

    def _mark_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        userid, contact = str(body.get("userid") or ""), str(body.get("external_userid") or "")
        add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
        if not userid or not contact:
            return {"errcode": 40003, "errmsg": "invalid userid"}
        if not add and not remove:
            return {"errcode": 41017, "errmsg": "missing add_tag and remove_tag"}
        known = self.contacts.get(contact)
        if known is not None and userid not in {f.get("userid") for f in known.get("follow_user", [])}:
            return {"errcode": 84061, "errmsg": "not external contact"}
        live = set(self._names())
        if not set(add) | set(remove) <= live:
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        tags = self.marked.setdefault((userid, contact), set())
        tags.update(add)
        tags.difference_update(remove)
        return {"errcode": 0, "errmsg": "ok"}

    def _with_marked_tags(self, contact: str, answer: dict[str, Any]) -> dict[str, Any]:
        """externalcontact/get shows each following member's corp tags as WeCom does."""
        with self._lock:
            names = self._names()
            group_of = {t: g.name for g in self.tag_groups.values() for t in g.tags}
            follow_user = []
            for entry in answer.get("follow_user", []):
                marked = self.marked.get((entry.get("userid"), contact), set())
                tags = [
                    {"group_name": group_of[t], "tag_name": names[t], "tag_id": t, "type": 1}
                    for t in sorted(marked)
                    if t in names
                ]
                own = [t for t in entry.get("tags", []) if t.get("type") != 1]
                follow_user.append({**entry, "tags": own + tags})
            return {**answer, "follow_user": follow_user}
