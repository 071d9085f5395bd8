"""The sidebar page in headless Chromium against `scrm local run`: the stub WeCom JS-SDK and the
stack's fake WeCom (OAuth page, tickets) stand in for the WeCom client, everything else is real:
canonical events in, profile merged by the sync core, GET /sidebar/customer out, the page renders.

Needs the Debian packages `chromium` and `chromium-driver` (see .ci/run); without them the tests
are skipped, saying so. Screenshots go to test-artifacts/ (or $SCRM_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrm_local.fake_wecom import CORP_ID
from scrm_sync.domain.followers import follower_field

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FINAL_STATES = {"ready", "empty", "error", "not-your-customer", "wrong-entry"}
AGENT = "zhangsan"  # SCRM_SIDEBAR_DEV_USERID's default: the member the fake OAuth page signs in
OTHER_AGENT = "lisi"  # follows nobody
INTERACTIONS = 21  # Douyin questions, newer than the orders: more than the API's page of 20


def artifacts_dir() -> Path:
    path = Path(os.environ.get("SCRM_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(
            f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="scrm-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=400,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # WeCom's sidebar is about 360 px wide
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 900, "deviceScaleFactor": 2, "mobile": True},
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_sidebar(driver: Any, stack: RunningStack, page: str = "/sidebar/index.html", **stub: str) -> str:
    """A fresh tab session (no token) at the page (SidebarUrl's path by default) with the stub's
    settings; the final state."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{stack.base_url}/sidebar/config.json")  # same origin: clear this tab's session
    driver.execute_script("window.sessionStorage.clear()")
    query = urllib.parse.urlencode({f"stub_{key}": value for key, value in stub.items()})
    driver.get(f"{stack.base_url}{page}?{query}")

    def final_state(d: Any) -> str | None:
        state = d.execute_script("const a = document.getElementById('app'); return a && a.dataset.state")
        return state if state in FINAL_STATES and "code=" in d.current_url else None

    return str(WebDriverWait(driver, 40, poll_frequency=0.2).until(final_state))


def screenshot(driver: Any, name: str) -> Path:
    path = artifacts_dir() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    driver.save_screenshot(str(path))
    print(f"sidebar screenshot: {path}")
    return path


def texts(driver: Any, selector: str) -> list[str]:
    return [e.text for e in driver.find_elements("css selector", selector)]


def load_every_page(driver: Any) -> int:
    """Press 加载更多 (or let the scroll observer load) until the timeline ends; pages loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    pages = 1
    while driver.find_elements("css selector", "[data-testid=load-more]"):
        before = len(driver.find_elements("css selector", "[data-testid=timeline-entry]"))
        driver.execute_script("document.querySelector('[data-testid=load-more]').click()")
        WebDriverWait(driver, 30, poll_frequency=0.2).until(
            lambda d, seen=before: len(d.find_elements("css selector", "[data-testid=timeline-entry]")) > seen
        )
        pages += 1
    return pages


def sidebar_get(stack: RunningStack, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return stack.call("GET", path, api_key=None, headers=headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def agent_token(stack: RunningStack, userid: str) -> str:
    """A session for `userid` the way the page gets one: fake OAuth page -> code -> /sidebar/session."""
    page = f"{stack.base_url}/sidebar/?stub_userid={userid}"
    query = urllib.parse.urlencode(
        {
            "appid": CORP_ID,
            "redirect_uri": page,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "t",
        }
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(f"{stack.base_url}/__local/wecom/connect/oauth2/authorize?{query}", timeout=10)
        raise AssertionError("the fake OAuth page did not redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code == 302
        location = answer.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    status, session = sidebar_get(stack, f"/sidebar/session?{urllib.parse.urlencode({'code': code})}")
    assert status == 200, session
    assert session["userid"] == userid
    return str(session["token"])


def seed_customer(stack: RunningStack) -> dict[str, str]:
    """One customer known on WeCom (followed by AGENT), Tmall, Youzan and the store POS, joined by
    the phone: four canonical events that merge into one profile."""
    run = uuid.uuid4().hex[:8]
    phone = f"139{int(run, 16) % 10**8:08d}"
    external_userid = f"wmE2E-{run}"
    by_phone = {"type": "phone", "value": phone}
    events = [
        {
            "event_id": f"wecom-add-{run}",
            "source": "wecom",
            "type": "profile.updated",
            "occurred_at": "2026-11-01T09:00:00+08:00",
            "identifiers": [
                {"type": "wecom_external_userid", "value": external_userid, "scope": CORP_ID},
                by_phone,
            ],
            # what a 客户联系 add_external_contact push records: AGENT follows the contact
            "attributes": {"name": "王小明", follower_field(AGENT): AGENT},
        },
        {
            "event_id": f"tmall-{run}",
            "source": "tmall",
            "type": "order.created",
            "occurred_at": "2026-11-02T10:00:00+08:00",
            "identifiers": [{"type": "taobao_open_uid", "value": f"AAE2E{run}"}, by_phone],
            "order": {
                "order_id": f"TM-{run}",
                "status": "paid",
                "total": "1299.00",
                "currency": "CNY",
                "created_at": "2026-11-02T10:00:00+08:00",
                "lines": [{"sku": "SERUM-50", "name": "精华液 50ml", "quantity": 1, "price": "1299.00"}],
            },
        },
        {
            "event_id": f"youzan-{run}",
            "source": "youzan",
            "type": "order.created",
            "occurred_at": "2026-11-03T11:00:00+08:00",
            "identifiers": [{"type": "youzan_open_id", "value": f"yzE2E{run}"}, by_phone],
            "order": {
                "order_id": f"YZ-{run}",
                "status": "paid",
                "total": "88.00",
                "currency": "CNY",
                "created_at": "2026-11-03T11:00:00+08:00",
            },
        },
        {
            "event_id": f"pos-member-{run}",
            "source": "pos",
            "type": "profile.updated",
            "occurred_at": "2026-11-04T12:00:00+08:00",
            "identifiers": [{"type": "member_no", "value": f"M{run}", "scope": "pos"}, by_phone],
            "attributes": {"member_level": "gold"},
        },
    ]
    # newer than the orders and more than a page (20): the orders are on the second page
    events += [
        {
            "event_id": f"douyin-im-{run}-{n}",
            "source": "douyin",
            "type": "interaction",
            "occurred_at": f"2026-11-05T{10 + n // 60:02d}:{n % 60:02d}:00+08:00",
            "identifiers": [{"type": "douyin_openid", "value": f"dyE2E{run}"}, by_phone],
            "interaction": {"kind": "question", "content": f"第 {n + 1} 个问题：这款适合敏感肌吗？"},
        }
        for n in range(INTERACTIONS)
    ]
    status, report = stack.call("POST", "/events", {"events": events})
    assert status == 202, report
    stack.wait_drained()
    return {"external_userid": external_userid, "phone": phone, "tmall": f"TM-{run}", "youzan": f"YZ-{run}"}


@pytest.fixture(scope="module")
def customer(local_stack: RunningStack) -> dict[str, str]:
    return seed_customer(local_stack)


def test_the_agent_sees_one_timeline_across_channels(browser, local_stack, customer):
    started = time.monotonic()
    state = open_sidebar(
        browser, local_stack, external_userid=customer["external_userid"], entry="single_chat_tools"
    )
    screenshot(browser, "sidebar-customer-360")
    assert state == "ready", browser.find_element("id", "app").text
    assert texts(browser, "[data-testid=customer-name]") == ["王小明"]
    tier = browser.find_element("css selector", "[data-testid=member-level]")
    assert (tier.get_attribute("data-level"), tier.text) == ("gold", "金卡会员")
    pages = load_every_page(browser)
    assert pages >= 2, "the timeline should take more than one page"
    entries = browser.find_elements("css selector", "[data-testid=timeline-entry]")
    ids = [e.get_attribute("data-event-id") for e in entries]
    assert len(ids) == len(set(ids)) == INTERACTIONS + 2, ids  # every entry once, nothing skipped
    orders = browser.find_elements("css selector", "[data-testid=timeline-entry][data-kind=order]")
    sources = {o.get_attribute("data-source") for o in orders}
    assert {"tmall", "youzan"} <= sources, sources  # orders from at least two channels
    page = browser.find_element("id", "app").text
    assert customer["tmall"] in page and customer["youzan"] in page
    assert "¥1,299.00" in page and "¥88.00" in page
    badges = {
        b.get_attribute("data-channel")
        for b in browser.find_elements("css selector", "[data-testid=channels] .badge")
    }
    assert {"tmall", "youzan"} <= badges, badges
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", orders[0])
    assert screenshot(browser, "sidebar-customer-360-orders").stat().st_size > 0
    print(f"sidebar rendered in {time.monotonic() - started:.1f} s")


def test_the_phone_is_masked_for_an_agent_without_the_role(browser, local_stack, customer):
    open_sidebar(browser, local_stack, external_userid=customer["external_userid"])
    phones = texts(browser, "[data-testid=identifier][data-type=phone] dd")
    assert phones, browser.find_element("id", "app").text
    for shown in phones:
        assert customer["phone"] not in shown and re.fullmatch(r"1\d{2}\*{4}\d{4}", shown), shown
    assert customer["phone"] not in browser.page_source
    status, body = sidebar_get(
        local_stack,
        f"/sidebar/customer?external_userid={customer['external_userid']}",
        agent_token(local_stack, AGENT),
    )
    assert status == 200 and body["masked"] is True, body
    assert customer["phone"] not in str(body)


def test_an_agent_who_does_not_follow_the_customer_sees_not_your_customer(browser, local_stack, customer):
    state = open_sidebar(
        browser, local_stack, external_userid=customer["external_userid"], userid=OTHER_AGENT
    )
    screenshot(browser, "sidebar-not-your-customer")
    assert state == "not-your-customer", browser.find_element("id", "app").text
    assert "不是您的客户" in browser.find_element("id", "app").text
    assert customer["phone"][-4:] not in browser.page_source
    status, body = sidebar_get(
        local_stack,
        f"/sidebar/customer?external_userid={customer['external_userid']}",
        agent_token(local_stack, OTHER_AGENT),
    )
    assert status == 403 and body.get("code") == "not_your_customer", body


def test_outside_a_customer_chat_the_page_says_where_to_open_it(browser, local_stack):
    state = open_sidebar(browser, local_stack, page="/sidebar/", external_userid="wmAny", entry="normal")
    assert state == "wrong-entry"
    assert "请从客户聊天工具栏或客户详情打开" in browser.find_element("id", "app").text
