"""One parser for the rules and channels documents: every problem with its field path, and an
exception text that names fields and error kinds only (it ends up in logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrm_sync.domain.config_documents import CHANNELS, RULES, InvalidDocument

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("document", "path"),
    [(RULES, "config/rules.dev.json"), (CHANNELS, "config/channels.dev.json")],
)
def test_the_shipped_dev_documents_are_valid(document, path):
    document.parse((ROOT / path).read_text(encoding="utf-8"))


def test_an_empty_object_means_the_defaults():
    assert RULES.parse("{}").max_links("phone") == 5


def test_every_problem_is_listed_with_its_field_path():
    text = json.dumps(
        {
            "max_identifiers_per_type": "lots",
            "source_rank": {"mdm": 100, "pos": 123456},
            "default_rank": -1,
            "mappings": {"douyin": {"digg": [{"source": "a"}]}},
        }
    )
    with pytest.raises(InvalidDocument) as raised:
        RULES.parse(text)
    problems = {p.path: p for p in raised.value.problems}
    assert set(problems) >= {"max_identifiers_per_type", "source_rank", "default_rank"}
    assert any(path.startswith("mappings.douyin.digg.0") for path in problems)
    assert problems["max_identifiers_per_type"].kind == "dict_type"
    assert str(problems["default_rank"]) == "default_rank: Input should be greater than or equal to 0"


def test_the_exception_text_names_fields_and_kinds_never_values():
    secret = "corp-secret-do-not-log"
    with pytest.raises(InvalidDocument) as raised:
        CHANNELS.parse(json.dumps({"wecom": secret, "api": {"keys": {"ops": [secret]}}}))
    text = str(raised.value)
    assert text == "invalid channels document (wecom: model_type; api.keys.ops: string_type)"
    assert secret not in text and secret not in " ".join(map(str, raised.value.problems))
    assert raised.value.__suppress_context__  # pydantic's error (which quotes inputs) is not chained


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("{not json", "json_invalid", "not valid JSON"),
        ("", "json_invalid", "not valid JSON"),
        ("[" * 100_000, "json_invalid", "not valid JSON"),
        ("[]", "not_an_object", "not an array"),
        ("null", "not_an_object", "not null"),
        ('"rules"', "not_an_object", "not a string"),
    ],
)
def test_text_that_is_not_a_json_object_is_one_problem_about_the_whole_document(text, kind, message):
    with pytest.raises(InvalidDocument) as raised:
        RULES.parse(text)
    (problem,) = raised.value.problems
    assert (problem.path, problem.kind) == ("", kind)
    assert message in problem.message and str(problem).startswith("(document): ")


def test_metric_names_match_the_template_alarms():
    assert (RULES.invalid_metric, CHANNELS.invalid_metric) == ("RulesInvalid", "ChannelsInvalid")
