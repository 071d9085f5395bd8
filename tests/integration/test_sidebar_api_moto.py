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
from scrm_sync.domain.jsapi import jsapi_signature

from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, running_fake_wecom
from tests.integration.conftest import AppResources, build_resources, load_function
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
SESSION_KEY = "dev-only-sidebar-session-key-0123456789"
PAGE = "https://crm.example.cn/sidebar/?entry=single_chat_tools"


@dataclass
class SidebarApi:
    resources: AppResources
    function: ModuleType
    wecom: FakeWeCom

    def configure(self, entry: dict[str, Any] | None) -> None:
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


@pytest.fixture
def sidebar(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SidebarApi]:
    resources = build_resources(moto_endpoint)
    monkeypatch.setenv("CHANNELS_SECRET_ARN", resources.names["ChannelCredentialsSecret"])
    monkeypatch.setenv("CHECKPOINTS_TABLE", resources.names["CheckpointsTable"])
    monkeypatch.setenv("RULES_CACHE_SECONDS", "0")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sidebar-{uuid.uuid4().hex[:8]}")
    parameters.clear_caches()
    bootstrap.reset()
    with running_fake_wecom() as wecom:
        api = SidebarApi(resources, load_function("sidebar_api"), wecom)
        api.configure(
            {
                "corp_id": CORP_ID,
                "agent_id": 1000002,
                "secret": SECRET,
                "session_key": SESSION_KEY,
                "api_base": wecom.base_url,
            }
        )
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
