"""DynamoDB implementation of the AuditRepository port.

Table: pk = profile_id, sk = zero-padded sequence number for entries, "HEAD" for the chain head
(a copy of the last entry: seq, prev_hash, hash, change, format, digest; plus the stream
position). Entries without `format` are format 1 (domain/audit.py). An append
claims the next seq with a conditional put and moves the head in the same transaction, so
concurrent appenders can never fork the chain, and verification can compare the entries with
HEAD to catch deleted newest entries (every HEAD ever written holds all of these attributes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..domain.audit import AuditEntry

HEAD_SK = "HEAD"
_SEQ_WIDTH = 12


def _seq_sk(seq: int) -> str:
    return f"{seq:0{_SEQ_WIDTH}d}"


class DynamoAuditRepository:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def head(self, profile_id: str) -> tuple[AuditEntry | None, str]:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": profile_id}, "sk": {"S": HEAD_SK}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None, ""
        return _entry(item), item.get("position", {}).get("S", "")

    def append(self, profile_id: str, entry: AuditEntry, position: str, expected_head_seq: int) -> bool:
        entry_item = {
            **_entry_item(profile_id, entry),
            "position": {"S": position},
            "recorded_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},  # for retention
        }
        head_condition = "attribute_not_exists(seq)" if expected_head_seq == 0 else "seq = :expected"
        values: dict[str, Any] = {**_head_values(entry), ":pos": {"S": position}}
        if expected_head_seq:
            values[":expected"] = {"N": str(expected_head_seq)}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": entry_item,
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": profile_id}, "sk": {"S": HEAD_SK}},
                            "UpdateExpression": _HEAD_UPDATE + ", #p = :pos",
                            "ConditionExpression": head_condition,
                            "ExpressionAttributeNames": {"#h": "hash", "#p": "position", "#f": "format"},
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        return True

    def entries(self, profile_id: str) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND sk < :head",
            "ExpressionAttributeValues": {":p": {"S": profile_id}, ":head": {"S": HEAD_SK}},
            "ConsistentRead": True,
        }
        while True:
            response = self._db.query(**kwargs)
            entries.extend(_entry(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return entries
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def chains_with_content_before(self, before: str) -> Iterator[str]:
        """Profile ids with an entry appended before `before` whose content is still there (a
        full scan: the daily retention sweep)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk <> :head AND recorded_at < :before AND size(change) > :empty",
            "ProjectionExpression": "pk",
            "ExpressionAttributeValues": {
                ":head": {"S": HEAD_SK},
                ":before": {"S": before},
                ":empty": {"N": "0"},
            },
        }
        seen: set[str] = set()
        while True:
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                if (profile_id := item["pk"]["S"]) not in seen:
                    seen.add(profile_id)
                    yield profile_id
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def chains_before(self, audit_format: int) -> Iterator[str]:
        """The profile ids whose HEAD is in an older format (a full scan: for migrations)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :head AND (attribute_not_exists(#f) OR #f < :format)",
            "ProjectionExpression": "pk",
            "ExpressionAttributeNames": {"#f": "format"},
            "ExpressionAttributeValues": {":head": {"S": HEAD_SK}, ":format": {"N": str(audit_format)}},
        }
        while True:
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                yield item["pk"]["S"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def move_head(self, profile_id: str, head: AuditEntry, expected: AuditEntry) -> bool:
        """Set HEAD to `head` if it is still `expected` (same seq and hash): a rewrite of the chain
        (migration) moves HEAD first, so appends after it link to the rewritten chain."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": profile_id}, "sk": {"S": HEAD_SK}},
                UpdateExpression=_HEAD_UPDATE,
                ConditionExpression="seq = :expected_seq AND #h = :expected_hash",
                ExpressionAttributeNames={"#h": "hash"},
                ExpressionAttributeValues={
                    **_head_values(head),
                    ":expected_seq": {"N": str(expected.seq)},
                    ":expected_hash": {"S": expected.hash},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_entries(self, profile_id: str, entries: list[AuditEntry]) -> None:
        """Overwrite stored entries (a migration, or content redacted by an erasure); the stream
        position each was appended at is kept."""
        for entry in entries:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": profile_id}, "sk": {"S": _seq_sk(entry.seq)}},
                UpdateExpression=_CONTENT_UPDATE,
                ExpressionAttributeNames={"#h": "hash", "#f": "format"},
                ExpressionAttributeValues={k: v for k, v in _head_values(entry).items() if k != ":seq"},
            )


_CONTENT_UPDATE = "SET prev_hash = :prev, #h = :hash, change = :change, #f = :format, digest = :digest"
_HEAD_UPDATE = _CONTENT_UPDATE + ", seq = :seq"


def _head_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        ":seq": {"N": str(entry.seq)},
        ":prev": {"S": entry.prev_hash},
        ":hash": {"S": entry.hash},
        ":change": {"S": entry.change_json},
        ":format": {"N": str(entry.format)},
        ":digest": {"S": entry.digest},
    }


def _entry_item(profile_id: str, entry: AuditEntry) -> dict[str, Any]:
    return {
        "pk": {"S": profile_id},
        "sk": {"S": _seq_sk(entry.seq)},
        "seq": {"N": str(entry.seq)},
        "prev_hash": {"S": entry.prev_hash},
        "hash": {"S": entry.hash},
        "change": {"S": entry.change_json},
        "format": {"N": str(entry.format)},
        "digest": {"S": entry.digest},
    }


def _entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        int(item["seq"]["N"]),
        item.get("prev_hash", {}).get("S", ""),
        item.get("hash", {}).get("S", ""),
        item.get("change", {}).get("S", ""),
        int(item.get("format", {}).get("N", "1")),
        item.get("digest", {}).get("S", ""),
        item.get("recorded_at", {}).get("S", ""),
    )
