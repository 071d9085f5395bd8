"""Field mappings never escape with OverflowError or InvalidOperation, and never produce a value
the store cannot hold: every such rule fails with MappingError (a ValueError) naming the rule,
never the value."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from scrm_sync.channels.payloads import loads
from scrm_sync.domain.mapping import FieldRule, MappingError, apply_rules, convert
from scrm_sync.domain.rules import load_rules

DOUYIN_DIGG = load_rules({}).mapping_for("douyin", "new_video_digg")


def rule(**spec):
    return FieldRule.model_validate(spec)


def test_a_digg_count_of_1e400_through_the_douyin_defaults_is_a_mapping_error():
    payload = loads(b'{"event": "new_video_digg", "content": {"digg_count": 1e400, "item_id": "v1"}}')
    for douyin_rule in DOUYIN_DIGG:  # int(Decimal("Infinity")) raised OverflowError here
        with pytest.raises(
            MappingError, match=f"content.digg_count -> {douyin_rule.target}: cannot apply int"
        ):
            convert(douyin_rule, payload["content"]["digg_count"])
    mapped = apply_rules(DOUYIN_DIGG, payload)
    assert mapped.attributes == {} and mapped.metrics == {}
    assert [e.split(":")[0] for e in mapped.errors] == [
        "content.digg_count -> interaction_index",
        "content.digg_count -> metrics.likes",
    ]


@pytest.mark.parametrize(
    ("spec", "value", "reason"),
    [
        ({"transform": "int"}, "many", "cannot apply int to str"),
        ({"transform": "int"}, float("nan"), "cannot apply int to float"),
        ({"transform": "float"}, {"a": 1}, "cannot apply float to dict"),
        ({"transform": "int"}, "1e300", "more than 38 significant digits"),  # an int of 301 digits
        ({"transform": "int"}, 10**39, "more than 38 significant digits"),
        ({"transform": "float"}, "1e400", "not finite"),
        ({"transform": "copy"}, float("inf"), "not finite"),
        ({"transform": "copy"}, -1e308, "out of range"),
        ({"transform": "copy"}, Decimal("1E-200"), "out of range"),
        ({"transform": "cents_to_yuan"}, "1e40", "cannot apply cents_to_yuan to str"),  # InvalidOperation
        ({"transform": "copy", "target": "metrics.likes"}, "lots", "cannot apply copy to str"),
        (
            {"transform": "copy", "target": "metrics.likes"},
            10**400,
            "cannot apply copy to int",
        ),  # OverflowError
        ({"transform": "copy", "target": "metrics.likes"}, 1e200, "out of range"),
        ({"transform": "copy"}, "x" * 4097, "longer than 4096"),
    ],
)
def test_unconvertible_or_unstorable_values_are_mapping_errors(spec, value, reason):
    field_rule = rule(source="content.n", **{"target": "score", **spec})
    with pytest.raises(MappingError, match=reason) as caught:
        convert(field_rule, value)
    assert str(caught.value).startswith(f"content.n -> {field_rule.target}: ")
    assert isinstance(caught.value, ValueError)
    mapped = apply_rules([field_rule], {"content": {"n": value}})
    assert mapped.errors == [str(caught.value)] and not mapped.attributes and not mapped.metrics


def test_a_join_is_converted_and_checked_like_any_rule():
    join = rule(sources=["a", "b"], target="name", transform="join")
    assert apply_rules([join], {"a": "王", "b": 7}).attributes == {"name": "王 7"}
    mapped = apply_rules([join], {"a": "x" * 4000, "b": "y" * 100})
    assert mapped.errors == ["a,b -> name: text is longer than 4096 characters"]


def test_storable_values_still_map_as_before():
    mapped = apply_rules(
        [
            rule(source="n", target="metrics.likes", transform="int"),
            rule(source="n", target="score", transform="float"),
            rule(source="d", target="price"),
        ],
        json.loads('{"n": "1280", "d": 0.1}'),
    )
    assert mapped.metrics == {"likes": 1280.0}
    assert mapped.attributes == {"score": 1280.0, "price": 0.1}
    assert not mapped.errors
