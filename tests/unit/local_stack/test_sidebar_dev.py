"""The local stack's sidebar click-through (scrm_local.sidebar_dev): the page's files without
shadowing the API routes, the generated config, the stub SDK and the fake WeCom OAuth page."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from scrm_local.config_files import BINDINGS, LOCAL_API_PLACEHOLDER, valid_text
from scrm_local.fake_wecom import CORP_ID
from scrm_local.sidebar_dev import OAUTH_PATH, STUB_PATH, SidebarDev
from scrm_sync.domain.config_documents import CHANNELS

ROOT = Path(__file__).resolve().parents[3]
CHANNELS_FILE = ROOT / "config" / "channels.dev.json"


@pytest.fixture
def dev() -> SidebarDev:
    return SidebarDev(ROOT / "sidebar", CHANNELS_FILE, dev_userid="zhangsan", dev_external_userid="wmDEV")


def header(response, name: str) -> str:
    return next(value for key, value in response[1] if key.lower() == name.lower())


@pytest.mark.parametrize(
    "path",
    ["/sidebar/session?code=x", "/sidebar/jsapi-config?url=y", "/sidebar/customer", "/events", "/healthz"],
)
def test_the_api_routes_are_not_shadowed(dev, path):
    assert dev.respond("GET", path) is None


def test_the_page_and_its_modules_are_served(dev):
    index = dev.respond("GET", "/sidebar/?stub_entry=contact_profile")
    assert index is not None and index[0] == 200 and b'type="module"' in index[2]
    assert header(index, "Content-Type").startswith("text/html")
    module = dev.respond("GET", "/sidebar/js/app.js")
    assert module is not None and module[0] == 200
    assert header(module, "Content-Type").startswith("text/javascript")  # ES modules need a JS type
    redirect = dev.respond("GET", "/sidebar?stub_entry=normal")
    assert redirect is not None and redirect[0] == 302
    assert header(redirect, "Location") == "/sidebar/?stub_entry=normal"


@pytest.mark.parametrize(
    "path", ["/sidebar/missing.js", "/sidebar/../config/channels.dev.json", "/sidebar/%2e%2e/x.js"]
)
def test_no_file_outside_the_page_and_no_missing_file(dev, path):
    answer = dev.respond("GET", path)
    assert answer is not None and answer[0] == 404


def test_the_local_config_names_the_stub_and_the_fake_oauth_page(dev):
    answer = dev.respond("GET", "/sidebar/config.json")
    assert answer is not None and answer[0] == 200
    config = json.loads(answer[2])
    assert config["corp_id"] == CORP_ID and config["agent_id"] == "1000002"
    assert config["sdk_scripts"] == [STUB_PATH] and config["oauth_authorize_url"] == OAUTH_PATH
    deployed = json.loads((ROOT / "sidebar" / "config.json").read_text())
    assert "sdk_scripts" not in deployed and "oauth_authorize_url" not in deployed  # the official ones


def test_the_stub_sdk_gets_the_stack_defaults(dev):
    answer = dev.respond("GET", STUB_PATH)
    assert answer is not None and answer[0] == 200
    assert answer[2].startswith(b'const STUB_DEFAULTS = {"external_userid": "wmDEV"};')
    assert not (ROOT / "sidebar").joinpath("ww-stub.js").exists()  # never deployed with the page


def authorize(dev: SidebarDev, **query: str):
    return dev.respond("GET", f"{OAUTH_PATH}?{urlencode(query)}")


def test_the_fake_oauth_page_redirects_back_with_a_code_for_the_dev_member(dev):
    page = "http://127.0.0.1:3000/sidebar/?stub_external_userid=wmEXT-1"
    answer = authorize(dev, appid=CORP_ID, redirect_uri=page, scope="snsapi_base", state="s1")
    assert answer is not None and answer[0] == 302
    back = urlsplit(header(answer, "Location"))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert back.path == "/sidebar/" and query["state"] == "s1" and query["stub_external_userid"] == "wmEXT-1"
    token = dev.wecom.answer("/cgi-bin/gettoken", {"corpid": CORP_ID, "corpsecret": "dev-wecom-secret"})[1]
    member = {"access_token": token["access_token"], "code": query["code"]}
    assert dev.wecom.answer("/cgi-bin/auth/getuserinfo", member)[1]["userid"] == "zhangsan"
    assert dev.wecom.answer("/cgi-bin/auth/getuserinfo", member)[1]["errcode"] == 40029  # single use


def test_the_page_can_ask_for_another_member(dev):
    page = "http://127.0.0.1:3000/sidebar/?stub_userid=lisi"
    answer = authorize(dev, appid=CORP_ID, redirect_uri=page, scope="snsapi_base", state="s")
    assert answer is not None
    code = parse_qs(urlsplit(header(answer, "Location")).query)["code"][0]
    assert dev.wecom.oauth_codes[code]["userid"] == "lisi"


@pytest.mark.parametrize(
    "query",
    [
        {"appid": "wwSomebodyElse", "redirect_uri": "http://127.0.0.1/sidebar/", "scope": "snsapi_base"},
        {"appid": CORP_ID, "redirect_uri": "http://127.0.0.1/sidebar/", "scope": "snsapi_login"},
        {"appid": CORP_ID, "redirect_uri": "javascript:alert(1)", "scope": "snsapi_base"},
    ],
)
def test_the_fake_oauth_page_refuses_what_wecom_refuses(dev, query):
    answer = authorize(dev, **query)
    assert answer is not None and answer[0] == 400


def test_the_fake_wecom_api_is_served_under_its_prefix(dev):
    answer = dev.respond("GET", "/__local/wecom/cgi-bin/gettoken?corpid=wrong&corpsecret=x")
    assert answer is not None and json.loads(answer[2])["errcode"] == 40001


def test_the_dev_channels_file_points_the_sidebar_at_the_running_stack():
    binding = next(b for b in BINDINGS if b.logical_id == "ChannelCredentialsSecret")
    assert LOCAL_API_PLACEHOLDER in CHANNELS_FILE.read_text()
    text = valid_text(binding, CHANNELS_FILE, {LOCAL_API_PLACEHOLDER: "http://127.0.0.1:3456"})
    assert json.loads(text)["wecom_sidebar"]["api_base"] == "http://127.0.0.1:3456/__local/wecom"
    assert CHANNELS.parse(text) is not None


def test_tag_calls_reach_the_fake_and_its_state_is_inspectable(dev):
    token = json.loads(
        dev.respond(
            "GET", "/__local/wecom/cgi-bin/gettoken?corpid=ww0000000000000dev&corpsecret=dev-wecom-secret"
        )[2]
    )
    query = f"access_token={token['access_token']}"
    body = json.dumps({"group_name": "会员等级", "tag": [{"name": "金卡"}]}, ensure_ascii=False).encode()
    created = dev.respond("POST", f"/__local/wecom/cgi-bin/externalcontact/add_corp_tag?{query}", body)
    assert created is not None and json.loads(created[2])["tag_group"]["tag"][0]["name"] == "金卡"
    state = json.loads(dev.respond("GET", "/__local/wecom/__inspect")[2])
    assert state["requests"][0]["body"]["group_name"] == "会员等级"
    assert [g["group_name"] for g in state["tag_groups"]] == ["会员等级"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/fail", b"not json"),
        ("/fail", b'{"path": "/cgi-bin/externalcontact/mark_tag", "errcode": "busy"}'),
        ("/fail", b'{"path": "/elsewhere", "errcode": 45009}'),
        ("/contacts", b"{}"),
    ],
)
def test_bad_inspection_requests_are_a_400(dev, path, body):
    answer = dev.respond("POST", f"/__local/wecom/__inspect{path}", body)
    assert answer is not None and answer[0] == 400


def test_an_armed_failure_answers_the_next_call(dev):
    armed = dev.respond(
        "POST",
        "/__local/wecom/__inspect/fail",
        b'{"path": "/cgi-bin/externalcontact/mark_tag", "errcode": 45009}',
    )
    assert armed is not None and armed[0] == 200
    answer = dev.respond("POST", "/__local/wecom/cgi-bin/externalcontact/mark_tag?access_token=x", b"{}")
    assert answer is not None and json.loads(answer[2])["errcode"] == 45009
