"""Sending a transaction's records to Kinesis: PutRecords in batches within its limits,
retrying refused records with backoff until all are accepted or the bridge stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from scrm_sync.adapters.messaging import kinesis_batches
from scrm_sync.domain.cdc import StreamRecord

from .stopping import BridgeStopped

log = logging.getLogger(__name__)

MAX_PUT_DELAY_SECONDS = 5.0


def put_all_records(
    kinesis: Any, stream_name: str, entries: Sequence[StreamRecord], stop: threading.Event
) -> None:
    """PutRecords until every entry is accepted, retrying failed ones with backoff. Order across
    retries is not kept (as with DMS): the consumer does not depend on arrival order. Raises
    BridgeStopped when `stop` is set while waiting to retry."""
    for batch in kinesis_batches(entries):
        pending, attempt = batch, 0
        while pending:
            try:
                response = kinesis.put_records(
                    StreamName=stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in pending],
                )
                failed = [e for e, r in zip(pending, response["Records"], strict=True) if r.get("ErrorCode")]
                if failed:
                    codes = sorted({r["ErrorCode"] for r in response["Records"] if r.get("ErrorCode")})
                    log.warning(
                        "binlog bridge: %d of %d records refused (%s)", len(failed), len(pending), codes
                    )
                pending = failed
            except (ClientError, BotoCoreError) as exc:
                log.warning("binlog bridge: put_records to %s failed: %s", stream_name, exc)
            if pending:
                attempt += 1
                if stop.wait(min(0.1 * 2**attempt, MAX_PUT_DELAY_SECONDS)):
                    raise BridgeStopped
