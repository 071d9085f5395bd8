"""The functions' view of the rules parameter and the channels secret: a version that fails
validation never replaces the last valid one; it is logged by field (never by value) and
counted once per version in an EMF document, and a 0 is counted when a valid one is back."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from scrm_sync.adapters.config import LastValidDocument, NoValidConfiguration
from scrm_sync.domain.config_documents import CHANNELS, RULES

SECRET_PHONE = "13912345678"
GOOD = json.dumps({"default_rank": 42})
NEW_GOOD = json.dumps({"default_rank": 7})
BAD = json.dumps(
    {"default_rank": 43, "max_identifiers_per_type": "lots", "identifier_blocklist": SECRET_PHONE}
)
OTHER_BAD = json.dumps({"default_rank": "high"})


class StoredDocument:
    """The parameter: what a fetch returns now."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self) -> str:
        return self.text


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")


def counted(capsys: pytest.CaptureFixture[str], metric: str) -> list[float]:
    """The values of `metric` in the EMF documents written to stdout since the last call."""
    values: list[float] = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and metric in json.loads(line):
            document = json.loads(line)
            assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ScrmSyncTest"
            values += document[metric]
    return values


def test_an_invalid_version_keeps_the_last_valid_rules_until_a_valid_one_arrives(capsys, caplog):
    stored = StoredDocument(GOOD)
    rules = LastValidDocument(RULES, stored)
    assert rules().default_rank == 42
    assert counted(capsys, "RulesInvalid") == []  # a cold start with a valid document counts nothing
    stored.text = BAD
    with caplog.at_level(logging.ERROR):
        assert [rules().default_rank for _ in range(3)] == [42, 42, 42]
    assert counted(capsys, "RulesInvalid") == [1.0]
    stored.text = NEW_GOOD
    assert rules().default_rank == 7
    assert counted(capsys, "RulesInvalid") == [0.0]  # the alarm's way back to OK
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "max_identifiers_per_type: dict_type" in record.getMessage()
    assert "identifier_blocklist: dict_type" in record.getMessage()
    assert record.problems == ["identifier_blocklist: dict_type", "max_identifiers_per_type: dict_type"]


def test_each_distinct_bad_version_is_counted_and_logged_once(capsys, caplog):
    stored = StoredDocument(GOOD)
    rules = LastValidDocument(RULES, stored)
    rules()
    with caplog.at_level(logging.ERROR):
        for text in (BAD, BAD, BAD, OTHER_BAD, OTHER_BAD, BAD):
            stored.text = text
            assert rules().default_rank == 42
    assert counted(capsys, "RulesInvalid") == [1.0, 1.0, 1.0]  # BAD, OTHER_BAD, BAD put again
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 3
    stored.text = GOOD  # the valid document put back as it was
    assert rules().default_rank == 42
    assert rules().default_rank == 42
    assert counted(capsys, "RulesInvalid") == [0.0]


def test_no_value_of_a_rejected_document_reaches_the_log_or_stdout(capsys, caplog):
    stored = StoredDocument(json.dumps({"api": {"keys": {"ops": "k-1"}}}))
    credentials = LastValidDocument(CHANNELS, stored)
    assert credentials().api.caller_for("k-1") == "ops"
    leaked = "wecom-corp-secret-value"
    stored.text = json.dumps({"api": {"keys": {"ops": ["k-2"]}}, "wecom": leaked, "douyin": SECRET_PHONE})
    with caplog.at_level(logging.DEBUG):
        assert credentials().api.caller_for("k-1") == "ops"  # the last valid keys still work
    out = capsys.readouterr().out
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'problems', '')}" for r in caplog.records)
    assert "wecom: model_type" in logged and "api.keys.ops: string_type" in logged
    for value in (leaked, SECRET_PHONE, "k-2"):
        assert value not in logged and value not in out
    assert '"ChannelsInvalid":[1.0]' in out.replace(" ", "")


def test_a_cold_start_with_an_invalid_document_fails_reads_until_it_is_fixed(capsys, caplog):
    stored = StoredDocument(BAD)
    rules = LastValidDocument(RULES, stored)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            with pytest.raises(NoValidConfiguration) as raised:
                rules()
            assert SECRET_PHONE not in str(raised.value) and "lots" not in str(raised.value)
    assert counted(capsys, "RulesInvalid") == [1.0]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    stored.text = GOOD
    assert rules().default_rank == 42
    assert counted(capsys, "RulesInvalid") == [0.0]


@pytest.mark.parametrize("text", ["{not json", "[]", "null", "[" * 100_000, ""])
def test_text_that_is_not_a_json_object_is_rejected_like_any_invalid_document(text, capsys):
    stored = StoredDocument(GOOD)
    rules = LastValidDocument(RULES, stored)
    rules()
    stored.text = text
    assert rules().default_rank == 42
    assert counted(capsys, "RulesInvalid") == [1.0]


def test_concurrent_readers_count_a_bad_version_once(capsys):
    stored = StoredDocument(GOOD)
    rules = LastValidDocument(RULES, stored)
    rules()
    stored.text = BAD
    ranks: list[Any] = []
    threads = [threading.Thread(target=lambda: ranks.append(rules().default_rank)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ranks == [42] * 16
    assert counted(capsys, "RulesInvalid") == [1.0]
