"""A local stand-in for an Amazon Data Firehose delivery stream with a Kinesis stream as source
and S3 as destination.

moto's firehose keeps the configuration but does not read the source stream, buffer, evaluate
`!{timestamp:...}` prefixes or compress (it writes each PutRecord straight to S3 under
YYYY/MM/DD/HH/), so the local stack runs this instead, with AWS's behaviour:

- reads the stream with iterators of its own (a consumer beside the Lambda event source), from
  TRIM_HORIZON;
- buffers records until BufferingHints.SizeInMBs or IntervalInSeconds, whichever comes first;
  the interval is capped at MAX_LOCAL_INTERVAL (1 s) locally so tests and `make run` see
  objects quickly (AWS: the template's interval, 0-900 s);
- writes one object per flush: the records' bytes concatenated as they are (the producer ends
  each record with a newline), GZIP'd when CompressionFormat is GZIP (with a `.gz` suffix), named
  `<prefix><stream name>-1-YYYY-MM-DD-HH-MM-SS-<random>` with the prefix's `!{timestamp:...}`
  evaluated on the approximate arrival time of the oldest record in the object;
- a failed S3 write keeps the buffer and is retried (AWS retries for up to 24 h).

It reports its buffered and unread records as backlog, so /healthz drains only once every
accepted push is landed.
"""

from __future__ import annotations

import base64
import gzip
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .aws import Clients
from .pollers import Poller
from .stream_poller import PROBE_LIMIT, KinesisReader
from .template import DeliveryStreamSpec

log = logging.getLogger(__name__)

MAX_LOCAL_INTERVAL = 1.0
READ_LIMIT = 10_000  # GetRecords' maximum
_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
# Java DateTimeFormatter letters Firehose prefixes use, as strftime directives
_DATE_PATTERN = re.compile(r"yyyy|MM|dd|HH|mm|ss")
_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def evaluate_prefix(prefix: str, at: datetime, error_output_type: str = "processing-failed") -> str:
    """A Firehose S3 prefix with its `!{timestamp:...}` and `!{firehose:...}` expressions evaluated."""

    def one(match: re.Match[str]) -> str:
        namespace, value = match.group(1), match.group(2)
        if namespace == "timestamp":
            return at.strftime(_DATE_PATTERN.sub(lambda m: _STRFTIME[m.group(0)], value))
        if namespace == "firehose" and value == "random-string":
            return uuid.uuid4().hex[:11]
        if namespace == "firehose" and value == "error-output-type":
            return error_output_type
        raise ValueError(f"prefix expression {match.group(0)} is not supported locally")

    return _EXPRESSION.sub(one, prefix)


def object_key(spec: DeliveryStreamSpec, oldest_arrival: datetime) -> str:
    if spec.prefix:
        prefix = evaluate_prefix(spec.prefix, oldest_arrival)
    else:
        prefix = oldest_arrival.strftime("%Y/%m/%d/%H/")  # Firehose's default prefix
    suffix = ".gz" if spec.compression == "GZIP" else ""
    stamp = oldest_arrival.strftime("%Y-%m-%d-%H-%M-%S")
    return f"{prefix}{spec.name}-1-{stamp}-{uuid.uuid4()}{suffix}"


@dataclass
class _Buffer:
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    oldest_arrival: float = 0.0
    first_buffered: float = 0.0  # monotonic


class FirehosePoller(Poller):
    def __init__(self, spec: DeliveryStreamSpec, clients: Clients) -> None:
        super().__init__(f"{spec.logical_id}(firehose)", spec.logical_id, _no_invoke)
        self.spec = spec
        self.clients = clients
        self.reader: KinesisReader | None = None
        self.iterators: dict[str, str | None] = {}
        self.buffer = _Buffer()
        self.interval = min(spec.interval_seconds, MAX_LOCAL_INTERVAL)
        self.objects_written = 0

    def setup(self) -> None:
        reader = KinesisReader(self.clients, self.spec.stream_arn)
        self.iterators = {shard: reader.iterator(shard, "TRIM_HORIZON", None) for shard in reader.shards()}
        self.reader = reader

    def poll_once(self) -> bool:
        assert self.reader is not None
        read = 0
        for shard, iterator in list(self.iterators.items()):
            if iterator is None:
                continue
            records, self.iterators[shard] = self.reader.read(shard, iterator, READ_LIMIT)
            for record in records:
                self._add(record["kinesis"])
            read += len(records)
        due = self.buffer.records and (
            self.buffer.size >= self.spec.size_bytes
            or time.monotonic() - self.buffer.first_buffered >= self.interval
        )
        if due:
            self._flush()
        return read > 0 or bool(due)

    def _add(self, kinesis: dict[str, Any]) -> None:
        data = base64.b64decode(kinesis["data"])
        if not self.buffer.records:
            self.buffer.first_buffered = time.monotonic()
            self.buffer.oldest_arrival = float(kinesis["approximateArrivalTimestamp"])
        self.buffer.records.append(data)
        self.buffer.size += len(data)

    def _flush(self) -> None:
        body = b"".join(self.buffer.records)
        if self.spec.compression == "GZIP":
            body = gzip.compress(body)
        key = object_key(self.spec, datetime.fromtimestamp(self.buffer.oldest_arrival, UTC))
        try:
            self.clients("s3").put_object(Bucket=self.spec.bucket, Key=key, Body=body)
        except Exception:
            log.exception("%s: writing %s failed; retrying with the next poll", self.name, key)
            return
        log.debug("%s: %d records -> s3://%s/%s", self.name, len(self.buffer.records), self.spec.bucket, key)
        self.objects_written += 1
        self.buffer = _Buffer()

    def backlog(self) -> int:
        if self.reader is None:
            return 0
        total = len(self.buffer.records)
        for shard, iterator in list(self.iterators.items()):
            if iterator:
                unread, _ = self.reader.read(shard, iterator, PROBE_LIMIT)
                total += len(unread)
        return total


def _no_invoke(function_id: str, event: Any) -> Any:
    raise RuntimeError("a delivery stream invokes no function")
