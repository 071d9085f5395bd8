"""The WeCom tag writer's adapters: WeComApi's tag calls against the fake WeCom over HTTP (UTF-8
names, the frequency limit, rejections, token refresh) and the tag state in DynamoDB (moto, the
checkpoints table from template.yaml): claims are conditional on the version read, so two writers
can never both diff against the same state, and the tag-creation lock has a lease."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from scrm_sync.adapters.dynamodb_tag_state import DynamoTagStateStore
from scrm_sync.adapters.send_counts import DynamoSendCounts
from scrm_sync.adapters.wecom_api import WeComApi, WeComRejected, WeComUnavailable
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.followers import follower_field
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.domain.profile import Profile
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.send_window import SendWindow
from scrm_sync.domain.wecom_tags import CorpTag
from scrm_sync.services.send_budget import BlockAllowance, SendBudget
from scrm_sync.services.wecom_tags import WeComTagSync

from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, running_fake_wecom
from tests.integration.conftest import AppResources

MARK_TAG = "/cgi-bin/externalcontact/mark_tag"
GOLD, SILVER = CorpTag("会员等级", "金卡"), CorpTag("会员等级", "银卡")


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with running_fake_wecom() as server:
        yield server


@pytest.fixture
def api(fake: FakeWeCom) -> WeComApi:
    return WeComApi(CORP_ID, SECRET, fake.base_url)


@pytest.fixture
def store(app_resources: AppResources) -> DynamoTagStateStore:
    return DynamoTagStateStore(app_resources.clients("dynamodb"), app_resources.names["CheckpointsTable"])


def test_groups_and_tags_are_created_listed_and_marked_with_chinese_names(api, fake):
    group = api.add_corp_tag("会员等级", ["金卡", "银卡"])
    ids = {t["name"]: t["id"] for t in group["tag"]}
    assert set(ids) == {"金卡", "银卡"}
    [listed] = api.corp_tags()
    assert listed["group_name"] == "会员等级" and {t["name"] for t in listed["tag"]} == {"金卡", "银卡"}
    api.mark_tag("zhangsan", "wmC1", [ids["金卡"]], [])
    api.mark_tag("zhangsan", "wmC1", [ids["银卡"]], [ids["金卡"]])
    assert fake.tag_names("zhangsan", "wmC1") == {"银卡"}
    assert fake.calls_to(MARK_TAG)[-1] == {
        "userid": "zhangsan",
        "external_userid": "wmC1",
        "add_tag": [ids["银卡"]],
        "remove_tag": [ids["金卡"]],
    }
    with pytest.raises(WeComRejected) as duplicate:
        api.add_corp_tag("会员等级", ["金卡"])
    assert duplicate.value.errcode == 40071


def test_the_frequency_limit_is_transient_and_names_its_errcode(api, fake):
    fake.fail_next(MARK_TAG, 45009)
    with pytest.raises(WeComUnavailable) as busy:
        api.mark_tag("zhangsan", "wmC1", ["etX"], [])
    assert busy.value.errcode == 45009


def test_a_deleted_tag_and_a_contact_of_somebody_else_are_rejections(api, fake):
    ids = {t["name"]: t["id"] for t in api.add_corp_tag("客户价值", ["高价值"])["tag"]}
    fake.delete_tag("高价值")
    with pytest.raises(WeComRejected) as unknown:
        api.mark_tag("zhangsan", "wmC1", [ids["高价值"]], [])
    assert unknown.value.errcode == 40068
    fake.contact("wmC2", "李雷")  # followed by zhangsan only
    ids = {t["name"]: t["id"] for t in api.add_corp_tag("客户价值", ["VIP"])["tag"]}
    with pytest.raises(WeComRejected) as not_theirs:
        api.mark_tag("lisi", "wmC2", [ids["VIP"]], [])
    assert not_theirs.value.errcode == 84061


def test_an_expired_token_is_refreshed_once_for_a_tag_call(api, fake):
    api.corp_tags()
    fake.tokens_issued += 1  # WeCom moved on: the cached token is no longer valid
    api.corp_tags()
    assert fake.count("/cgi-bin/gettoken") == 2


def test_claims_are_conditional_on_the_version_read(store):
    key = "wecom-tags#ww#pair"
    assert store.claim(key, 0, frozenset({GOLD}), 100.0)
    assert not store.claim(key, 0, frozenset({SILVER}), 100.0)  # a second writer read version 0 too
    [state] = store.states([key]).values()
    assert state.version == 1 and state.pending == {GOLD} and state.written == frozenset()
    assert not store.confirm(key, 2, frozenset({GOLD}))
    assert store.confirm(key, 1, frozenset({GOLD}))
    [state] = store.states([key]).values()
    assert state.written == {GOLD} and state.pending is None


def test_only_one_of_many_concurrent_claims_wins(store):
    key = "wecom-tags#ww#race"
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda n: store.claim(key, 0, frozenset({GOLD}), float(n)), range(8)))
    assert won.count(True) == 1


def test_the_creation_lock_has_a_lease(store):
    assert store.lock("wecom-tag-ids-lock#ww", 100.0, 60.0)
    assert not store.lock("wecom-tag-ids-lock#ww", 120.0, 60.0)
    assert store.lock("wecom-tag-ids-lock#ww", 161.0, 60.0)  # the holder died: the lease ran out
    store.unlock("wecom-tag-ids-lock#ww")
    assert store.lock("wecom-tag-ids-lock#ww", 162.0, 60.0)
    store.save_tag_ids("ww", {GOLD: "et1", SILVER: "et2"})
    assert store.tag_ids("ww") == {GOLD: "et1", SILVER: "et2"}


def test_the_writer_end_to_end_on_dynamodb_and_the_fake(app_resources, store, fake, api):
    table = app_resources.names["CheckpointsTable"]
    budget = SendBudget(DynamoSendCounts(app_resources.clients("dynamodb"), table), SendWindow(9000, 60, 10))
    rules = load_rules(
        {
            "wecom_tags": {
                "rules": [{"attribute": "member_level", "group": "会员等级", "values": {"gold": "金卡"}}]
            }
        }
    )
    profile = Profile(
        "p1",
        identifiers=[Identifier("wecom_external_userid", "wmC9", CORP_ID)],
        values={"member_level": "gold", follower_field("zhangsan"): "zhangsan"},
    )
    writer = WeComTagSync(
        lambda _: profile,
        lambda: rules,
        lambda: load_credentials({"wecom": {"corp_id": CORP_ID, "secret": SECRET}}),
        lambda _: api,
        store,
        [BlockAllowance(budget)],
        lambda: datetime.now(UTC),
    )
    assert writer.sync("p1").calls == 1
    assert writer.sync("p1").calls == 0
    assert fake.tag_names("zhangsan", "wmC9") == {"金卡"}
