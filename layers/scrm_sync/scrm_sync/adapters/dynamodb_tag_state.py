"""The WeCom tag writer's state in the checkpoints table (pk only):

- `wecom-tags#<corp>#<hash of contact and member>`: the tags this system last wrote for the pair
  (`written`), an in-flight target (`pending`, `pending_at`) and a `version` every claim moves;
- `wecom-tag-ids#<corp>`: `ids` = {group name: {tag name: tag id}} for the tags the rules name;
- `wecom-tag-ids-lock#<corp>`: a lease (`lease_until`) held while missing tags are created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from ..domain.wecom_tags import CorpTag
from ..services.wecom_tags import MemberTagState
from .aws_calls import error_code
from .dynamo_codec import from_item

_BATCH_GET_LIMIT = 100


def _tags_attr(tags: frozenset[CorpTag]) -> dict[str, Any]:
    return {"L": [{"L": [{"S": t.group}, {"S": t.name}]} for t in sorted(tags)]}


def _tags(value: Any) -> frozenset[CorpTag]:
    return frozenset(CorpTag(str(pair[0]), str(pair[1])) for pair in value or [] if len(pair) == 2)


class DynamoTagStateStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def states(self, keys: Sequence[str]) -> dict[str, MemberTagState]:
        found: dict[str, MemberTagState] = {}
        pending = [{"pk": {"S": key}} for key in dict.fromkeys(keys)]
        while pending:
            answer = self._db.batch_get_item(
                RequestItems={self._table: {"Keys": pending[:_BATCH_GET_LIMIT], "ConsistentRead": True}}
            )
            for raw in answer.get("Responses", {}).get(self._table, []):
                item = from_item(raw)
                found[str(item["pk"])] = MemberTagState(
                    written=_tags(item.get("written")),
                    pending=_tags(item["pending"]) if "pending" in item else None,
                    pending_at=float(item["pending_at"]) if "pending_at" in item else None,
                    version=int(item.get("version", 0)),
                )
            unprocessed = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            pending = pending[_BATCH_GET_LIMIT:] + unprocessed
        return found

    def _conditional_update(self, **kwargs: Any) -> bool:
        try:
            self._db.update_item(TableName=self._table, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim(self, key: str, version: int, pending: frozenset[CorpTag], now: float) -> bool:
        condition = "attribute_not_exists(#v)" if version == 0 else "#v = :expected"
        values: dict[str, Any] = {
            ":pending": _tags_attr(pending),
            ":at": {"N": repr(now)},
            ":next": {"N": str(version + 1)},
        }
        if version:
            values[":expected"] = {"N": str(version)}
        return self._conditional_update(
            Key={"pk": {"S": key}},
            UpdateExpression="SET #p = :pending, pending_at = :at, #v = :next",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#p": "pending", "#v": "version"},
            ExpressionAttributeValues=values,
        )

    def confirm(self, key: str, version: int, written: frozenset[CorpTag]) -> bool:
        return self._conditional_update(
            Key={"pk": {"S": key}},
            UpdateExpression="SET written = :written REMOVE #p, pending_at",
            ConditionExpression="#v = :version",
            ExpressionAttributeNames={"#p": "pending", "#v": "version"},
            ExpressionAttributeValues={":written": _tags_attr(written), ":version": {"N": str(version)}},
        )

    def tag_ids(self, corp_id: str) -> dict[CorpTag, str]:
        raw = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": f"wecom-tag-ids#{corp_id}"}}, ConsistentRead=True
        ).get("Item")
        groups = from_item(raw).get("ids", {}) if raw else {}
        return {
            CorpTag(str(group), str(name)): str(tag_id)
            for group, tags in groups.items()
            if isinstance(tags, Mapping)
            for name, tag_id in tags.items()
        }

    def save_tag_ids(self, corp_id: str, ids: Mapping[CorpTag, str]) -> None:
        groups: dict[str, dict[str, Any]] = {}
        for tag, tag_id in ids.items():
            groups.setdefault(tag.group, {"M": {}})["M"][tag.name] = {"S": tag_id}
        self._db.put_item(
            TableName=self._table,
            Item={"pk": {"S": f"wecom-tag-ids#{corp_id}"}, "ids": {"M": groups}},
        )

    def lock(self, name: str, now: float, lease_seconds: float) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": name}, "lease_until": {"N": repr(now + lease_seconds)}},
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unlock(self, name: str) -> None:
        self._db.delete_item(TableName=self._table, Key={"pk": {"S": name}})
