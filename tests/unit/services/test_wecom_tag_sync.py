"""The tag writer against an in-memory WeCom: one group creation, one mark_tag per following
member and change, nothing for duplicates, and convergence whatever happens in between."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemorySendCounts, InMemoryTagStateStore
from scrm_sync.adapters.wecom_api import WeComRejected, WeComUnavailable
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.followers import follower_field
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.domain.profile import Profile
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.send_window import SendWindow
from scrm_sync.services.send_budget import BlockAllowance, SendBudget
from scrm_sync.services.wecom_tags import TagsNotConfigured, TagSyncBusy, WeComTagSync

CORP = "wwcorp"
RULES = load_rules(
    {
        "wecom_tags": {
            "rules": [
                {
                    "attribute": "member_level",
                    "group": "会员等级",
                    "values": {"gold": "金卡", "silver": "银卡"},
                },
                {"attribute": "lifetime_value", "group": "客户价值", "at_least": 5000, "tag": "高价值"},
            ]
        }
    }
)
CREDENTIALS = load_credentials(
    {"wecom": {"corp_id": CORP, "secret": "s", "token": "t", "encoding_aes_key": "k"}}
)


class MemoryWeCom:
    """WeCom's tag APIs with their semantics: ids per tag, tags per (member, contact)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, str]] = {}  # group -> tag name -> id
        self.marked: dict[tuple[str, str], set[str]] = {}  # (userid, contact) -> tag ids
        self.calls: list[tuple[str, Any]] = []
        self.fail: list[Exception] = []
        self._ids = itertools.count(1)

    def _maybe_fail(self) -> None:
        if self.fail:
            raise self.fail.pop(0)

    def corp_tags(self, group_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        self.calls.append(("get_corp_tag_list", None))
        return [
            {"group_id": f"g-{g}", "group_name": g, "tag": [{"id": i, "name": n} for n, i in tags.items()]}
            for g, tags in self.groups.items()
        ]

    def add_corp_tag(
        self, group_name: str, tag_names: Sequence[str], group_id: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("add_corp_tag", (group_name, tuple(tag_names))))
        group = self.groups.setdefault(group_name, {})
        for name in tag_names:
            group[name] = f"et{next(self._ids)}"
        return {
            "group_id": f"g-{group_name}",
            "group_name": group_name,
            "tag": [{"id": group[n], "name": n} for n in tag_names],
        }

    def mark_tag(self, userid: str, external_userid: str, add: Sequence[str], remove: Sequence[str]) -> None:
        self.calls.append(("mark_tag", (userid, tuple(add), tuple(remove))))
        self._maybe_fail()
        live = {i for tags in self.groups.values() for i in tags.values()}
        if not set(add) <= live:
            raise WeComRejected(40068, "invalid tagid")
        tags = self.marked.setdefault((userid, external_userid), set())
        tags.update(add)
        tags.difference_update(remove)

    def names(self, userid: str, contact: str) -> set[str]:
        by_id = {i: n for tags in self.groups.values() for n, i in tags.items()}
        return {by_id[i] for i in self.marked.get((userid, contact), set()) if i in by_id}

    def count(self, api: str) -> int:
        return sum(1 for name, _ in self.calls if name == api)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def writer(
    wecom: MemoryWeCom,
    profiles: dict[str, Profile],
    clock: Clock,
    store: InMemoryTagStateStore | None = None,
    limit: int = 9000,
) -> WeComTagSync:
    budget = SendBudget(InMemorySendCounts(), SendWindow(limit=limit, seconds=60, bucket_seconds=10))
    return WeComTagSync(
        profiles.get,
        lambda: RULES,
        lambda: CREDENTIALS,
        lambda entry: wecom,
        store or InMemoryTagStateStore(),
        [BlockAllowance(budget, block=5)],
        clock,
    )


def customer(members: Sequence[str] = ("zhangsan", "lisi"), **attributes: Any) -> Profile:
    values: dict[str, Any] = {follower_field(m): m for m in members}
    values.update(attributes)
    return Profile("p1", identifiers=[Identifier("wecom_external_userid", "wmC1", CORP)], values=values)


def test_raising_to_gold_creates_the_group_once_and_marks_every_following_member_once():
    wecom, clock = MemoryWeCom(), Clock()
    profiles = {"p1": customer(member_level="gold")}
    sync = writer(wecom, profiles, clock)
    report = sync.sync("p1")
    assert report.calls == 2 and report.created_groups == 1
    assert wecom.calls[1] == ("add_corp_tag", ("会员等级", ("金卡", "银卡")))  # the whole group at once
    assert wecom.count("mark_tag") == 2
    assert wecom.names("zhangsan", "wmC1") == wecom.names("lisi", "wmC1") == {"金卡"}
    sync.sync("p1")  # the same change delivered again
    assert wecom.count("mark_tag") == 2 and wecom.count("add_corp_tag") == 1


def test_a_change_adds_and_removes_in_one_call_and_leaves_members_own_tags_alone():
    wecom, clock = MemoryWeCom(), Clock()
    profiles = {"p1": customer(member_level="gold")}
    sync = writer(wecom, profiles, clock)
    sync.sync("p1")
    wecom.marked[("zhangsan", "wmC1")].add("et-own")  # a member's own tag
    profiles["p1"] = customer(member_level="silver", lifetime_value=8000)
    sync.sync("p1")
    marks = [args for name, args in wecom.calls if name == "mark_tag"][2:]
    assert len(marks) == 2
    assert wecom.names("zhangsan", "wmC1") == {"银卡", "高价值"}
    assert "et-own" in wecom.marked[("zhangsan", "wmC1")]
    assert wecom.count("add_corp_tag") == 2  # the second group, once


def test_nothing_to_do_without_rules_contact_or_followers():
    wecom, clock = MemoryWeCom(), Clock()
    profiles = {
        "p1": customer(members=(), member_level="gold"),
        "p2": Profile("p2", values={"member_level": "gold"}),
    }
    sync = writer(wecom, profiles, clock)
    assert sync.sync("p1").skipped == "no following member"
    assert sync.sync("p2").skipped == "no WeCom contact"
    assert sync.sync("gone").skipped == "no profile"
    assert wecom.calls == []


def test_missing_secret_is_an_operators_fix_not_a_drop():
    sync = writer(MemoryWeCom(), {"p1": customer(member_level="gold")}, Clock())
    sync._credentials = lambda: load_credentials({"wecom": {"corp_id": CORP}})  # type: ignore[method-assign]
    with pytest.raises(TagsNotConfigured):
        sync.sync("p1")


def test_wecom_frequency_limit_closes_the_corps_budget_for_everyone_until_it_slides_on():
    wecom, clock = MemoryWeCom(), Clock()
    sync = writer(wecom, {"p1": customer(members=("zhangsan",), member_level="gold")}, clock)
    wecom.fail.append(WeComUnavailable("busy", 45009))
    with pytest.raises(WeComUnavailable):
        sync.sync("p1")
    clock.now += timedelta(seconds=61)  # the claimed write's lease also ends
    with pytest.raises(TagSyncBusy):
        sync.sync("p1")  # the window is full: no call goes out
    assert wecom.count("mark_tag") == 1
    clock.now += timedelta(seconds=70)
    sync.sync("p1")
    assert wecom.names("zhangsan", "wmC1") == {"金卡"}


def test_a_write_in_flight_holds_the_pair_and_a_dead_one_is_taken_over():
    wecom, clock, store = MemoryWeCom(), Clock(), InMemoryTagStateStore()
    profiles = {"p1": customer(members=("zhangsan",), member_level="gold")}
    sync = writer(wecom, profiles, clock, store)
    store.confirm = lambda *args: False  # type: ignore[method-assign]  # the writer dies after the call
    sync.sync("p1")
    del store.confirm
    profiles["p1"] = customer(members=("zhangsan",), member_level="silver")
    with pytest.raises(TagSyncBusy):
        sync.sync("p1")
    clock.now += timedelta(seconds=61)
    sync.sync("p1")
    assert wecom.names("zhangsan", "wmC1") == {"银卡"}


def test_a_tag_an_admin_deleted_is_created_again_and_the_write_retried_once():
    wecom, clock = MemoryWeCom(), Clock()
    profiles = {"p1": customer(members=("zhangsan",), member_level="gold")}
    sync = writer(wecom, profiles, clock)
    sync.sync("p1")
    wecom.groups["会员等级"].pop("银卡")  # deleted in the admin console
    profiles["p1"] = customer(members=("zhangsan",), member_level="silver")
    sync.sync("p1")
    assert wecom.names("zhangsan", "wmC1") == {"银卡"}


def test_a_member_who_no_longer_has_the_contact_is_skipped():
    wecom, clock = MemoryWeCom(), Clock()
    sync = writer(wecom, {"p1": customer(members=("zhangsan",), member_level="gold")}, clock)
    wecom.fail.append(WeComRejected(84061, "not external contact"))
    report = sync.sync("p1")
    assert report.not_following == 1 and report.calls == 0


levels = st.sampled_from(["gold", "silver", None])
values = st.sampled_from([0, 6000, None])


@settings(max_examples=60, deadline=None)
@given(
    changes=st.lists(st.tuples(levels, values, st.booleans(), st.booleans()), min_size=1, max_size=12),
)
def test_whatever_is_delivered_twice_or_lost_mid_write_the_last_delivery_leaves_the_final_tags(changes):
    """Each change is delivered (maybe twice); a write may die between its call and its record.
    Deliveries happen in change order (the queue is FIFO per profile), time passes between them.
    After the last delivery the members' managed tags are exactly what the final attributes want."""
    wecom, clock, store = MemoryWeCom(), Clock(), InMemoryTagStateStore()
    profiles: dict[str, Profile] = {}
    sync = writer(wecom, profiles, clock, store)
    original_confirm = store.confirm
    for level, value, duplicate, dies in changes:
        attributes = {k: v for k, v in (("member_level", level), ("lifetime_value", value)) if v is not None}
        profiles["p1"] = customer(**attributes)
        store.confirm = (lambda *args: False) if dies else original_confirm  # type: ignore[method-assign]
        for _ in range(2 if duplicate else 1):
            clock.now += timedelta(seconds=90)
            with contextlib.suppress(TagSyncBusy):
                sync.sync("p1")
    store.confirm = original_confirm  # type: ignore[method-assign]
    clock.now += timedelta(seconds=90)
    sync.sync("p1")  # the last message (a redelivery of the last change) always gets through
    wanted = {t.name for t in RULES.wecom_tags.desired(profiles["p1"].values)}
    for member in ("zhangsan", "lisi"):
        assert wecom.names(member, "wmC1") == wanted


def test_a_tag_an_admin_created_meanwhile_is_used_not_refused():
    wecom, clock = MemoryWeCom(), Clock()
    sync = writer(wecom, {"p1": customer(members=("zhangsan",), member_level="gold")}, clock)
    original = wecom.add_corp_tag

    def racing_admin(group_name, tag_names, group_id=None):
        original(group_name, tag_names, group_id)  # the admin's creation lands first
        raise WeComRejected(40071, "tag name already exists")

    wecom.add_corp_tag = racing_admin  # type: ignore[method-assign]
    sync.sync("p1")
    assert wecom.names("zhangsan", "wmC1") == {"金卡"}


def test_the_hourly_budget_holds_even_when_every_minute_has_room():
    wecom, clock = MemoryWeCom(), Clock()
    counts = InMemorySendCounts()  # one store for both windows, as in AWS
    minute = BlockAllowance(
        SendBudget(counts, SendWindow(limit=9000, seconds=60, bucket_seconds=10)), block=1
    )
    hour = BlockAllowance(SendBudget(counts, SendWindow(limit=3, seconds=3600, bucket_seconds=300)), block=1)
    profiles = {"p1": customer(members=("zhangsan", "lisi"), member_level="gold")}
    sync = WeComTagSync(
        profiles.get,
        lambda: RULES,
        lambda: CREDENTIALS,
        lambda entry: wecom,
        InMemoryTagStateStore(),
        [minute, hour],
        clock,
    )
    assert sync.sync("p1").calls == 2  # two of the hour's three mark_tag calls
    profiles["p1"] = customer(members=("zhangsan", "lisi"), member_level="silver")
    clock.now += timedelta(minutes=5)
    with pytest.raises(TagSyncBusy, match="budget"):
        sync.sync("p1")  # the third goes out, the fourth would exceed the hour
    assert wecom.count("mark_tag") == 3
    clock.now += timedelta(hours=1, minutes=5)
    assert sync.sync("p1").calls == 1  # nothing was left claimed: only lisi's write remains
    assert wecom.names("lisi", "wmC1") == wecom.names("zhangsan", "wmC1") == {"银卡"}
