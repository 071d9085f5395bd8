"""Send counters in the checkpoints table (pk = "<scope>#<bucket start>", e.g. "robot#<hash of
the webhook URL>#..." or "wecom-api#<corp>#mark_tag#...").

One item per window bucket: `sent` (a number) and `expires_at` (epoch seconds, for DynamoDB TTL).
A claim is one conditional `ADD sent :amount` that only succeeds while the result stays within
the ceiling, so concurrent senders cannot overshoot the limit together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..services.send_budget import BudgetUnavailable
from .aws_calls import aws_call, error_code

_BATCH_GET_LIMIT = 100


class DynamoSendCounts:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def counts(self, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"pk": {"S": key}} for key in wanted[start : start + _BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, sent",
                }
            }
            for attempt in range(8):  # unprocessed keys come back under throttling
                if attempt:
                    time.sleep(0.05 * 2**attempt)
                answer = self._call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["pk"]["S"]] = int(item.get("sent", {}).get("N", "0"))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise BudgetUnavailable("send counters stayed unprocessed (throttled)")
        return found

    def increment_below(self, key: str, ceiling: int, expires_at: int, amount: int = 1) -> int | None:
        if ceiling < amount or amount < 1:  # the condition below would let a first increment through
            return None
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD #sent :amount SET #exp = :exp",
                ConditionExpression="attribute_not_exists(#sent) OR #sent <= :room",
                ExpressionAttributeNames={"#sent": "sent", "#exp": "expires_at"},
                ExpressionAttributeValues={
                    ":amount": {"N": str(amount)},
                    ":room": {"N": str(ceiling - amount)},
                    ":exp": {"N": str(expires_at)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise BudgetUnavailable(error_code(exc)) from exc
        except BotoCoreError as exc:
            raise BudgetUnavailable(type(exc).__name__) from exc
        return int(answer["Attributes"]["sent"]["N"])

    def fill(self, key: str, limit: int, expires_at: int) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET #sent = :limit, #exp = :exp",
                ConditionExpression="attribute_not_exists(#sent) OR #sent < :limit",
                ExpressionAttributeNames={"#sent": "sent", "#exp": "expires_at"},
                ExpressionAttributeValues={":limit": {"N": str(limit)}, ":exp": {"N": str(expires_at)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # already full: fine
                raise BudgetUnavailable(error_code(exc)) from exc
        except BotoCoreError as exc:
            raise BudgetUnavailable(type(exc).__name__) from exc

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return aws_call(self._db, operation, BudgetUnavailable, **kwargs)
