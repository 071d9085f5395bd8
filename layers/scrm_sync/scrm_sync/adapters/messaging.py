"""SQS ingest queue and S3 raw landing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
