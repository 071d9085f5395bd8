"""Logs never carry a full phone number or a customer's name, whatever path wrote them: known
fields are erased by Powertools data masking, phones inside any text are shortened."""

from __future__ import annotations

import importlib.util
import json
import types
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.adapters.memory import InMemoryProfileRepository
from scrm_sync.domain.rules import load_rules
from scrm_sync.entrypoints.logging import mask_phones, pii_safe_logger
from scrm_sync.services.sync import ProfileSync

from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
PHONE = "13800138000"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call 13800138000 now", "call 138****8000 now"),
        ("+86 138 0013 8000", "138****8000"),
        ("008613800138000", "138****8000"),
        ("+14155550123", "+141****23"),
        ("trade 3912345678901234567", "trade 3912345678901234567"),  # ids are not phones
        ("phone=13800138000", "phone=138****8000"),
        ("手机13800138000，请回电", "手机138****8000，请回电"),
        ("tel:+8613800138000", "tel:138****8000"),
        ('{"mobile": "138-0013-8000"}', '{"mobile": "138****8000"}'),
        ("call 13800138000.", "call 138****8000."),
        # ids and numbers that merely contain a phone-shaped run of digits
        ("req c6af9ac6-7b61-11e6-9a41-18312344171b", "req c6af9ac6-7b61-11e6-9a41-18312344171b"),
        ("order-13800138000", "order-13800138000"),
        ("13800138000-b2", "13800138000-b2"),
        ("id_13800138000", "id_13800138000"),
        ("ratio 0.13800138000", "ratio 0.13800138000"),
        ("13800138000.5 yuan", "13800138000.5 yuan"),
    ],
)
def test_phones_in_text_are_shortened(text, masked):
    assert mask_phones(text) == masked


# -- property: whole tokens only --------------------------------------------------------------------
ISO_TIMESTAMPS = st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
IDS = st.one_of(
    st.uuids(version=4).map(str),
    st.uuids().map(lambda value: value.hex),
    st.binary(min_size=8, max_size=32).map(bytes.hex),  # digests, tokens, trace ids
    st.uuids(version=4).map(lambda value: f"p_{value.hex}"),  # profile ids
    ISO_TIMESTAMPS,
)
# text around a phone, without ASCII digits so it holds no phone of its own
PROSE = st.text(st.characters(blacklist_characters="0123456789"), max_size=20)
# what may stand between a phone and the text around it: never a letter, digit, "_", "-" or "."
SEPARATORS = st.sampled_from(
    [" ", "=", ":", '"', "'", ",", ";", "(", ")", "[", "]", "{", "}", "/", "，", "：", "\n"]
)
MOBILES = st.builds(
    lambda second, rest: f"1{second}{rest}",
    st.sampled_from("3456789"),
    st.text("0123456789", min_size=9, max_size=9),
)

HEX = st.text("0123456789abcdef", min_size=1, max_size=16)


@st.composite
def ids_with_a_phone_shaped_run(draw: st.DrawFn) -> str:
    """Ids whose digits happen to read as a mobile number: the masker's old failure."""
    mobile = draw(MOBILES)
    head, tail = draw(HEX), draw(HEX)
    segment = draw(st.sampled_from([mobile + tail[0], head[-1] + mobile]))  # 12 hex chars
    word = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8))
    return draw(
        st.sampled_from(
            [
                str(draw(st.uuids(version=4)))[:-12] + segment,  # a uuid4's last group
                f"{head}{mobile}{tail}",  # a hex id
                f"p_{head}{mobile}{tail}",  # a profile id
                f"{word}-{mobile}",  # hyphen-joined ids
                f"{mobile}-{word}",
                f"{word}_{mobile}",
            ]
        )
    )


@given(value=st.one_of(IDS, ids_with_a_phone_shaped_run()), before=PROSE, after=PROSE)
def test_ids_and_timestamps_pass_through_unchanged(value, before, after):
    assert mask_phones(value) == value
    assert mask_phones(f"{before} id={value} {after}") == f"{before} id={value} {after}"


@given(
    mobile=MOBILES,
    prefix=st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "86", "86 "]),
    grouping=st.sampled_from(["", " ", "-"]),
    before=PROSE,
    after=PROSE,
    left=SEPARATORS,
    right=SEPARATORS,
    neighbour=IDS,
)
def test_a_cn_mobile_between_separators_is_masked(
    mobile, prefix, grouping, before, after, left, right, neighbour
):
    written = prefix + grouping.join([mobile[:3], mobile[3:7], mobile[7:]])
    text = f"{before}{left}{written}{right}{after} {neighbour}"
    masked = mask_phones(text)
    assert masked == f"{before}{left}{mobile[:3]}****{mobile[7:]}{right}{after} {neighbour}"


def test_known_fields_are_erased_anywhere_in_the_record(capsys):
    logger = pii_safe_logger(service=f"pii-{uuid.uuid4().hex[:8]}", level="DEBUG")
    logger.info(
        "profile update",
        extra={"attributes": {"name": "王小明", "phone": PHONE, "level": "gold"}, "note": f"from {PHONE}"},
    )
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["attributes"] == {"name": "*****", "phone": "*****", "level": "gold"}
    assert record["note"] == "from 138****8000"
    assert PHONE not in line and "王小明" not in line


@pytest.fixture
def load_sync_handler(monkeypatch):
    """Imports functions/profile_sync/app.py afresh; call it inside the test, where capsys'
    stdout is the one Powertools binds the new service's logger to."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def load() -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(
            "sync_app_under_test", ROOT / "functions/profile_sync/app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


class LeakyRepository(InMemoryProfileRepository):
    """A storage error whose message quotes the identifier it was given (as real ones can)."""

    def owners(self, identifier_keys):
        raise RuntimeError(f"throttled while reading {list(identifier_keys)}")


def test_processing_an_event_with_a_phone_logs_no_full_phone(load_sync_handler, monkeypatch, capsys):
    sync_handler = load_sync_handler()
    rules = load_rules({})
    ok = ProfileSync(InMemoryProfileRepository(), lambda: rules)
    leaky = ProfileSync(LeakyRepository(), lambda: rules)
    event = {
        "event_id": "pos-1",
        "source": "pos",
        "type": "profile.updated",
        "occurred_at": "2026-11-01T09:30:00+08:00",
        "identifiers": [{"type": "phone", "value": PHONE}],
        "attributes": {"name": "王小明"},
    }
    records = [
        {
            "messageId": "m-1",
            "receiptHandle": "r",
            "body": json.dumps(event),
            "attributes": {},
            "eventSource": "aws:sqs",
        },
        {
            "messageId": "m-2",
            "receiptHandle": "r",
            "body": json.dumps({**event, "event_id": "pos-2", "occurred_at": "not a time " + PHONE}),
            "attributes": {},
            "eventSource": "aws:sqs",
        },
    ]
    for sync in (ok, leaky):
        monkeypatch.setattr(sync_handler, "sync", lambda sync=sync: sync)
        sync_handler.lambda_handler({"Records": records}, LambdaContext())
    output = capsys.readouterr()
    text = output.out + output.err
    assert "RuntimeError" in text or "throttled" in text  # the failures were logged...
    assert PHONE not in text and "+8613800138000" not in text  # ...without the phone
    assert "王小明" not in text
