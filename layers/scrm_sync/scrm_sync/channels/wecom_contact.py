"""WeCom 客户联系 enrichment: the contact's details from ``externalcontact/get`` as a canonical event.

A contact push carries only ids (ExternalUserID, the following member's UserID). The webhook
acks at once and queues an enrichment request; the enrichment function calls WeCom's API and
emits a ``profile.updated`` event (source ``wecom``, event id ``<push event id>:contact``, the
push's time) with:

* identifiers: ``wecom_external_userid`` (scope = CorpID), ``wechat_unionid`` when WeCom returns
  one (only for corps bound to a WeChat Open Platform account), and the ``remark_mobiles`` the
  following member recorded, as ``phone`` (the link that joins a WeCom contact to the store's
  member records; the rules' per-type link limit bounds a mistyped one);
* attributes: ``name``, ``gender`` (male/female/unknown), ``wecom_contact_type`` (wechat/wecom),
  ``wecom_corp_name`` for WeCom users, and per following member its remark and tags, as
  ``wecom_follow_user``, ``wecom_remark`` and ``wecom_tags`` (tag names joined by ``,``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..domain.events import CanonicalEvent
from ..domain.followers import follower_field

SOURCE = "wecom"
_GENDER: dict[Any, str] = {1: "male", 2: "female"}
_CONTACT_TYPE: dict[Any, str] = {1: "wechat", 2: "wecom"}
_MAX_FOLLOWERS = 40  # follower fields per event, within the event's attribute cap


class ContactEnrichmentRequest(BaseModel):
    """What the webhook queues for one contact event (ids only: no personal data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = "wecom"
    corp_id: str = Field(min_length=1, max_length=128)
    external_userid: str = Field(min_length=1, max_length=256)
    follow_user: str | None = Field(None, max_length=256)
    event_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime


def _text(value: Any, limit: int = 256) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    return None


def contact_event(request: ContactEnrichmentRequest, response: Mapping[str, Any]) -> CanonicalEvent:
    """The profile update carried by an ``externalcontact/get`` answer (errcode 0)."""
    contact = response.get("external_contact")
    if not isinstance(contact, Mapping):
        raise ValueError("externalcontact/get answer without external_contact")
    identifiers: list[dict[str, str]] = [
        {"type": "wecom_external_userid", "value": request.external_userid, "scope": request.corp_id}
    ]
    unionid = _text(contact.get("unionid"))
    if unionid:
        identifiers.append({"type": "wechat_unionid", "value": unionid})
    attributes: dict[str, Any] = {}
    for name, value in (
        ("name", _text(contact.get("name"))),
        ("gender", _GENDER.get(contact.get("gender"), "unknown") if "gender" in contact else None),
        ("wecom_contact_type", _CONTACT_TYPE.get(contact.get("type"))),
        ("wecom_corp_name", _text(contact.get("corp_full_name")) or _text(contact.get("corp_name"))),
    ):
        if value is not None:
            attributes[name] = value

    follow_users = response.get("follow_user")
    for entry in (follow_users if isinstance(follow_users, list) else [])[
        :_MAX_FOLLOWERS
    ]:  # every member who follows now
        userid = _text(entry.get("userid")) if isinstance(entry, Mapping) else None
        if userid:
            attributes[follower_field(userid)] = userid
    follow = _follow_entry(response.get("follow_user"), request.follow_user)
    if follow is not None:
        attributes["wecom_follow_user"] = _text(follow.get("userid"))
        remark = _text(follow.get("remark"))
        if remark:
            attributes["wecom_remark"] = remark
        tags = sorted(
            {
                t["tag_name"].strip()
                for t in follow.get("tags") or []
                if isinstance(t, Mapping) and _text(t.get("tag_name"))
            }
        )
        attributes["wecom_tags"] = ",".join(tags)[:4096]
        for mobile in follow.get("remark_mobiles") or []:
            if _text(mobile) and len(identifiers) < 10:
                identifiers.append({"type": "phone", "value": mobile.strip()})
    return CanonicalEvent.model_validate(
        {
            "event_id": f"{request.event_id}:contact",
            "source": SOURCE,
            "type": "profile.updated",
            "occurred_at": request.occurred_at,
            "identifiers": identifiers,
            "attributes": {k: v for k, v in attributes.items() if v is not None},
        }
    )


def _follow_entry(entries: Any, userid: str | None) -> Mapping[str, Any] | None:
    """The following member named by the push, else the most recent one."""
    candidates = [e for e in entries or [] if isinstance(e, Mapping) and _text(e.get("userid"))]
    if not candidates:
        return None
    for entry in candidates:
        if userid and entry.get("userid") == userid:
            return entry
    return max(candidates, key=_created)


def _created(entry: Mapping[str, Any]) -> int:
    value = entry.get("createtime")
    return value if isinstance(value, int) else 0


def enrichment_request(
    corp_id: str, external_userid: str, follow_user: str | None, event_id: str, occurred_at: datetime
) -> dict[str, Any]:
    return ContactEnrichmentRequest(
        corp_id=corp_id,
        external_userid=external_userid,
        follow_user=follow_user or None,
        event_id=event_id,
        occurred_at=occurred_at,
    ).model_dump(mode="json")
