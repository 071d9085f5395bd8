"""Claims of marketplace stock pushes that the platform cannot dedupe (Youzan), in the
checkpoints table: `stock-push#<channel>#<location>#<sku>` holds the last settled stream record
(`settled`, its sequence number) and the one in flight (`pending`). services/stock_push.py says
what a claim means; each operation here is one conditional UpdateItem.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..services.ports import PushClaim
from .aws_calls import error_code

_NOT_SETTLED_YET = "attribute_not_exists(settled) OR settled < :seq"


class DynamoPushAttempts:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def begin(self, key: str, sequence: int) -> PushClaim:
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET pending = :seq",
                ConditionExpression=_NOT_SETTLED_YET,
                ExpressionAttributeValues={":seq": {"N": str(sequence)}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return "done"
            raise
        return "uncertain" if "pending" in (answer.get("Attributes") or {}) else "clear"

    def settle(self, key: str, sequence: int) -> None:
        self._update(
            key,
            "SET settled = :seq REMOVE pending",
            _NOT_SETTLED_YET,
            {":seq": {"N": str(sequence)}},
        )

    def release(self, key: str, sequence: int) -> None:
        self._update(key, "REMOVE pending", "pending = :seq", {":seq": {"N": str(sequence)}})

    def _update(self, key: str, expression: str, condition: str, values: dict[str, Any]) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
