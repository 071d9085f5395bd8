"""The access log (AccessLogTable): one item per profile read, pk = "profile#<id>", sk = the
time and a random suffix; the GSI `by_caller` lists a caller's reads. Items expire after
AccessLogRetentionDays (TTL `expires_at`). No identifier or value of the customer is stored."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from ..domain.privacy import ProfileAccess

BY_CALLER_INDEX = "by_caller"


class DynamoAccessLog:
    def __init__(self, client: Any, table: str, retention_days: int) -> None:
        self._db = client
        self._table = table
        self._retention = timedelta(days=retention_days)

    def record(self, access: ProfileAccess) -> None:
        at = access.at.isoformat(timespec="milliseconds")
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"profile#{access.profile_id}"},
                "sk": {"S": f"{at}#{uuid.uuid4().hex[:8]}"},
                "profile_id": {"S": access.profile_id},
                "caller": {"S": access.caller},
                "purpose": {"S": access.purpose},
                "route": {"S": access.route},
                "at": {"S": at},
                "expires_at": {"N": str(int((access.at + self._retention).timestamp()))},
            },
        )

    def of_profile(self, profile_id: str, limit: int) -> list[dict[str, str]]:
        return self._newest(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"profile#{profile_id}"}},
            limit=limit,
        )

    def of_caller(self, caller: str, limit: int) -> list[dict[str, str]]:
        return self._newest(
            IndexName=BY_CALLER_INDEX,
            KeyConditionExpression="caller = :c",
            ExpressionAttributeValues={":c": {"S": caller}},
            limit=limit,
        )

    def _newest(self, limit: int, **kwargs: Any) -> list[dict[str, str]]:
        page = self._db.query(TableName=self._table, ScanIndexForward=False, Limit=limit, **kwargs)
        fields = ("profile_id", "caller", "purpose", "route", "at")
        return [{f: item[f]["S"] for f in fields if f in item} for item in page.get("Items", [])]
