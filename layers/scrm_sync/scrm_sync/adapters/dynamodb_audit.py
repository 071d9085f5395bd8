"""DynamoDB implementation of the AuditRepository port.

Table: pk = profile_id, sk = zero-padded sequence number for entries, "HEAD" for the chain head
(a copy of the last entry: seq, prev_hash, hash, change; plus the stream position). An append
claims the next seq with a conditional put and moves the head in the same transaction, so
concurrent appenders can never fork the chain, and verification can compare the entries with
HEAD to catch deleted newest entries (every HEAD ever written holds all of these attributes).
"""

from __future__ import annotations

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
        entry = AuditEntry(
            int(item["seq"]["N"]), item["prev_hash"]["S"], item["hash"]["S"], item["change"]["S"]
        )
        return entry, item.get("position", {}).get("S", "")

    def append(self, profile_id: str, entry: AuditEntry, position: str, expected_head_seq: int) -> bool:
        entry_item = {
            "pk": {"S": profile_id},
            "sk": {"S": _seq_sk(entry.seq)},
            "seq": {"N": str(entry.seq)},
            "prev_hash": {"S": entry.prev_hash},
            "hash": {"S": entry.hash},
            "change": {"S": entry.change_json},
            "position": {"S": position},
        }
        head_condition = "attribute_not_exists(seq)" if expected_head_seq == 0 else "seq = :expected"
        values: dict[str, Any] = {
            ":seq": {"N": str(entry.seq)},
            ":prev": {"S": entry.prev_hash},
            ":hash": {"S": entry.hash},
            ":change": {"S": entry.change_json},
            ":pos": {"S": position},
        }
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
                            "UpdateExpression": (
                                "SET seq = :seq, prev_hash = :prev, #h = :hash, change = :change, #p = :pos"
                            ),
                            "ConditionExpression": head_condition,
                            "ExpressionAttributeNames": {"#h": "hash", "#p": "position"},
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
            for item in response.get("Items", []):
                entries.append(
                    AuditEntry(
                        int(item["seq"]["N"]),
                        item.get("prev_hash", {}).get("S", ""),
                        item.get("hash", {}).get("S", ""),
                        item.get("change", {}).get("S", ""),
                    )
                )
            if "LastEvaluatedKey" not in response:
                return entries
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
