"""SQS ingest queue, S3 raw landing, the webhook ingest stream and the CDC Kinesis stream."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.cdc import StreamRecord
from ..services.ports import StreamWriteFailed
from .batching import batches_within
from .s3_versions import purge_old_versions

SQS_BATCH = 10


class SqsEventQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, messages: Sequence[tuple[str, str]]) -> list[str]:
        failed: list[str] = []
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            response = self._sqs.send_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": message_id, "MessageBody": body} for message_id, body in chunk],
            )
            failed.extend(f["Id"] for f in response.get("Failed", []))
        return failed

    def defer(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again only after `seconds` (a retry with backoff)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


class S3RawLanding:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            Metadata={k: v for k, v in metadata.items() if v.isascii()},
            ServerSideEncryption="AES256",
        )

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body

    def keys_after(self, prefixes: Sequence[str], after: str) -> Iterator[str]:
        """Keys under these prefixes after `after`, in key order (S3 lists in UTF-8 binary order)."""
        for prefix in sorted(prefixes):
            paginator = self._s3.get_paginator("list_objects_v2")
            # past the prefix's last key, StartAfter lists nothing: the prefix is done
            start = {"StartAfter": after} if after > prefix else {}
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, **start):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def replace(self, key: str, body: bytes) -> None:
        """Rewrite an object for an erasure: the versions before it go too."""
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ServerSideEncryption="AES256")
        purge_old_versions(self._s3, self._bucket, key, keep_current=True)

    def delete(self, key: str) -> None:
        """Delete an object for an erasure: every version of it."""
        self._s3.delete_object(Bucket=self._bucket, Key=key)
        purge_old_versions(self._s3, self._bucket, key, keep_current=False)


class KinesisPushStream:
    """The webhook ingest stream: one PutRecord per push. Throttling is retried by botocore (the
    client's retry config, kept short on the ack path); whatever still fails raises
    StreamWriteFailed, and the webhook answers 503 so the platform retries the push."""

    def __init__(self, client: Any, stream_name: str) -> None:
        self._kinesis = client
        self._stream = stream_name

    def put(self, data: bytes, partition_key: str) -> None:
        try:
            self._kinesis.put_record(StreamName=self._stream, Data=data, PartitionKey=partition_key[:256])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise StreamWriteFailed(f"PutRecord to {self._stream} failed: {code}") from exc
        except BotoCoreError as exc:  # no connection to the stream
            raise StreamWriteFailed(f"PutRecord to {self._stream} failed: {type(exc).__name__}") from exc


KINESIS_MAX_RECORDS = 500  # per PutRecords request
KINESIS_MAX_REQUEST_BYTES = 5 * 1024 * 1024  # data and partition keys of one request
KINESIS_MAX_RECORD_BYTES = 1024 * 1024  # one record's data and partition key


class KinesisChangeStream:
    """Row changes onto the CDC stream in DMS format (the incremental pull writes here, so pulled
    rows take the path of binlog changes). PutRecords is not atomic: the entries it reports failed
    (throttled) are retried with exponential backoff and jitter; if some still fail, the whole
    `put` raises StreamWriteFailed and the caller keeps its watermark. A retried entry can land
    after later entries of its request, which is harmless here: a request never holds two
    changes of one row (partition key)."""

    def __init__(
        self,
        client: Any,
        stream_name: str,
        max_attempts: int = 6,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._kinesis = client
        self._stream = stream_name
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    def put(self, records: Sequence[StreamRecord]) -> None:
        for batch in kinesis_batches(records):
            self._put_batch(batch)

    def _put_batch(self, batch: list[StreamRecord]) -> None:
        pending = batch
        error = ""
        for attempt in range(self._max_attempts):
            if attempt:
                delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                self._sleep(delay * (0.5 + random.random() / 2))
            try:
                response = self._kinesis.put_records(
                    StreamName=self._stream,
                    Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in pending],
                )
            except ClientError as exc:  # botocore already retried what it could
                raise StreamWriteFailed(
                    f"PutRecords to {self._stream} failed: {exc.response.get('Error', {}).get('Code')}"
                ) from exc
            except BotoCoreError as exc:  # no connection to the stream
                raise StreamWriteFailed(f"PutRecords to {self._stream} failed: {type(exc).__name__}") from exc
            if not response.get("FailedRecordCount"):
                return
            results = response["Records"]
            error = next((str(r["ErrorCode"]) for r in results if r.get("ErrorCode")), error)
            pending = [
                record for record, result in zip(pending, results, strict=True) if result.get("ErrorCode")
            ]
        raise StreamWriteFailed(
            f"{len(pending)} of {len(batch)} records not written to {self._stream} after "
            f"{self._max_attempts} attempts (last error {error})"
        )


def kinesis_batches(records: Sequence[StreamRecord]) -> Iterator[list[StreamRecord]]:
    """Consecutive batches within PutRecords' count and size limits; a record over Kinesis'
    1 MB limit can never be written and raises StreamWriteFailed."""
    sizes = [len(record.data) + len(record.partition_key.encode()) for record in records]
    for record, size in zip(records, sizes, strict=True):
        if size > KINESIS_MAX_RECORD_BYTES:
            raise StreamWriteFailed(
                f"a record of {size} bytes exceeds the Kinesis limit "
                f"(partition key {record.partition_key[:64]!r})"
            )
    for batch in batches_within(sizes, KINESIS_MAX_RECORDS, KINESIS_MAX_REQUEST_BYTES):
        yield [records[index] for index in batch]
