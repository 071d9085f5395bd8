"""DynamoDB implementation of the ChangeLedger port, on the idempotency table (key `id`, TTL
attribute `expiration`): one item per applied CDC change, kept longer than anything can replay
it (the stream's retention). `id` = "cdc2#" + sha256 of the change key: a change key names the
row's primary key (a member number), which an erasure must not leave behind. Marks written
before that ("cdc#<change key>") are still honoured until they expire."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

KEY_PREFIX = "cdc2#"
LEGACY_KEY_PREFIX = "cdc#"  # expires within DEFAULT_RETENTION of the upgrade; then this can go
DEFAULT_RETENTION = timedelta(days=8)  # the CDC stream keeps records 7 days


class DynamoChangeLedger:
    def __init__(self, client: Any, table: str, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._db = client
        self._table = table
        self._retention_seconds = int(retention.total_seconds())

    def applied(self, change_key: str) -> bool:
        keys = [{"id": {"S": ledger_key(change_key)}}, {"id": {"S": LEGACY_KEY_PREFIX + change_key}}]
        for _ in range(8):
            answer = self._db.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": keys,
                        "ProjectionExpression": "#id",
                        "ExpressionAttributeNames": {"#id": "id"},
                        "ConsistentRead": True,
                    }
                }
            )
            if answer.get("Responses", {}).get(self._table):
                return True
            keys = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            if not keys:
                return False
        raise RuntimeError("the change ledger could not be read")

    def record(self, change_key: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "id": {"S": ledger_key(change_key)},
                "expiration": {"N": str(int(time.time()) + self._retention_seconds)},
            },
        )


def ledger_key(change_key: str) -> str:
    return KEY_PREFIX + hashlib.sha256(change_key.encode("utf-8")).hexdigest()
