"""Untrusted JSON bodies: nesting measured before parsing (never a RecursionError), NaN and
Infinity refused, every failure an UnreadableJson (the handlers' 400)."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.storable import MAX_JSON_DEPTH
from scrm_sync.domain.untrusted_json import UnreadableJson, nesting_depth, parse_json


def nested(depth: int) -> str:
    return (
        '{"a":' * (depth // 2)
        + "[" * (depth - depth // 2)
        + "1"
        + "]" * (depth - depth // 2)
        + "}" * (depth // 2)
    )


def test_nesting_up_to_the_cap_is_parsed_and_one_more_level_is_refused():
    assert nesting_depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH
    assert parse_json(nested(MAX_JSON_DEPTH).encode()) == json.loads(nested(MAX_JSON_DEPTH))
    with pytest.raises(UnreadableJson, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_json(nested(MAX_JSON_DEPTH + 1).encode())


def test_a_body_deeper_than_the_interpreter_can_recurse_is_refused_not_crashed():
    with pytest.raises(UnreadableJson, match="nested deeper"):
        parse_json(("[" * 100_000 + "]" * 100_000).encode())
    with pytest.raises(UnreadableJson, match="nested deeper"):
        parse_json(b'{"events": ' + b"[" * 5_000)  # unterminated as well


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[[[[{{{{", "b": ['"]]]]', "\\[", {"c": "\\\\"}]})
    assert nesting_depth(text) == 3
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal):
    with pytest.raises(UnreadableJson, match=f"{literal} is not a JSON number"):
        parse_json(f'{{"points": {literal}}}'.encode())


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"\xff\xfe\xfa", b'{"a": 1}}', b"1" * 5000, b'"\\ud800', "\ufeff".encode() + b"[1,"],
)
def test_unreadable_bodies(body):
    with pytest.raises(UnreadableJson):
        parse_json(body)


def test_encodings_json_loads_accepts_still_work():
    assert parse_json('{"名": "王"}'.encode("utf-16")) == {"名": "王"}
    assert parse_json("\ufeff[1]".encode()) == [1]
    assert parse_json('"\\ud800"') == "\ud800"  # an unpaired escape is JSON; the model refuses it


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=30,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@given(json_values)
def test_the_measured_depth_is_the_real_depth(value):
    assert nesting_depth(json.dumps(value)) == depth_of(value)
    assert nesting_depth(json.dumps(value, ensure_ascii=False)) == depth_of(value)


@given(
    st.one_of(st.binary(max_size=300), st.text(alphabet='[]{}"\\,:1aeE-.tn ', max_size=300).map(str.encode))
)
def test_any_bytes_give_a_value_or_unreadable_json(body):
    with contextlib.suppress(UnreadableJson):  # anything else (RecursionError...) fails the test
        parse_json(body)


@pytest.mark.parametrize("literal", ["0.1", "1.50", "-12345.678", "1e-130", "9.999999999999998e125", "1E+2"])
@pytest.mark.parametrize("exact_numbers", [False, True])
def test_numbers_a_float_holds_exactly_are_read_as_floats(literal: str, exact_numbers: bool) -> None:
    assert parse_json(f'{{"n": {literal}}}', exact_numbers=exact_numbers) == {"n": float(literal)}


@pytest.mark.parametrize(
    "literal", ["3.14159265358979323846", "0.10000000000000000001", "1.0000000000000000001e10"]
)
def test_a_number_a_float_would_round_stays_exact_for_the_model_to_refuse(literal: str) -> None:
    assert parse_json(f'{{"n": {literal}}}', exact_numbers=True) == {"n": Decimal(literal)}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_no_float_holds_reach_the_storage_contract_when_numbers_are_exact(literal: str) -> None:
    (value,) = parse_json(f"[{literal}]", exact_numbers=True)
    assert isinstance(value, Decimal) and str(value) == str(Decimal(literal))
