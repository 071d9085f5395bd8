"""DeviceHealthTable: per device (`device_id`), one item per score (`sk` = `score#<window start>`,
expiring by TTL after DeviceHealthRetentionDays) and the device's state (`sk` = `state`), written
with optimistic concurrency on the state's window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..domain.device_health import DeviceState
from .aws_calls import error_code
from .dynamo_codec import from_item, to_item

STATE_KEY = "state"
SCORE_PREFIX = "score#"
_STATE_FIELDS = (
    "window_start",
    "zone",
    "score",
    "pending_zone",
    "pending_windows",
    "service_zone",
    "service_requested_at",
)


class DynamoDeviceHealthStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def record_score(self, item: Mapping[str, Any], expire_at: int) -> bool:
        stored = {**item, "sk": SCORE_PREFIX + str(item["window_start"]), "expire_at": expire_at}
        return self._put(to_item(stored), "attribute_not_exists(sk)", {})

    def state(self, device_id: str) -> DeviceState | None:
        answer = self._db.get_item(
            TableName=self._table,
            Key={"device_id": {"S": device_id}, "sk": {"S": STATE_KEY}},
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        item = from_item(answer["Item"])
        return DeviceState(
            device_id=device_id,
            window_start=str(item["window_start"]),
            zone=item["zone"],
            score=int(item["score"]),
            pending_zone=item.get("pending_zone"),
            pending_windows=int(item.get("pending_windows") or 0),
            service_zone=item.get("service_zone"),
            service_requested_at=item.get("service_requested_at"),
        )

    def save_state(self, state: DeviceState, expected_window: str | None) -> bool:
        item = {"device_id": state.device_id, "sk": STATE_KEY}
        item |= {name: getattr(state, name) for name in _STATE_FIELDS}
        if expected_window is None:
            return self._put(to_item(item), "attribute_not_exists(sk)", {})
        return self._put(to_item(item), "window_start = :expected", {":expected": {"S": expected_window}})

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        try:
            self._db.put_item(TableName=self._table, Item=item, ConditionExpression=condition, **extra)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
