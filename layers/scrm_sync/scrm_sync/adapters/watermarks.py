"""Incremental-pull watermarks in the checkpoints table (pk = "pull#schema.table").

Each advance is a conditional update on a version counter, so two overlapping runs cannot move a
watermark inconsistently: the one that read an older version loses with WatermarkConflict.
An erasure rewinds a watermark whose position names the person's row (`rewind_naming`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from ..domain.incremental_pull import Watermark
from ..domain.profile import utc_now_text
from ..services.ports import StoredWatermark, WatermarkConflict

KEY_PREFIX = "pull#"


class DynamoWatermarkStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def load(self, table: str) -> StoredWatermark | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": KEY_PREFIX + table}}, ConsistentRead=True
        ).get("Item")
        if not item or "last_modified" not in item:
            return None
        watermark = Watermark.from_document(
            {"last_modified": item["last_modified"]["S"], "key": item["position_key"]["S"]}
        )
        return StoredWatermark(watermark, int(item["version"]["N"]))

    def advance(self, table: str, watermark: Watermark, expected_version: int) -> int:
        document = watermark.to_document()
        new_version = expected_version + 1
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": KEY_PREFIX + table}},
                UpdateExpression="SET #lm = :lm, #key = :key, #version = :next, #at = :at",
                ConditionExpression="attribute_not_exists(pk) OR #version = :expected",
                ExpressionAttributeNames={
                    "#lm": "last_modified",
                    "#key": "position_key",
                    "#version": "version",
                    "#at": "updated_at",
                },
                ExpressionAttributeValues={
                    ":lm": {"S": document["last_modified"]},
                    ":key": {"S": document["key"]},
                    ":next": {"N": str(new_version)},
                    ":expected": {"N": str(expected_version)},
                    ":at": {"S": utc_now_text()},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise WatermarkConflict(
                    f"watermark of {table} moved since this run read version {expected_version}: "
                    "another pull is running; this one stops"
                ) from None
            raise
        return new_version

    def rewind_naming(self, needles: Sequence[str]) -> int:
        """Watermarks whose position (a row's primary key) holds one of these values, rewound to
        just before that time (domain Watermark.rewound); the number rewound."""
        rewound = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": KEY_PREFIX}},
        }
        while True:
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                key_text = item.get("position_key", {}).get("S", "")
                if not any(needle in key_text for needle in needles):
                    continue
                table = item["pk"]["S"][len(KEY_PREFIX) :]
                stored = self.load(table)
                if stored is None:
                    continue
                try:
                    self.advance(table, stored.watermark.rewound(), stored.version)
                except WatermarkConflict:
                    continue  # a pull moved it meanwhile: past the row, or the next run's check
                rewound += 1
            if "LastEvaluatedKey" not in page:
                return rewound
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
