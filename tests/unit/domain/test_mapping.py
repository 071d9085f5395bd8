import pytest
from pydantic import ValidationError
from scrm_sync.domain.mapping import FieldRule, apply_rules, detect_drift, observed_schema

DIGG = {"event": "new_video_digg", "content": {"digg_count": "1280", "item_id": "v1", "user": {"nick": "xm"}}}


def rules(*specs):
    return [FieldRule.model_validate(s) for s in specs]


def test_douyin_likes_land_in_the_interaction_index():
    mapped = apply_rules(
        rules(
            {"source": "content.digg_count", "target": "interaction_index", "transform": "int"},
            {"source": "content.digg_count", "target": "metrics.likes", "transform": "int"},
        ),
        DIGG,
    )
    assert mapped.attributes == {"interaction_index": 1280}
    assert mapped.metrics == {"likes": 1280.0}


def test_transforms():
    payload = {
        "a": {"fen": 35900, "level": "2", "first": "王", "last": "小明", "flag": "Y", "tags": ["x", "y"]}
    }
    mapped = apply_rules(
        rules(
            {"source": "a.fen", "target": "last_order_total", "transform": "cents_to_yuan"},
            {
                "source": "a.level",
                "target": "member_level",
                "transform": "enum",
                "enum": {"1": "silver", "2": "gold"},
            },
            {"sources": ["a.first", "a.last"], "target": "name", "transform": "join", "join_with": ""},
            {"source": "a.flag", "target": "subscribed", "transform": "bool"},
            {"source": "a.tags.1", "target": "second_tag"},
        ),
        payload,
    )
    assert mapped.attributes == {
        "last_order_total": "359.00",
        "member_level": "gold",
        "name": "王小明",
        "subscribed": True,
        "second_tag": "y",
    }


def test_missing_fields_and_bad_values_are_reported_not_raised():
    mapped = apply_rules(
        rules(
            {"source": "content.like_count", "target": "interaction_index", "transform": "int"},
            {"source": "content.item_id", "target": "last_video", "transform": "int"},
        ),
        DIGG,
    )
    assert mapped.attributes == {}
    assert mapped.missing == ["content.like_count"]
    assert mapped.errors and "content.item_id" in mapped.errors[0]


def test_rules_are_validated():
    with pytest.raises(ValidationError):
        FieldRule.model_validate({"source": "a", "target": "Not A Name"})
    with pytest.raises(ValidationError):
        FieldRule.model_validate({"target": "name", "transform": "join"})


def test_a_renamed_platform_field_is_drift_with_a_sensible_suggestion():
    known = observed_schema(DIGG)
    renamed = {
        "event": "new_video_digg",
        "content": {"digg_cnt": 1300, "item_id": "v1", "user": {"nick": "xm"}},
    }
    drift = detect_drift(known, observed_schema(renamed), ["content.digg_count"])
    assert drift.any
    assert drift.missing_mapped == ["content.digg_count"]
    assert drift.new_fields == {"content.digg_cnt": "number"}
    assert drift.suggestions[0].candidate_path == "content.digg_cnt"


def test_type_changes_are_drift_and_an_unchanged_payload_is_not():
    known = observed_schema({"a": {"n": 1, "s": "x"}})
    assert not detect_drift(known, observed_schema({"a": {"n": 2, "s": "y"}}), ["a.n"]).any
    assert detect_drift(known, observed_schema({"a": {"n": "2", "s": "y"}}), ["a.n"]).type_changes == {
        "a.n": ("number", "string")
    }


def test_rules_file_mappings_replace_the_shipped_defaults():
    from scrm_sync.domain.rules import load_rules

    default = load_rules({}).mapping_for("douyin", "new_video_digg")
    assert [r.target for r in default] == ["interaction_index", "metrics.likes"]
    custom = load_rules(
        {
            "mappings": {
                "douyin": {"new_video_digg": [{"source": "content.digg_cnt", "target": "interaction_index"}]}
            }
        }
    ).mapping_for("douyin", "new_video_digg")
    assert [r.source for r in custom] == ["content.digg_cnt"]
    assert load_rules({}).mapping_for("youzan", "trade_TradePaid") == ()
