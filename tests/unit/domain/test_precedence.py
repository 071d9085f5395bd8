from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.precedence import precedence_key

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def key(rank, offset_s, source="pos", event_id="e1", write_once=False):
    return precedence_key(rank, T0 + timedelta(seconds=offset_s), source, event_id, write_once)


def test_higher_rank_wins_over_a_later_change():
    assert key(100, 0) > key(50, 3600)


def test_between_equal_ranks_the_later_change_wins():
    assert key(50, 10) > key(50, 9)


def test_write_once_fields_keep_the_earliest_value_among_equal_ranks():
    assert key(50, 9, write_once=True) > key(50, 10, write_once=True)


def test_write_once_fields_still_yield_to_a_higher_authority():
    assert key(100, 999, write_once=True) > key(50, 0, write_once=True)


def test_ties_break_on_event_id():
    assert key(50, 0, event_id="b") > key(50, 0, event_id="a")


def test_offsets_compare_by_instant_not_by_wall_clock_text():
    shanghai = datetime(2026, 11, 1, 9, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert precedence_key(1, shanghai, "s", "e", False) == precedence_key(
        1, datetime(2026, 11, 1, 9, 0, tzinfo=UTC), "s", "e", False
    )


@given(
    st.integers(0, 9999),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 9999),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.booleans(),
)
def test_key_order_is_rank_then_time(rank_a, time_a, rank_b, time_b, write_once):
    a = precedence_key(rank_a, time_a, "s", "e", write_once)
    b = precedence_key(rank_b, time_b, "s", "e", write_once)
    if rank_a != rank_b:
        assert (a > b) == (rank_a > rank_b)
    elif time_a != time_b:
        later_wins = time_a > time_b
        assert (a > b) == (later_wins != write_once)
    else:
        assert a == b
