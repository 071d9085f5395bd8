"""The storage contract (domain/storable.py) at its boundaries, and its promise: whatever it
accepts, the repository's codec writes as a DynamoDB number without Inexact, Rounded, Overflow
or Underflow (boto3's TypeSerializer traps all of them)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.adapters.dynamo_codec import from_item, to_attr
from scrm_sync.domain.storable import (
    MAX_DIGITS,
    MAX_MAGNITUDE,
    MAX_TEXT_CHARS,
    NotStorable,
    check_number,
    check_scalar,
    stored_decimal,
)

THIRTY_EIGHT_NINES = int("9" * 38)


def storable(value: object) -> bool:
    try:
        check_scalar(value)
    except NotStorable:
        return False
    return True


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (THIRTY_EIGHT_NINES, True),
        (-THIRTY_EIGHT_NINES, True),
        (THIRTY_EIGHT_NINES + 1, False),  # 39 digits
        (10**39 + 1, False),
        (Decimal("1." + "2" * 37), True),
        (Decimal("1." + "2" * 38), False),
        (Decimal("1.0000000000000000000000000000000000000000"), False),  # boto3 would round it
        (Decimal("1E-130"), True),
        (Decimal("-1E-130"), True),
        (Decimal("1E-131"), False),
        (Decimal("-1E-131"), False),
        (MAX_MAGNITUDE, True),
        (MAX_MAGNITUDE.copy_negate(), True),  # exact: unary minus rounds to 28 digits
        (Decimal("1E+126"), False),
        (Decimal("-1E+126"), False),
        (Decimal("1.2345678901234567890123456789012345E-130"), True),  # last digit at 1E-164
        (Decimal("1.234567890123456789012345678901234567E-130"), False),  # last digit at 1E-166
        (0, True),
        (Decimal("0E-165"), True),
        (Decimal("0E-166"), False),  # boto3 keeps a zero's exponent
        (Decimal("0E+125"), True),
        (Decimal("0E+200"), False),
        (0.0, True),
        (-0.0, True),
        (0.1, True),
        (1e-5, True),
        (1e-130, True),
        (1.5e-129, True),
        (1e-131, False),
        (math.nextafter(1e126, 0), True),  # the largest float below 1E+126
        (1e126, False),
        (-1e308, False),
        (float("inf"), False),
        (float("-inf"), False),
        (float("nan"), False),
        (Decimal("NaN"), False),
        (Decimal("Infinity"), False),
    ],
)
def test_numbers_at_the_boundaries(value, ok):
    assert storable(value) is ok


def test_refusals_say_why_without_the_value():
    with pytest.raises(NotStorable, match=f"more than {MAX_DIGITS} significant digits") as caught:
        check_number(10**39 + 7)
    assert "7" not in str(caught.value)
    with pytest.raises(NotStorable, match="not finite"):
        check_number(float("nan"))
    with pytest.raises(NotStorable, match="out of range"):
        check_number(-1e308)


def test_text_bools_and_none():
    assert storable("x" * MAX_TEXT_CHARS) and not storable("x" * (MAX_TEXT_CHARS + 1))
    assert storable(True) and storable(None) and storable("")


def test_a_float_is_stored_as_its_shortest_decimal():
    assert stored_decimal(0.1) == Decimal("0.1")
    assert stored_decimal(1e-5) == Decimal("0.00001")
    assert to_attr(0.1) == {"N": "0.1"}


numbers = st.one_of(
    st.integers(min_value=-(10**45), max_value=10**45),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=42),
        st.integers(-175, 130),
        st.booleans(),
    ),
)


@given(numbers)
def test_every_accepted_number_is_written_and_read_back_unchanged(number):
    try:
        check_number(number)
    except NotStorable:
        return
    attr = to_attr(number)  # boto3's TypeSerializer, as the repository calls it: must not raise
    back = from_item({"v": attr})["v"]
    assert Decimal(attr["N"]) == stored_decimal(number)
    if isinstance(number, float):  # read back as the number it means (an integral one as an int)
        assert float(back) == number
