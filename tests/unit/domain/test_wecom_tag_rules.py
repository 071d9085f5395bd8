"""Tag rules: which corp tags the attributes want, and the diff one mark_tag applies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.wecom_tags import CorpTag, TagRules, tag_diff, tag_relevant

RULES = TagRules.model_validate(
    {
        "rules": [
            {"attribute": "member_level", "group": "会员等级", "values": {"gold": "金卡", "silver": "银卡"}},
            {"attribute": "lifetime_value", "group": "客户价值", "at_least": 5000, "tag": "高价值"},
            {"attribute": "vip", "group": "客户价值", "equals": True, "tag": "VIP"},
        ]
    }
)
GOLD, SILVER, HIGH, VIP = (
    CorpTag("会员等级", "金卡"),
    CorpTag("会员等级", "银卡"),
    CorpTag("客户价值", "高价值"),
    CorpTag("客户价值", "VIP"),
)


def test_value_maps_thresholds_and_equalities():
    assert RULES.desired({"member_level": "gold", "lifetime_value": 5000, "vip": True}) == {GOLD, HIGH, VIP}
    assert RULES.desired({"member_level": "bronze", "lifetime_value": "4999.99", "vip": False}) == set()
    assert RULES.desired({"lifetime_value": "not a number"}) == set()
    assert RULES.managed() == {GOLD, SILVER, HIGH, VIP}
    assert RULES.groups() == {"会员等级": {"金卡", "银卡"}, "客户价值": {"高价值", "VIP"}}


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"attribute": "wecom_tags", "group": "g", "equals": "a", "tag": "t"}, "echo"),
        ({"attribute": "level", "group": "g" * 31, "values": {"a": "b"}}, "group"),
        ({"attribute": "level", "group": "g", "values": {"a": "t" * 31}}, "tag"),
        ({"attribute": "level", "group": "g", "at_least": 1}, "need the tag"),
        ({"attribute": "level", "group": "g", "values": {"a": "b"}, "at_least": 1}, "exactly one"),
    ],
)
def test_bad_rules_are_refused_naming_the_problem(rule, problem):
    with pytest.raises(ValidationError, match=problem):
        load_rules({"wecom_tags": {"rules": [rule]}})


def test_only_changes_that_can_move_a_tag_are_relevant():
    assert tag_relevant({"kinds": ["fields"], "fields": {"member_level": {}}}, RULES)
    assert tag_relevant({"kinds": ["fields"], "fields": {"wecom_follower_abc": {}}}, RULES)
    assert not tag_relevant({"kinds": ["fields"], "fields": {"wecom_tags": {}, "name": {}}}, RULES)
    assert tag_relevant({"kinds": ["merged"]}, RULES)
    added = {
        "kinds": ["identifiers"],
        "identifiers": {"added": [{"type": "wecom_external_userid"}], "removed": []},
    }
    assert tag_relevant(added, RULES)
    assert not tag_relevant({"kinds": ["identifiers"], "identifiers": {"added": [{"type": "phone"}]}}, RULES)


def test_the_diff_adds_and_removes_together_and_only_managed_tags_this_system_wrote():
    diff = tag_diff({GOLD, HIGH}, {SILVER, HIGH})
    assert diff.add == {GOLD} and diff.remove == {SILVER}
    assert not tag_diff({GOLD}, {GOLD})


tags = st.frozensets(st.sampled_from([GOLD, SILVER, HIGH, VIP]))


@given(desired=tags, written=tags, pending=tags, applied=st.booleans())
def test_after_an_unconfirmed_write_the_next_diff_still_lands_on_the_desired_tags(
    desired, written, pending, applied
):
    """Whether or not the unconfirmed write reached WeCom, applying the next diff to what the
    contact then carries leaves exactly the desired managed tags."""
    on_contact = pending if applied else written
    diff = tag_diff(desired, written, pending)
    assert (on_contact - diff.remove) | diff.add == desired
    assert not diff.add & diff.remove
