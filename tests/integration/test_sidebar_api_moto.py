"""SidebarApiFunction in-process on moto (resources from template.yaml) against the local WeCom
stand-in: an OAuth code becomes a session, the session buys JS-SDK signatures that verify with
WeCom's algorithm, and every bad request gets a clear 4xx (a missing configuration a 503)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
from aws_lambda_powertools.utilities import parameters
from scrm_sync import bootstrap
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.followers import follower_field
from scrm_sync.domain.jsapi import jsapi_signature

from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, running_fake_wecom
from tests.integration.conftest import (
    SIDEBAR_RESOURCES,
    AppResources,
    build_resources,
    load_function,
    use_function_environment,
)
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
SESSION_KEY = "dev-only-sidebar-session-key-0123456789"
PAGE = "https://crm.example.cn/sidebar/?entry=single_chat_tools"


@dataclass
class SidebarApi:
    resources: AppResources
    function: ModuleType
    wecom: FakeWeCom

    def configure(self, entry: dict[str, Any] | None, **extra: Any) -> None:
        if entry is not None:
            entry = {**entry, **extra}
        document = {"wecom_sidebar": entry} if entry is not None else {}
        self.resources.clients("secretsmanager").put_secret_value(
            SecretId=self.resources.names["ChannelCredentialsSecret"], SecretString=json.dumps(document)
        )

    def get(self, name: str, query: dict[str, str], token: str | None = None) -> tuple[int, dict[str, Any]]:
        event = json.loads((ROOT / f"events/sidebar_api/{name}.json").read_text())
        event["queryStringParameters"], event["rawQueryString"] = query, urlencode(query)
        event["headers"].pop("authorization", None)
        if token is not None:
            event["headers"]["authorization"] = f"Bearer {token}"
        response = self.function.lambda_handler(event, LambdaContext())
        return int(response["statusCode"]), json.loads(response["body"])

    def session(self, userid: str = "zhangsan") -> str:
        status, body = self.get("session", {"code": self.wecom.oauth_code(uuid.uuid4().hex, userid)})
        assert status == 200, body
        return str(body["token"])


def app_entry(wecom: FakeWeCom) -> dict[str, Any]:
    return {
        "corp_id": CORP_ID,
        "agent_id": 1000002,
        "secret": SECRET,
        "session_key": SESSION_KEY,
        "api_base": wecom.base_url,
    }


@pytest.fixture
def sidebar(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SidebarApi]:
    resources = build_resources(moto_endpoint)
    monkeypatch.setenv("RULES_CACHE_SECONDS", "0")
    use_function_environment(monkeypatch, moto_endpoint, resources, SIDEBAR_RESOURCES, "scrm-sidebar")
    with running_fake_wecom() as wecom:
        api = SidebarApi(resources, load_function("sidebar_api"), wecom)
        api.configure(app_entry(wecom))
        try:
            yield api
        finally:
            bootstrap.reset()
            parameters.clear_caches()


def test_an_agent_signs_in_and_gets_signatures_wecom_accepts(sidebar):
    token = sidebar.session("zhangsan")
    status, body = sidebar.get("jsapi_config", {"url": PAGE + "#/customer"}, token)
    assert status == 200, body
    assert body["corp_id"] == CORP_ID and body["agent_id"] == "1000002"
    corp, agent = body["config"], body["agent_config"]
    assert corp["signature"] == jsapi_signature("corp-ticket-1", corp["nonceStr"], corp["timestamp"], PAGE)
    assert agent["signature"] == jsapi_signature(
        "agent-ticket-2", agent["nonceStr"], agent["timestamp"], PAGE
    )

    sidebar.get("jsapi_config", {"url": PAGE}, token)  # tickets and the token are cached
    assert sidebar.wecom.count("/cgi-bin/gettoken") == 1
    assert sidebar.wecom.count("/cgi-bin/get_jsapi_ticket") == sidebar.wecom.count("/cgi-bin/ticket/get") == 1


def test_an_oauth_code_works_once(sidebar):
    code = sidebar.wecom.oauth_code("code-1", "zhangsan")
    assert sidebar.get("session", {"code": code})[0] == 200
    status, body = sidebar.get("session", {"code": code})
    assert status == 401 and "OAuth code" in body["message"]


def test_somebody_who_is_not_a_member_gets_no_session(sidebar):
    status, body = sidebar.get("session", {"code": sidebar.wecom.oauth_code("code-2", openid="oOUTSIDER")})
    assert status == 403 and "not a member" in body["message"]


@pytest.mark.parametrize(("query", "field"), [({}, "'code'"), ({"code": "x" * 513}, "'code'")])
def test_a_missing_or_oversized_code_is_a_400_naming_it(sidebar, query, field):
    status, body = sidebar.get("session", query)
    assert status == 400 and field in body["message"]


def test_signatures_need_a_valid_session(sidebar):
    assert sidebar.get("jsapi_config", {"url": PAGE})[0] == 401
    assert sidebar.get("jsapi_config", {"url": PAGE}, "forged.token.value")[0] == 401
    assert sidebar.wecom.count("/cgi-bin/get_jsapi_ticket") == 0


@pytest.mark.parametrize("url", ["", "/sidebar/", "javascript:alert(1)"])
def test_a_bad_page_url_is_a_400_naming_url(sidebar, url):
    status, body = sidebar.get("jsapi_config", {"url": url}, sidebar.session())
    assert status == 400 and "'url'" in body["message"]


def test_without_a_valid_sidebar_entry_the_routes_answer_503_naming_the_field(sidebar):
    sidebar.configure({"corp_id": CORP_ID, "agent_id": "1000002", "secret": SECRET, "session_key": "short"})
    status, body = sidebar.get("session", {"code": "any"})
    assert status == 503 and "session_key" in body["message"]
    sidebar.configure(None)
    status, body = sidebar.get("session", {"code": "any"})
    assert status == 503 and "wecom_sidebar" in body["message"]


def test_wecom_down_is_a_503_and_wrong_credentials_a_clear_502(sidebar):
    token = sidebar.session()
    sidebar.wecom.down = True
    assert sidebar.get("jsapi_config", {"url": PAGE}, token)[0] == 503
    sidebar.wecom.down = False
    sidebar.configure(
        {
            "corp_id": CORP_ID,
            "agent_id": "1000002",
            "secret": "wrong",
            "session_key": SESSION_KEY,
            "api_base": sidebar.wecom.base_url,
        }
    )
    status, body = sidebar.get("jsapi_config", {"url": PAGE}, token)
    assert status == 502 and "secret" in body["message"]


# --- the customer 360 ------------------------------------------------------------------------------
EXTERNAL = "wmEXT-360"
PHONE = "13800138000"


def sync(**payload: Any) -> None:
    event = CanonicalEvent.model_validate({"occurred_at": "2026-11-20T10:00:00+08:00", **payload})
    bootstrap.sync().apply(event)


def order(event_id: str, source: str, identifier: dict[str, Any], order_id: str, total: str, at: str) -> None:
    sync(
        event_id=event_id,
        source=source,
        type="order.created",
        occurred_at=at,
        identifiers=[identifier, {"type": "phone", "value": PHONE}],
        order={"order_id": order_id, "status": "paid", "total": total, "currency": "CNY"},
    )


@pytest.fixture
def merged_customer(sidebar: SidebarApi) -> SidebarApi:
    """A WeCom contact followed by zhangsan, a Tmall order, a Youzan order and a POS member: one
    customer through the shared phone."""
    contact = {"type": "wecom_external_userid", "value": EXTERNAL, "scope": CORP_ID}
    sync(
        event_id="wecom-add-1",
        source="wecom",
        type="profile.updated",
        identifiers=[contact],
        attributes={"wecom_follow_user": "zhangsan", follower_field("zhangsan"): "zhangsan"},
    )
    sync(
        event_id="wecom-contact-1",
        source="wecom",
        type="profile.updated",
        identifiers=[contact, {"type": "phone", "value": PHONE}],
        attributes={"name": "韩梅梅", "wecom_tags": "高净值,母婴"},
    )
    order(
        "tmall-1",
        "tmall",
        {"type": "taobao_open_uid", "value": "AAHk5d-tb"},
        "TB-1001",
        "299.00",
        "2026-11-21T09:00:00+08:00",
    )
    order(
        "youzan-1",
        "youzan",
        {"type": "youzan_open_id", "value": "yz-open-1"},
        "E2026-1",
        "59.90",
        "2026-11-22T09:00:00+08:00",
    )
    sync(
        event_id="pos-1",
        source="pos",
        type="profile.updated",
        identifiers=[
            {"type": "member_no", "value": "M-88", "scope": "brand-loyalty"},
            {"type": "phone", "value": PHONE},
        ],
        attributes={"member_level": "gold", "address": "广东省深圳市南山区科技园1号"},
    )
    return sidebar


def customer(api: SidebarApi, agent: str, **query: str) -> tuple[int, dict[str, Any]]:
    return api.get("customer", {"external_userid": EXTERNAL, **query}, api.session(agent))


def test_a_follower_sees_the_merged_customer_across_channels_with_contact_details_masked(merged_customer):
    status, view = customer(merged_customer, "zhangsan")
    assert status == 200, view
    assert view["name"] == "韩梅梅" and view["member_level"] == "gold"
    assert view["tags"] == ["高净值", "母婴"]
    assert {"wecom", "tmall", "youzan", "pos"} <= set(view["channels"])
    assert view["followed_by"] == ["zhangsan"]
    orders = [(e["source"], e["data"]["order_id"]) for e in view["timeline"] if e["kind"] == "order"]
    assert orders == [("youzan", "E2026-1"), ("tmall", "TB-1001")]  # newest first
    assert view["masked"] is True
    assert [i["value"] for i in view["identifiers"] if i["type"] == "phone"] == ["138****8000"]
    assert view["attributes"]["address"] == "广东省深圳市****"
    assert PHONE not in json.dumps(view, ensure_ascii=False)
    assert not any(name.startswith("wecom_follower_") for name in view["attributes"])
    assert view["next_cursor"] is None


def test_an_agent_who_does_not_follow_the_customer_is_refused_and_every_view_logged(merged_customer, caplog):
    caplog.set_level("INFO")
    status, body = customer(merged_customer, "lisi")
    assert status == 403 and body["code"] == "not_your_customer"
    assert "韩梅梅" not in json.dumps(body, ensure_ascii=False)
    assert customer(merged_customer, "zhangsan")[0] == 200
    views = [r for r in caplog.records if r.getMessage() == "sidebar view"]
    assert [(r.agent, r.allowed) for r in views] == [("lisi", False), ("zhangsan", True)]  # type: ignore[attr-defined]
    assert views[0].profile_id == views[1].profile_id and views[0].profile_id.startswith("p_")  # type: ignore[attr-defined]
    # the view that was shown is in the access log: the agent, the profile, the purpose
    table = merged_customer.resources.table("AccessLogTable")
    items = merged_customer.resources.clients("dynamodb").scan(TableName=table)["Items"]
    assert [(i["caller"]["S"], i["purpose"]["S"], i["profile_id"]["S"]) for i in items] == [
        ("wecom:zhangsan", "sidebar", views[1].profile_id)  # type: ignore[attr-defined]
    ]


def test_roles_see_every_customer_and_full_contact_details(merged_customer):
    merged_customer.configure(app_entry(merged_customer.wecom), roles={"lisi": ["all_customers"]})
    status, view = customer(merged_customer, "lisi")
    assert status == 200 and view["masked"] is True
    merged_customer.configure(
        app_entry(merged_customer.wecom), roles={"lisi": ["all_customers", "full_contact"]}
    )
    status, view = customer(merged_customer, "lisi")
    assert status == 200 and view["masked"] is False
    assert view["attributes"]["address"] == "广东省深圳市南山区科技园1号"
    assert any(i["type"] == "phone" and PHONE in i["value"] for i in view["identifiers"])


def test_a_member_who_deleted_the_customer_no_longer_sees_them(merged_customer):
    sync(
        event_id="wecom-del-1:unfollow",
        source="wecom",
        type="profile.updated",
        occurred_at="2026-11-25T10:00:00+08:00",
        identifiers=[{"type": "wecom_external_userid", "value": EXTERNAL, "scope": CORP_ID}],
        attributes={follower_field("zhangsan"): None},
    )
    assert customer(merged_customer, "zhangsan")[0] == 403


def test_the_timeline_pages_with_a_cursor_without_repeats_or_gaps(merged_customer):
    for n in range(45):
        order(
            f"tmall-p{n}",
            "tmall",
            {"type": "taobao_open_uid", "value": "AAHk5d-tb"},
            f"TB-{2000 + n}",
            "10.00",
            f"2026-10-{1 + n % 28:02d}T{n % 24:02d}:00:00+08:00",
        )
    token = merged_customer.session("zhangsan")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"external_userid": EXTERNAL, **({"cursor": cursor} if cursor else {})}
        status, view = merged_customer.get("customer", query, token)
        assert status == 200, view
        seen += [e["event_id"] for e in view["timeline"]]
        pages += 1
        cursor = view["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 47
    assert sum(1 for e in seen if e.startswith("tmall-p")) == 45


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({}, 400, "'external_userid'"),
        ({"external_userid": EXTERNAL, "cursor": "not-a-cursor!"}, 400, "'cursor'"),
        ({"external_userid": "wmNOBODY"}, 404, "no profile"),
    ],
)
def test_bad_or_unknown_requests_get_a_clear_answer(merged_customer, query, status, field):
    answer_status, body = merged_customer.get("customer", query, merged_customer.session("zhangsan"))
    assert answer_status == status and field in body["message"]


def test_the_customer_needs_a_session(merged_customer):
    assert merged_customer.get("customer", {"external_userid": EXTERNAL})[0] == 401
