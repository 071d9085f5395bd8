"""What the raw-landing delivery stream (Firehose) does with the webhook stream's records, for tests
without a local stack: batches of records concatenated, GZIP'd, under `raw/webhooks/dt=DAY/`
(dated by the oldest record, as Firehose dates by its arrival)."""

from __future__ import annotations

import gzip
import json
from datetime import date

from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.services.push_records import batched_landing_prefix, landing_document
from scrm_sync.services.replay import request_from_landing
from scrm_sync.services.webhooks import landing_key


def deliver(
    stream: InMemoryPushStream, landing: InMemoryLanding, per_object: int = 2, day: date | None = None
) -> list[str]:
    """Write the stream's records as batched objects (`per_object` records each); returns their keys
    and empties the stream, as a delivery stream that has read them."""
    keys = []
    records = [data for data, _ in stream.records]
    for start in range(0, len(records), per_object):
        batch = records[start : start + per_object]
        oldest = day or date.fromisoformat(json.loads(batch[0])["received_at"][:10])
        key = f"{batched_landing_prefix(oldest)}scrm-RawLandingDeliveryStream-1-{start:04d}.gz"
        landing.put(key, gzip.compress(b"".join(batch)), {})
        keys.append(key)
    stream.records.clear()
    return keys


def land_one_object_per_push(stream: InMemoryPushStream, landing: InMemoryLanding) -> list[str]:
    """The layout landing buckets have from before the delivery stream: one object per push under
    `raw/webhooks/{channel}/dt=DAY/` (records of pushes landed on their own are skipped)."""
    keys = []
    for document in stream.documents:
        if "landed_at" in document:
            continue
        request = request_from_landing(document)
        key = landing_key("raw", request)
        landing.put(key, landing_document(request), {})
        keys.append(key)
    stream.records.clear()
    return keys
