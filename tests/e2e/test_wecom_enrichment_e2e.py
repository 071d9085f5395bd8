"""WeCom contact enrichment through `scrm local run`, against a local fake WeCom API: the push
creates the profile at once, the contact's details follow from externalcontact/get, and an API
outage only delays the details (retried with backoff), never the profile."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack, start_local_stack
from tests.e2e.test_webhooks_e2e import channels_file, profile, raw, wecom_push
from tests.fake_wecom import FakeWeCom, running_fake_wecom
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEV_WECOM = json.loads((ROOT / "config/channels.dev.json").read_text())["wecom"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeCom]:
    with running_fake_wecom() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake: FakeWeCom) -> Iterator[RunningStack]:
    from tests.fake_wecom import SECRET

    wecom = {**DEV_WECOM, "secret": SECRET, "api_base": fake.base_url}
    path = channels_file(tmp_path_factory.mktemp("channels"), wecom)
    retries = {"SCRM_PARAMETER_OVERRIDES": "RetryBackoffBaseSeconds=1"}  # 1 s, 2 s, 4 s ... after an outage
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path), **retries}) as running:
        yield running


def add_contact(stack: RunningStack, external_userid: str) -> None:
    now = str(int(time.time()))
    inner = (
        f"<xml><ToUserName><![CDATA[{DEV_WECOM['corp_id']}]]></ToUserName>"
        f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{now}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID></xml>"
    )
    query, body = wecom_push(DEV_WECOM, inner, now)
    assert raw(stack, "POST", "/webhooks/wecom", query, body)[0] == 200


def contact_profile(stack: RunningStack, external_userid: str) -> dict | None:
    return profile(stack, "wecom_external_userid", external_userid, DEV_WECOM["corp_id"])


def test_contact_details_join_the_profile_and_its_remark_mobile_links_it(stack, fake):
    fake.contact(
        "wmE2E-1", "李雷", unionid="oU-e2e-1", remark_mobiles=["13900139000"], tags=[{"tag_name": "VIP"}]
    )
    add_contact(stack, "wmE2E-1")
    found = wait_for(
        timeout=90.0,
        interval=0.5,
        predicate=lambda: (p := contact_profile(stack, "wmE2E-1")) and "name" in p["attributes"] and p,
    )
    assert found["attributes"]["name"] == "李雷"
    assert found["attributes"]["wecom_tags"] == "VIP"
    by_phone = profile(stack, "phone", "13900139000")
    by_unionid = profile(stack, "wechat_unionid", "oU-e2e-1")
    assert by_phone is not None and by_unionid is not None
    assert by_phone["profile_id"] == by_unionid["profile_id"] == found["profile_id"]


def test_an_api_outage_delays_only_the_details(stack, fake):
    fake.contact("wmE2E-2", "韩梅梅")
    fake.down = True
    try:
        add_contact(stack, "wmE2E-2")
        created = wait_for(timeout=90.0, interval=0.5, predicate=lambda: contact_profile(stack, "wmE2E-2"))
        assert "name" not in created["attributes"]  # the profile exists before WeCom answers
        wait_for(
            timeout=90.0,
            interval=0.5,
            predicate=lambda: (
                fake.calls.count("/cgi-bin/gettoken") + fake.calls.count("/cgi-bin/externalcontact/get")
            ),
        )
    finally:
        fake.down = False
    enriched = wait_for(
        timeout=90.0,
        interval=0.5,
        predicate=lambda: (p := contact_profile(stack, "wmE2E-2")) and "name" in p["attributes"] and p,
    )
    assert enriched["attributes"]["name"] == "韩梅梅"
    assert enriched["profile_id"] == created["profile_id"]
