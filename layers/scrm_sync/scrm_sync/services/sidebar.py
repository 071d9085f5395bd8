"""The WeCom sidebar's backend: who the agent is (OAuth code -> member userid -> session token)
and the JS-SDK signatures the page needs to call `wx.config` / `wx.agentConfig`.

The sidebar is its own self-built WeCom app, configured as the `wecom_sidebar` entry of the
channels secret: `corp_id`, `agent_id`, that app's `secret` (its access_token signs the agent
ticket, so it must be the same app's), a `session_key` of at least 32 characters, and optionally
`api_base` and `session_minutes`. Until that entry is valid every sidebar route answers 503
naming what is missing; nothing else in the service depends on it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..domain.credentials import ChannelCredentials
from ..domain.customer_view import customer_view
from ..domain.followers import follows
from ..domain.identifiers import normalize_identifier
from ..domain.jsapi import sign_page
from ..domain.sidebar_session import MIN_KEY_LENGTH, InvalidSession, issue_session, session_member
from ..domain.timeline import decode_cursor, encode_cursor
from .archive import ArchivedOrders
from .ports import ProfileRepository

SIDEBAR_ENTRY = "wecom_sidebar"
ALL_CUSTOMERS = "all_customers"  # role: sees every customer, not only those the member follows
FULL_CONTACT = "full_contact"  # role: sees phones, addresses and emails unmasked
Role = Literal["all_customers", "full_contact"]
MAX_CODE_LENGTH = 512  # WeCom's OAuth codes are at most 512 bytes
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


class SidebarNotConfigured(RuntimeError):
    """The channels secret has no valid `wecom_sidebar` entry (the message names the field)."""


class SessionRefused(Exception):
    """The OAuth code does not name a member of this corp."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SidebarApp(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    corp_id: str = Field(min_length=1)
    agent_id: str = Field(pattern=r"^[0-9]{1,12}$")
    secret: str = Field(min_length=1)
    session_key: str = Field(min_length=MIN_KEY_LENGTH)
    api_base: str = DEFAULT_API_BASE
    session_minutes: int = Field(120, ge=5, le=720)
    roles: dict[str, list[Role]] = Field(default_factory=dict)  # member userid -> roles

    @field_validator("agent_id", mode="before")
    @classmethod
    def _agent_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SidebarWeCom(Protocol):
    """What the sidebar needs from WeCom's server API (adapters.wecom_api.WeComApi)."""

    def member_for_code(self, code: str) -> dict[str, Any]: ...
    def corp_jsapi_ticket(self) -> str: ...
    def agent_jsapi_ticket(self) -> str: ...


class Sidebar:
    def __init__(
        self,
        credentials: Callable[[], ChannelCredentials],
        wecom_for: Callable[[SidebarApp], SidebarWeCom],
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_urlsafe(12),
    ) -> None:
        self._credentials = credentials
        self._wecom_for = wecom_for
        self._clock = clock
        self._nonce = nonce

    def app(self) -> SidebarApp:
        entry = self._credentials().channel(SIDEBAR_ENTRY)
        if entry is None:
            raise SidebarNotConfigured(f"the channels secret has no '{SIDEBAR_ENTRY}' entry")
        try:
            return SidebarApp.model_validate(entry)
        except ValidationError as exc:
            fields = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
            raise SidebarNotConfigured(f"'{SIDEBAR_ENTRY}' needs valid {', '.join(fields)}") from None

    def open_session(self, code: str) -> dict[str, Any]:
        """Exchange a one-time OAuth code for a session token naming the member."""
        app = self.app()
        answer = self._wecom_for(app).member_for_code(code)
        userid = answer.get("userid") or answer.get("UserId")  # the legacy endpoint capitalizes
        if not isinstance(userid, str) or not userid:
            raise SessionRefused(403, "this WeCom account is not a member of the corp")
        now = int(self._clock())
        lifetime = app.session_minutes * 60
        return {
            "token": issue_session(userid, app.corp_id, app.session_key, now, lifetime),
            "userid": userid,
            "expires_at": now + lifetime,
        }

    def member(self, token: str | None, app: SidebarApp | None = None) -> str:
        """The userid of a valid session token; InvalidSession otherwise."""
        app = app or self.app()
        return session_member(token, app.corp_id, app.session_key, int(self._clock()))

    def jsapi_config(self, url: str) -> dict[str, Any]:
        """Signatures for `wx.config` (corp ticket) and `wx.agentConfig` (app ticket) of one page."""
        app = self.app()
        wecom = self._wecom_for(app)
        timestamp = int(self._clock())
        config = sign_page(wecom.corp_jsapi_ticket(), url, self._nonce(), timestamp)
        agent_config = sign_page(wecom.agent_jsapi_ticket(), url, self._nonce(), timestamp)
        return {
            "corp_id": app.corp_id,
            "agent_id": app.agent_id,
            "config": config.as_json(),
            "agent_config": agent_config.as_json(),
        }


def wecom_failure(errcode: int | None) -> tuple[int, str]:
    """A clear answer for a WeCom error on the sidebar's calls (status, message)."""
    if errcode == 60020:
        return 502, "WeCom refused this server's IP: add the egress IP to the app's trusted IPs (企业可信IP)"
    if errcode in (40001, 40013, 40056, 42012, 48001, 40014, 42001, 301002):
        return (
            502,
            f"WeCom refused the sidebar app's credentials (errcode {errcode}): "
            "check corp_id, agent_id and secret",
        )
    if errcode in (45009, 45033, 45011):
        return 503, f"WeCom is rate limiting this corp (errcode {errcode}): retry shortly"
    return 503, "WeCom is unavailable: retry shortly"


# --- the customer 360 ------------------------------------------------------------------------------
PAGE_SIZE = 20  # timeline entries per page: a sidebar screen and a half


class NotYourCustomer(PermissionError):
    """The agent does not follow this external contact and has no role that sees every customer."""

    def __init__(self, member: str, profile_id: str) -> None:
        super().__init__("this customer is not one of yours: only members who follow them may see them")
        self.member = member
        self.profile_id = profile_id


class UnknownCustomer(LookupError):
    """No profile has this external contact (yet)."""


class SidebarCustomers:
    """GET /sidebar/customer: who may see which customer, and what of them."""

    def __init__(
        self, sidebar: Sidebar, repository: ProfileRepository, archived: ArchivedOrders | None = None
    ) -> None:
        self._sidebar = sidebar
        self._repo = repository
        self._archived = archived

    def customer(self, token: str | None, external_userid: str, cursor: str | None = None) -> CustomerPage:
        app = self._sidebar.app()
        member = self._sidebar.member(token, app)
        roles = set(app.roles.get(member, ()))
        contact = normalize_identifier("wecom_external_userid", external_userid, app.corp_id)
        before = decode_cursor(cursor)
        owner = self._repo.owners([contact.key]).get(contact.key)
        # the header's identifiers on the first page only: the next pages are the timeline
        profile = self._repo.load(owner.profile_id, identifiers=before is None) if owner is not None else None
        if profile is None:
            raise UnknownCustomer("no profile has this external contact yet")
        if ALL_CUSTOMERS not in roles and not follows(profile.values, member):
            raise NotYourCustomer(member, profile.profile_id)
        ids = [profile.profile_id, *profile.merged_from]
        entries, next_before = self._repo.timeline_page(ids, PAGE_SIZE, before)
        view = customer_view(profile, entries, masked=FULL_CONTACT not in roles)
        view["next_cursor"] = encode_cursor(next_before)
        view["archived_orders"] = self._archived.notice(ids) if self._archived and before is None else None
        return CustomerPage(member, profile.profile_id, view)


@dataclass(frozen=True)
class CustomerPage:
    member: str  # who looked (the view log names the agent and the profile, never personal values)
    profile_id: str
    view: dict[str, Any]


__all__ = [
    "CustomerPage",
    "InvalidSession",
    "NotYourCustomer",
    "SessionRefused",
    "Sidebar",
    "SidebarApp",
    "SidebarCustomers",
    "SidebarNotConfigured",
    "UnknownCustomer",
    "wecom_failure",
]
