"""DynamoDB implementation of the SchemaRegistry port.

Table: pk = "<source>#<kind>"; sk = "schema" holds one attribute per known field path
(`field:<path>` = JSON type), so new fields are merged with one UpdateItem and no read;
sk = "drift#<signature>" holds a drift record, written once per signature (first_seen kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..services.schema_watch import DriftRecord
from .dynamo_codec import from_item, to_attr

SCHEMA_SK = "schema"
DRIFT_PREFIX = "drift#"
_FIELD_PREFIX = "field:"
_MAX_FIELDS_PER_UPDATE = 100  # keeps one UpdateItem expression well inside DynamoDB's limits


def _pk(source: str, kind: str) -> str:
    return f"{source}#{kind}"


class DynamoSchemaRegistry:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def known_schema(self, source: str, kind: str) -> dict[str, str] | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": _pk(source, kind)}, "sk": {"S": SCHEMA_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return {k.removeprefix(_FIELD_PREFIX): v["S"] for k, v in item.items() if k.startswith(_FIELD_PREFIX)}

    def remember(self, source: str, kind: str, fields: Mapping[str, str], drift: DriftRecord | None) -> None:
        key = {"pk": {"S": _pk(source, kind)}, "sk": {"S": SCHEMA_SK}}
        items = sorted(fields.items())
        for start in range(0, max(len(items), 1), _MAX_FIELDS_PER_UPDATE):
            chunk = items[start : start + _MAX_FIELDS_PER_UPDATE]
            names = {"#updated": "updated_at", "#source": "source", "#kind": "kind"}
            values: dict[str, Any] = {
                ":now": {"S": drift.detected_at if drift else ""},
                ":source": {"S": source},
                ":kind": {"S": kind},
            }
            sets = ["#updated = :now", "#source = :source", "#kind = :kind"]
            for index, (path, type_) in enumerate(chunk):
                names[f"#f{index}"] = f"{_FIELD_PREFIX}{path}"
                values[f":f{index}"] = {"S": type_}
                sets.append(f"#f{index} = :f{index}")
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET " + ", ".join(sets),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        if drift is None:
            return
        document = drift.as_dict()
        self._db.update_item(
            TableName=self._table,
            Key={"pk": {"S": _pk(source, kind)}, "sk": {"S": DRIFT_PREFIX + drift.signature}},
            UpdateExpression=(
                "SET first_seen = if_not_exists(first_seen, :now), last_seen = :now, "
                "#source = :source, #kind = :kind, #record = if_not_exists(#record, :record)"
            ),
            ExpressionAttributeNames={"#source": "source", "#kind": "kind", "#record": "record"},
            ExpressionAttributeValues={
                ":now": {"S": drift.detected_at},
                ":source": {"S": source},
                ":kind": {"S": kind},
                ":record": to_attr(document),
            },
        )

    def drift_records(self, source: str | None = None) -> list[DriftRecord]:
        """All drift records (an operator's listing: the table holds one item per source kind
        and per distinct drift, so a scan stays small)."""
        records = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :drift)",
            "ExpressionAttributeValues": {":drift": {"S": DRIFT_PREFIX}},
        }
        if source is not None:
            kwargs["FilterExpression"] += " AND #source = :source"
            kwargs["ExpressionAttributeNames"] = {"#source": "source"}
            kwargs["ExpressionAttributeValues"][":source"] = {"S": source}
        while True:
            page = self._db.scan(**kwargs)
            for item in page.get("Items", []):
                records.append(_record(from_item(item)))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(records, key=lambda r: r.detected_at)


def _record(item: Mapping[str, Any]) -> DriftRecord:
    doc = item["record"]
    return DriftRecord(
        source=doc["source"],
        kind=doc["kind"],
        detected_at=item.get("first_seen", doc["detected_at"]),
        new_fields=doc.get("new_fields", {}),
        missing_mapped=tuple(doc.get("missing_mapped", [])),
        type_changes={k: (v["was"], v["now"]) for k, v in doc.get("type_changes", {}).items()},
        suggestions=tuple(doc.get("suggestions", [])),
    )
