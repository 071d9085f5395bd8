import pytest
from scrm_sync.domain.shared_credentials import (
    DEFAULT_LIFETIME_SECONDS,
    MIN_REMAINING_SECONDS,
    REFRESH_MARGIN_SECONDS,
    CachedCredential,
    Step,
    expiry,
    next_step,
)

EXPIRES = 10_000.0
CACHED = CachedCredential("ticket-1", EXPIRES)
FRESH = EXPIRES - REFRESH_MARGIN_SECONDS - 1  # before the refresh margin
DUE = EXPIRES - REFRESH_MARGIN_SECONDS  # inside the margin, still plenty of life
NEARLY_GONE = EXPIRES - MIN_REMAINING_SECONDS  # too little life left to hand out


@pytest.mark.parametrize(
    ("cached", "now", "elsewhere", "rejected", "step"),
    [
        (None, FRESH, False, None, Step.REFRESH),
        (None, FRESH, True, None, Step.WAIT),
        (CACHED, FRESH, False, None, Step.USE),
        (CACHED, FRESH, True, None, Step.USE),
        (CACHED, DUE, False, None, Step.REFRESH),
        (CACHED, DUE, True, None, Step.USE),  # somebody refreshes; the old one still has life
        (CACHED, NEARLY_GONE, True, None, Step.WAIT),
        (CACHED, NEARLY_GONE, False, None, Step.REFRESH),
        (CACHED, EXPIRES + 1, True, None, Step.WAIT),
        (CACHED, FRESH, False, "ticket-1", Step.REFRESH),  # WeCom refused exactly this value
        (CACHED, FRESH, True, "ticket-1", Step.WAIT),
        (CACHED, FRESH, False, "ticket-0", Step.USE),  # refused value already replaced elsewhere
    ],
)
def test_next_step(cached, now, elsewhere, rejected, step):
    assert next_step(cached, now, elsewhere, rejected) is step


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (7200, 7200),
        (60, 60),
        (None, DEFAULT_LIFETIME_SECONDS),
        ("7200", DEFAULT_LIFETIME_SECONDS),
        (0, DEFAULT_LIFETIME_SECONDS),
        (-5, DEFAULT_LIFETIME_SECONDS),
        (True, DEFAULT_LIFETIME_SECONDS),
    ],
)
def test_expiry_counts_from_the_request(expires_in, lifetime):
    assert expiry(1000.0, expires_in) == 1000.0 + lifetime
