"""A sliding send window shared by concurrent senders: at most `limit` sends in ANY interval of
`seconds` (not just per calendar minute), kept as counters in fixed buckets.

Why buckets and a look-back instead of one counter per UTC minute: a per-minute counter allows
20 sends at 12:00:59 and 20 more at 12:01:00, 40 within two seconds, which a rolling limit on the
receiving side (the WeCom robot answers errcode 45009) refuses. Here a send in bucket `b` is
allowed only while the sends of `b` and of the buckets that can share a `seconds`-long interval
with it (`ceil(seconds / bucket_seconds)` earlier ones) stay within the limit. Earlier buckets are
closed (nobody writes to them any more), so a sender reads them and then increments the current
bucket with one condition (`sent < ceiling`): concurrent senders cannot overshoot together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class SendWindow:
    limit: int = 20
    seconds: int = 60
    bucket_seconds: int = 10

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds < 1 or not 1 <= self.bucket_seconds <= self.seconds:
            raise ValueError("need limit >= 1 and 1 <= bucket_seconds <= seconds")

    def bucket(self, now: datetime) -> int:
        """The bucket `now` falls in (buckets count from the epoch, in UTC)."""
        return math.floor(now.timestamp() / self.bucket_seconds)

    def earlier(self, bucket: int) -> range:
        """The closed buckets whose sends share some `seconds`-long interval with `bucket`."""
        return range(bucket - math.ceil(self.seconds / self.bucket_seconds), bucket)

    def key(self, scope: str, bucket: int) -> str:
        """`<scope>#<bucket start in UTC>`, e.g. `robot#3f2a9c0d41b7e611#2026-11-25T02:00:10Z`."""
        start = datetime.fromtimestamp(bucket * self.bucket_seconds, UTC)
        return f"{scope}#{start:%Y-%m-%dT%H:%M:%SZ}"

    def expires_at(self, bucket: int) -> int:
        """Epoch seconds after which the bucket's counter no longer matters (DynamoDB TTL)."""
        return (bucket + 1) * self.bucket_seconds + self.seconds + self.bucket_seconds

    def ceiling(self, earlier_counts: Iterable[int]) -> int:
        """How many sends the current bucket may hold, given the sends of the earlier buckets."""
        return self.limit - sum(earlier_counts)
