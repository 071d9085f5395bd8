"""Old versions of an object in a versioned bucket (the landing and archive buckets keep every
version): an erasure that rewrites or deletes an object must not leave the person's data in the
versions before it."""

from __future__ import annotations

from typing import Any


def purge_old_versions(s3: Any, bucket: str, key: str, keep_current: bool) -> int:
    """Delete every version of `key` but the current one (or all of them, and the delete
    markers, when `keep_current` is false); the number deleted."""
    doomed: list[dict[str, str]] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if entry["Key"] != key or (keep_current and entry.get("IsLatest")):
                continue
            doomed.append({"Key": key, "VersionId": entry["VersionId"]})
    for start in range(0, len(doomed), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
    return len(doomed)
