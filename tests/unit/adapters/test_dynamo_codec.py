"""The codec's own serializer writes exactly what boto3's TypeSerializer writes, for any value the
sync stores (text, numbers, booleans, null, nested maps and lists)."""

from decimal import Decimal

from boto3.dynamodb.types import TypeSerializer
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.adapters.dynamo_codec import _dynamo_safe, from_item, to_attr, to_item

numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: abs(f) < 1e100),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20),
)
scalars = st.one_of(st.text(max_size=20), st.booleans(), st.none(), numbers)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=20,
)


def boto3_attr(value):
    try:
        return dict(TypeSerializer().serialize(_dynamo_safe(value)))
    except Exception as exc:  # the same refusal is expected from both
        return type(exc)


def ours(value):
    try:
        return to_attr(value)
    except Exception as exc:
        return type(exc)


@given(values)
def test_the_same_attribute_values_as_boto3(value):
    assert ours(value) == boto3_attr(value)


def test_an_item_round_trips():
    item = {
        "pk": "p_1",
        "n": 7,
        "big": 10**37,
        "price": Decimal("9.90"),
        "tags": ["a", None, True],
        "m": {"x": 1.5},
    }
    assert from_item(to_item(item)) == {**item, "price": 9.9}
