"""The archive bucket (ArchiveStore): objects uploaded with their SHA-256, which S3 checks on
arrival and keeps, so a HEAD tells whether the object now at a key is the one that was written
without downloading it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from ..services.ports import StoredObject
from .s3_versions import purge_old_versions

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


class S3ArchiveStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, sha256: str, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),  # S3 rejects other bytes
            ServerSideEncryption="AES256",
        )

    def head(self, key: str) -> StoredObject | None:
        try:
            response = self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        checksum = response.get("ChecksumSHA256")
        # a multipart upload's checksum is of its parts ("<b64>-<n>"); ours are single PUTs
        sha256 = base64.b64decode(checksum).hex() if checksum and "-" not in checksum else None
        return StoredObject(size=int(response["ContentLength"]), sha256=sha256)

    def get(self, key: str) -> bytes | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return body

    def purge_old_versions(self, key: str) -> None:
        """An erasure rewrote this object: the versions before it (the person's) go too."""
        purge_old_versions(self._s3, self._bucket, key, keep_current=True)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]
