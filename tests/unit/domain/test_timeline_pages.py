"""Timeline pages across merged profiles: whatever the entries and the page size, walking the
cursor returns every entry exactly once, newest first."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.timeline import InvalidCursor, decode_cursor, encode_cursor, timeline_page_of

sort_keys = st.builds(
    lambda day, hour, n: f"2026-11-{day:02d}T{hour:02d}:00:00+00:00#order#tmall#e{n}",
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 10_000),
)


def read_all(stored: dict[str, dict[str, dict]], size: int) -> list[str]:
    """What a client sees walking the cursor, with each profile read like the DynamoDB adapter
    does (at most size + 1 entries per profile, strictly before the cursor)."""
    seen: list[str] = []
    before = None
    for _ in range(1000):
        by_key: dict[str, dict] = {}
        more = False
        for entries in stored.values():
            older = sorted((k for k in entries if before is None or k < before), reverse=True)[: size + 1]
            more = more or len(older) > size
            for key in older:
                by_key.setdefault(key, {**entries[key], "sk": key, "profile_id": "p"})
        page, before = timeline_page_of(by_key, size, more)
        seen += [entry["event_id"] for entry in page]
        before = decode_cursor(encode_cursor(before))
        if before is None:
            return seen
    raise AssertionError("the cursor never ended")


@given(
    profiles=st.lists(st.sets(sort_keys, max_size=30), min_size=1, max_size=4),
    size=st.integers(1, 12),
)
def test_walking_the_cursor_returns_every_entry_once_newest_first(profiles, size):
    stored = {f"p{i}": {key: {"event_id": key} for key in keys} for i, keys in enumerate(profiles)}
    everything = sorted({key for keys in profiles for key in keys}, reverse=True)
    assert read_all(stored, size) == everything


def test_entries_do_not_show_their_storage_keys():
    page, before = timeline_page_of({"k#1": {"sk": "k#1", "profile_id": "p", "kind": "order"}}, 5, False)
    assert page == [{"kind": "order"}] and before is None


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "aGVsbG8", "x" * 2000, "%%%"])
def test_a_cursor_this_api_did_not_make_is_refused(cursor):
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
