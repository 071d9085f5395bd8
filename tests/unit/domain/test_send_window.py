from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.send_window import SendWindow

WINDOW = SendWindow(limit=20, seconds=60, bucket_seconds=10)


def test_buckets_are_ten_second_slices_keyed_by_their_utc_start():
    now = datetime(2026, 11, 25, 2, 0, 17, 500000, tzinfo=UTC)
    bucket = WINDOW.bucket(now)
    assert WINDOW.key("robot#abc", bucket) == "robot#abc#2026-11-25T02:00:10Z"
    assert WINDOW.bucket(now + timedelta(seconds=2)) == bucket
    assert WINDOW.bucket(now + timedelta(seconds=3)) == bucket + 1
    assert list(WINDOW.earlier(bucket)) == list(range(bucket - 6, bucket))
    assert WINDOW.expires_at(bucket) > now.timestamp() + 60


def test_the_ceiling_is_the_limit_less_the_earlier_sends():
    assert WINDOW.ceiling([]) == 20
    assert WINDOW.ceiling([5, 10]) == 5
    assert WINDOW.ceiling([15, 10]) == -5


def test_an_invalid_window_is_refused():
    with pytest.raises(ValueError):
        SendWindow(limit=0)
    with pytest.raises(ValueError):
        SendWindow(seconds=10, bucket_seconds=20)


@given(
    seconds=st.integers(1, 300),
    bucket_seconds=st.integers(1, 300),
    start=st.floats(0, 10_000),
)
def test_any_interval_of_the_window_length_lies_in_a_bucket_and_its_earlier_ones(
    seconds, bucket_seconds, start
):
    """The guarantee behind 'at most `limit` in ANY interval of `seconds`'."""
    if bucket_seconds > seconds:
        return
    window = SendWindow(limit=1, seconds=seconds, bucket_seconds=bucket_seconds)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    first = window.bucket(base + timedelta(seconds=start))
    last = window.bucket(base + timedelta(seconds=start + seconds) - timedelta(microseconds=1))
    assert first in window.earlier(last) or first == last
