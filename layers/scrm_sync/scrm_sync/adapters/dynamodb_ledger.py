"""DynamoDB implementation of the ChangeLedger port, on the idempotency table (key `id`, TTL
attribute `expiration`): one item per applied CDC change, `id` = "cdc#<change key>", kept longer
than anything can replay it (the stream's retention)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

KEY_PREFIX = "cdc#"
DEFAULT_RETENTION = timedelta(days=8)  # the CDC stream keeps records 7 days


class DynamoChangeLedger:
    def __init__(self, client: Any, table: str, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._db = client
        self._table = table
        self._retention_seconds = int(retention.total_seconds())

    def applied(self, change_key: str) -> bool:
        item = self._db.get_item(
            TableName=self._table,
            Key={"id": {"S": KEY_PREFIX + change_key}},
            ProjectionExpression="#id",
            ExpressionAttributeNames={"#id": "id"},
            ConsistentRead=True,
        ).get("Item")
        return item is not None

    def record(self, change_key: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "id": {"S": KEY_PREFIX + change_key},
                "expiration": {"N": str(int(time.time()) + self._retention_seconds)},
            },
        )
