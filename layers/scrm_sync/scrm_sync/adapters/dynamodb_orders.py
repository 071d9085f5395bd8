"""The orders table (OrderStore) and the archive run's checkpoint (ArchiveCheckpoints).

Orders table (template.yaml OrdersTable): pk = "order#<source>#<order id>".
- A live order holds its latest state, `version` (domain/orders.py) and `age_bucket`, the shard
  of the sparse GSI `by_age` (age_bucket, order_date) the archiver reads: no scans.
- An archived order is a stub: key, version, order_date, profile and where its archived copy is
  (`archived_object`, `archived_version`). Its `archived_profile_id` and `archived_order_id` feed
  the sparse GSIs `archived_by_profile` (timeline notice) and `archived_by_order` (restore by id).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from ..domain.archive import InFlightBatch
from ..domain.orders import OrderState, StoredOrder, age_shard, order_fields
from ..domain.profile import utc_now_text
from ..services.ports import (
    AgedOrder,
    ArchivedEntry,
    ArchiveLeaseHeld,
    ArchiveLeaseLost,
    OrderWrite,
)
from .dynamo_codec import to_attr

AGE_INDEX = "by_age"
ARCHIVED_BY_PROFILE_INDEX = "archived_by_profile"
ARCHIVED_BY_ORDER_INDEX = "archived_by_order"
# Attributes only a live order has; archiving removes them and leaves the stub.
STATE_ATTRIBUTES = (
    "status",
    "total",
    "currency",
    "created_at",
    "lines",
    "occurred_at",
    "event_id",
    "updated_at",
    "age_bucket",
    "hold_until",
)
_MAX_TRANSACTION_ITEMS = 100
_MAX_BATCH_GET = 100
_MAX_ATTEMPTS = 8
_deserializer = TypeDeserializer()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """Keeps Decimals (amounts stay exact on their way to the archive)."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _names(attributes: Sequence[str]) -> dict[str, str]:
    return {f"#{name}": name for name in attributes}  # several are reserved words (status, source...)


def _state_attributes(order: OrderState) -> dict[str, Any]:
    return {
        **order_fields(order),
        "occurred_at": order.occurred_at,
        "event_id": order.event_id,
        "version": order.version,
        "age_bucket": age_shard(order.key),
    }


def _stored(item: Mapping[str, Any]) -> StoredOrder:
    state = None
    if "age_bucket" in item:
        state = OrderState(
            source=str(item["source"]),
            order_id=str(item["order_id"]),
            profile_id=str(item["profile_id"]),
            status=str(item["status"]),
            total=item.get("total"),
            currency=str(item["currency"]),
            created_at=item.get("created_at"),
            order_date=str(item["order_date"]),
            lines=tuple(dict(line) for line in item.get("lines") or ()),
            occurred_at=str(item["occurred_at"]),
            event_id=str(item["event_id"]),
            version=str(item["version"]),
        )
    return StoredOrder(
        key=str(item["pk"]),
        version=str(item["version"]),
        order_date=str(item["order_date"]),
        profile_id=str(item["profile_id"]),
        state=state,
        archived_object=item.get("archived_object"),
        archived_version=item.get("archived_version"),
        hold_until=item.get("hold_until"),
    )


class DynamoOrderStore:
    def __init__(
        self, client: Any, table_name: str, page_size: int = 1000, archive_retention_days: int | None = None
    ) -> None:
        self._db = client
        self._table = table_name
        self._page_size = page_size
        # archived stubs expire with their archived copy (the table's TTL on `expire_at`)
        self._retention_seconds = archive_retention_days * 86400 if archive_retention_days else None

    def upsert(self, order: OrderState) -> OrderWrite:
        attributes = _state_attributes(order)
        attributes["updated_at"] = utc_now_text()
        sets = [f"#{name} = :{name}" for name in attributes]
        if order.created_at is not None:
            sets.append("#order_date = :order_date")
        else:  # the day of the first event seen, kept by later events: an order never changes day
            sets.append("#order_date = if_not_exists(#order_date, :order_date)")
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": order.key}},
                # a newer state of an archived order is live again: its stub's expiry goes
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE expire_at",
                ConditionExpression="attribute_not_exists(#version) OR #version < :version",
                ExpressionAttributeNames=_names([*attributes, "order_date"]),
                ExpressionAttributeValues={
                    **{f":{name}": to_attr(value) for name, value in attributes.items()},
                    ":order_date": {"S": order.order_date},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] = dict(exc.response.get("Item", {}))  # type: ignore[call-overload]
            stored = old.get("version", {}).get("S")
            return "duplicate" if stored == order.version else "stale"
        return "applied"

    def aged(self, shard: str, before: str) -> Iterator[AgedOrder]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": AGE_INDEX,
            "KeyConditionExpression": "age_bucket = :b AND order_date < :before",
            "ExpressionAttributeValues": {":b": {"S": shard}, ":before": {"S": before}},
            "Limit": self._page_size,
        }
        while True:
            page = self._db.query(**request)
            for item in page.get("Items", []):
                yield AgedOrder(item["pk"]["S"], item["order_date"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def load(self, keys: Sequence[str]) -> dict[str, StoredOrder]:
        found: dict[str, StoredOrder] = {}
        pending = [{"pk": {"S": key}} for key in dict.fromkeys(keys)]
        while pending:
            response = self._db.batch_get_item(
                RequestItems={self._table: {"Keys": pending[:_MAX_BATCH_GET], "ConsistentRead": True}}
            )
            for raw in response.get("Responses", {}).get(self._table, []):
                stored = _stored(_plain(raw))
                found[stored.key] = stored
            unprocessed = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            pending = pending[_MAX_BATCH_GET:] + unprocessed
        return found

    def mark_archived(self, entries: Sequence[ArchivedEntry]) -> set[str]:
        changed: set[str] = set()
        for start in range(0, len(entries), _MAX_TRANSACTION_ITEMS):
            changed |= self._mark_chunk(list(entries[start : start + _MAX_TRANSACTION_ITEMS]))
        return changed

    def _mark_chunk(self, pending: list[ArchivedEntry]) -> set[str]:
        """One transaction per chunk (100 stubs per request instead of 100 requests); an order
        that changed cancels it, so it is retried without the orders the reasons name."""
        changed: set[str] = set()
        removes = ", ".join(f"#{name}" for name in STATE_ATTRIBUTES)
        expiry = ", expire_at = :expire" if self._retention_seconds else ""
        for _ in range(_MAX_ATTEMPTS):
            if not pending:
                return changed
            actions = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": entry.key}},
                        "UpdateExpression": (
                            "SET archived_object = :o, archived_version = :v, archived_at = :at, "
                            f"archived_profile_id = :p, archived_order_id = :id{expiry} REMOVE {removes}"
                        ),
                        "ConditionExpression": "#version = :v AND attribute_exists(#age_bucket)",
                        "ExpressionAttributeNames": _names([*STATE_ATTRIBUTES, "version"]),
                        "ExpressionAttributeValues": {
                            ":o": {"S": entry.object_key},
                            ":v": {"S": entry.version},
                            ":at": {"S": entry.archived_at},
                            ":p": {"S": entry.profile_id},
                            ":id": {"S": entry.order_id},
                            **self._expiry_value(entry.archived_at),
                        },
                    }
                }
                for entry in pending
            ]
            try:
                self._db.transact_write_items(TransactItems=actions)
                return changed
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons", [])
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            unexpected = set(codes) - {"None", "ConditionalCheckFailed", "TransactionConflict"}
            if unexpected or len(codes) != len(pending):
                raise RuntimeError(f"archiving stubs cancelled: {sorted(set(codes))}")
            changed |= {
                e.key for e, code in zip(pending, codes, strict=True) if code == "ConditionalCheckFailed"
            }
            pending = [e for e, code in zip(pending, codes, strict=True) if code != "ConditionalCheckFailed"]
        raise RuntimeError("archiving stubs did not settle (transaction conflicts)")

    def _expiry_value(self, archived_at: str) -> dict[str, Any]:
        if not self._retention_seconds:
            return {}
        at = datetime.fromisoformat(archived_at.replace("Z", "+00:00"))
        return {":expire": {"N": str(int(at.timestamp()) + self._retention_seconds)}}

    def put_back(self, order: OrderState, archived_object: str, hold_until: str) -> bool:
        item = {
            "pk": order.key,
            **_state_attributes(order),
            "order_date": order.order_date,
            "updated_at": utc_now_text(),
            "archived_object": archived_object,
            "archived_version": order.version,
            "archived_profile_id": order.profile_id,
            "archived_order_id": order.order_id,
            "hold_until": hold_until,
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item={name: to_attr(value) for name, value in item.items()},
                # over the stub of this version (or an older one), never over a live order
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (attribute_not_exists(#age_bucket) AND #version <= :v)"
                ),
                ExpressionAttributeNames=_names(["age_bucket", "version"]),
                ExpressionAttributeValues={":v": {"S": order.version}},
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def archived_keys(self, order_id: str) -> list[str]:
        keys: list[str] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": ARCHIVED_BY_ORDER_INDEX,
            "KeyConditionExpression": "archived_order_id = :id",
            "ExpressionAttributeValues": {":id": {"S": order_id}},
        }
        while True:
            page = self._db.query(**request)
            keys.extend(item["pk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(keys)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def newest_archived_order_date(self, profile_id: str) -> str | None:
        items = self._db.query(
            TableName=self._table,
            IndexName=ARCHIVED_BY_PROFILE_INDEX,
            KeyConditionExpression="archived_profile_id = :p",
            ExpressionAttributeValues={":p": {"S": profile_id}},
            ScanIndexForward=False,
            Limit=1,
        ).get("Items", [])
        return str(items[0]["order_date"]["S"]) if items else None


class DynamoArchiveCheckpoints:
    """One item in the checkpoints table: the lease of the running archive run and the batch it
    is writing. Every write after acquire() is conditional on still holding the lease."""

    KEY = "archive#orders"

    def __init__(self, client: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock

    def acquire(self, owner: str, lease_seconds: float) -> InFlightBatch | None:
        now = self._clock()
        try:
            item = self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": self.KEY}},
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=(
                    "attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :me"
                ),
                ExpressionAttributeValues={
                    ":me": {"S": owner},
                    ":until": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise ArchiveLeaseHeld("another archive run holds the lease") from None
            raise
        inflight = item.get("inflight", {}).get("M")
        if not inflight:
            return None
        return InFlightBatch(object_key=inflight["object_key"]["S"], dt=inflight["dt"]["S"])

    def begin(self, owner: str, batch: InFlightBatch, lease_seconds: float) -> None:
        self._update(
            owner,
            "SET inflight = :batch, lease_until = :until",
            {
                ":batch": {"M": {"object_key": {"S": batch.object_key}, "dt": {"S": batch.dt}}},
                ":until": {"N": str(self._clock() + lease_seconds)},
            },
        )

    def finish(self, owner: str, lease_seconds: float) -> None:
        self._update(
            owner,
            "SET lease_until = :until REMOVE inflight",
            {":until": {"N": str(self._clock() + lease_seconds)}},
        )

    def release(self, owner: str) -> None:
        with contextlib.suppress(ArchiveLeaseLost):  # taken over already: nothing of ours to release
            self._update(owner, "REMOVE lease_owner, lease_until", {})

    def _update(self, owner: str, expression: str, values: dict[str, Any]) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": self.KEY}},
                UpdateExpression=expression,
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues={":me": {"S": owner}, **values},
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise ArchiveLeaseLost("the archive lease was taken over by another run") from None
            raise
