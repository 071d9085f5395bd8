"""The DynamoDB side of erasure (services/erasure.py).

Privacy table (template.yaml PrivacyTable), pk + sk:
- `erasure#<id>` / `erasure`: the request and each store's status; while it is pending it holds
  `pending` = "1" (the sparse GSI `pending_erasures`, sorted by `requested_at`) and what is needed
  to find the person in the landing bucket (identifier keys, values, names), all removed when it
  completes;
- `scrub` / `scrub`: the landing pass in progress;
- `release#<id>` / `release`: an audited release from the suppression list (who, when, why, the
  identifier types and suppression keys, never values);
- `arrival` / `<landing prefix>`: a day of landed requests that holds events of erased people,
  noted by the sync functions for the next erasure run (`noted_at`).
Suppression entries live in the identity table, keyed `suppressed#<hmac>` (domain/privacy.py),
so the sync core reads them with the identity graph.

Profiles: each profile item is replaced by a tombstone (`erased_by`, who asked and when), which
the sync core never writes to again; its identity links (blocked ones too), its event records
(`E#...` beside it) and its timeline entries are deleted; its orders keep `profile_id` "erased".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from botocore.exceptions import ClientError

from ..domain.audit import ERASED_BY
from ..domain.identifiers import Identifier
from ..domain.orders import order_key
from ..domain.privacy import ERASED_PROFILE, STORES, Erasure, StoreStatus
from ..services.erasure import PersonalData, ScrubPass
from .dynamo_codec import from_item, to_attr, to_item
from .dynamodb import EVENT_SK_PREFIX, PROFILE_SK, DynamoProfileRepository
from .dynamodb_orders import ARCHIVED_BY_PROFILE_INDEX

PENDING_INDEX = "pending_erasures"
_BATCH_WRITE = 25
_MAX_BATCH_ATTEMPTS = 8
_SCRUB_KEY = {"pk": {"S": "scrub"}, "sk": {"S": "scrub"}}


class DynamoPersonalData:
    def __init__(self, client: Any, profiles: DynamoProfileRepository, orders: str) -> None:
        self._db = client
        self._repo = profiles  # profile items are read the one way
        self._profiles = profiles.profiles_table
        self._identity = profiles.identity_table
        self._timeline = profiles.timeline_table
        self._orders = orders

    # -- finding the person ---------------------------------------------------------------------
    def find(self, profile_id: str | None, identifier_keys: Sequence[str]) -> PersonalData:
        roots: list[str] = []
        if profile_id:
            roots.append(profile_id)
        for key in identifier_keys:
            item = self._db.get_item(
                TableName=self._identity, Key={"identifier_key": {"S": key}}, ConsistentRead=True
            ).get("Item")
            if item and "profile_id" in item:
                roots.append(item["profile_id"]["S"])
        profile_ids: list[str] = []
        for root in roots:
            for pid in self._closure(root):
                if pid not in profile_ids:
                    profile_ids.append(pid)
        items = [self._repo.profile_item(pid) for pid in profile_ids]
        if profile_id and not any(item and not item.get(ERASED_BY) for item in items):
            profile_ids = []  # no such profile (or erased already): nothing of it to find
        identifiers = [Identifier.from_key(str(link["identifier_key"])) for link in self._links(profile_ids)]
        values = [
            value
            for item in items
            if item
            for name, value in item.items()
            if name.startswith("v:") and isinstance(value, str)
        ]
        return PersonalData(tuple(profile_ids), tuple(identifiers), tuple(values))

    def _closure(self, profile_id: str) -> list[str]:
        """The live profile a merged-away one redirects to, and every profile merged into it."""
        current, seen = profile_id, []
        for _ in range(16):
            item = self._repo.profile_item(current)
            if not item or not item.get("redirect_to"):
                break
            current = str(item["redirect_to"])
        queue = [current, profile_id]
        while queue:
            pid = queue.pop()
            if pid in seen:
                continue
            seen.append(pid)
            item = self._repo.profile_item(pid) or {}
            queue.extend(str(m) for m in item.get("merged_from") or [])
        return seen

    def _links(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every identity item of these profiles, blocked links included."""
        return [
            from_item(item)
            for pid in profile_ids
            for item in self._query(
                TableName=self._identity,
                IndexName="by_profile",
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            )
        ]

    # -- erasing -------------------------------------------------------------------------------
    def erase_profiles(self, profile_ids: Sequence[str], erasure: Erasure) -> None:
        for pid in profile_ids:
            tombstone = {
                "pk": pid,
                "sk": PROFILE_SK,
                "profile_id": pid,
                ERASED_BY: erasure.erasure_id,
                "erasure_requested_by": erasure.requested_by,
                "erasure_requested_at": erasure.requested_at,
                "erasure_stores": list(STORES),
            }
            self._db.put_item(TableName=self._profiles, Item=to_item(tombstone))

    def erase_identity(self, profile_ids: Sequence[str]) -> None:
        keys = [{"identifier_key": {"S": str(link["identifier_key"])}} for link in self._links(profile_ids)]
        self._delete(self._identity, keys)

    def erase_evidence(self, profile_ids: Sequence[str]) -> None:
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for pid in profile_ids
            for item in self._query(
                TableName=self._profiles,
                KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
                ExpressionAttributeValues={":p": {"S": pid}, ":e": {"S": EVENT_SK_PREFIX}},
                ProjectionExpression="pk, sk",
            )
        ]
        self._delete(self._profiles, keys)

    def order_keys(self, profile_ids: Sequence[str]) -> list[str]:
        found: set[str] = set()
        for pid in profile_ids:
            for raw in self._query(
                TableName=self._timeline,
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            ):
                entry = from_item(raw)
                data = entry.get("data") or {}
                if entry.get("kind") == "order" and data.get("order_id") is not None:
                    found.add(order_key(str(entry.get("source")), str(data["order_id"])))
            for raw in self._query(
                TableName=self._orders,
                IndexName=ARCHIVED_BY_PROFILE_INDEX,
                KeyConditionExpression="archived_profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            ):
                found.add(raw["pk"]["S"])
        return sorted(found)

    def erase_timeline(self, profile_ids: Sequence[str]) -> None:
        keys = [
            {"profile_id": item["profile_id"], "sk": item["sk"]}
            for pid in profile_ids
            for item in self._query(
                TableName=self._timeline,
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
                ProjectionExpression="profile_id, sk",
            )
        ]
        self._delete(self._timeline, keys)

    def anonymize_orders(self, order_keys: Sequence[str]) -> dict[str, set[str]]:
        archived: dict[str, set[str]] = {}
        for key in order_keys:
            try:
                old = self._db.update_item(
                    TableName=self._orders,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET profile_id = :erased REMOVE archived_profile_id",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":erased": {"S": ERASED_PROFILE}},
                    ReturnValues="ALL_OLD",
                ).get("Attributes", {})
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # no such order (a timeline entry of an order never stored)
                raise
            data_key = old.get("archived_object", {}).get("S")
            if data_key:
                archived.setdefault(data_key, set()).add(key)
        return archived

    # -- helpers -------------------------------------------------------------------------------
    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            page = self._db.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete(self, table: str, keys: Sequence[dict[str, Any]]) -> None:
        pages = [list(keys[i : i + _BATCH_WRITE]) for i in range(0, len(keys), _BATCH_WRITE)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda page: self._delete_page(table, page), pages))

    def _delete_page(self, table: str, keys: list[dict[str, Any]]) -> None:
        pending = [{"DeleteRequest": {"Key": key}} for key in keys]
        for _ in range(_MAX_BATCH_ATTEMPTS):
            if not pending:
                return
            answer = self._db.batch_write_item(RequestItems={table: pending})
            pending = answer.get("UnprocessedItems", {}).get(table, [])
        if pending:
            raise RuntimeError(f"{len(pending)} deletes left unprocessed in {table}")


class DynamoErasureStore:
    def __init__(self, client: Any, privacy_table: str, identity_table: str) -> None:
        self._db = client
        self._table = privacy_table
        self._identity = identity_table

    def create(self, erasure: Erasure) -> None:
        self._db.put_item(TableName=self._table, Item=_erasure_item(erasure))

    def get(self, erasure_id: str) -> Erasure | None:
        if not erasure_id.startswith("er-"):
            return None
        item = self._db.get_item(
            TableName=self._table, Key=_erasure_key(erasure_id), ConsistentRead=True
        ).get("Item")
        return _erasure(from_item(item)) if item else None

    def save(self, erasure: Erasure) -> None:
        self._db.put_item(TableName=self._table, Item=_erasure_item(erasure))

    def pending(self, limit: int) -> list[Erasure]:
        found: list[Erasure] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": PENDING_INDEX,
            "KeyConditionExpression": "pending = :one",
            "ExpressionAttributeValues": {":one": {"S": "1"}},
        }
        while len(found) < limit:
            page = self._db.query(**kwargs)
            keys = [{"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", [])]
            for start in range(0, len(keys), 100):
                answer = self._db.batch_get_item(
                    RequestItems={self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
                )
                found.extend(_erasure(from_item(i)) for i in answer.get("Responses", {}).get(self._table, []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found.sort(key=lambda e: e.requested_at)
        return [e for e in found if e.status != "complete"][:limit]

    def suppress(self, suppression_keys: Sequence[tuple[str, str]], erasure_id: str, at: str) -> None:
        for start in range(0, len(suppression_keys), _BATCH_WRITE):
            pending = [
                {
                    "PutRequest": {
                        "Item": to_item(
                            {
                                "identifier_key": key,
                                "suppressed": True,
                                "identifier_type": type_,
                                "erasure_id": erasure_id,
                                "suppressed_at": at,
                            }
                        )
                    }
                }
                for key, type_ in suppression_keys[start : start + _BATCH_WRITE]
            ]
            for _ in range(_MAX_BATCH_ATTEMPTS):
                if not pending:
                    break
                answer = self._db.batch_write_item(RequestItems={self._identity: pending})
                pending = answer.get("UnprocessedItems", {}).get(self._identity, [])
            if pending:
                raise RuntimeError("suppression entries left unwritten")

    def release(self, suppression_keys: Sequence[str], released_by: str, reason: str, at: str) -> int:
        released = []
        for key in suppression_keys:
            try:
                old = self._db.delete_item(
                    TableName=self._identity,
                    Key={"identifier_key": {"S": key}},
                    ConditionExpression="attribute_exists(suppressed)",  # never an identity link
                    ReturnValues="ALL_OLD",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # not suppressed
                raise
            released.append((key, old.get("Attributes", {}).get("identifier_type", {}).get("S", "")))
        record = {
            "pk": f"release#{uuid.uuid4().hex}",
            "sk": "release",
            "released_by": released_by,
            "released_at": at,
            "reason": reason,
            "suppression_keys": [key for key, _ in released],
            "identifier_types": [type_ for _, type_ in released],
            "requested": len(suppression_keys),
        }
        self._db.put_item(TableName=self._table, Item=to_item(record))
        return len(released)

    def scrub_pass(self) -> ScrubPass | None:
        item = self._db.get_item(TableName=self._table, Key=_SCRUB_KEY, ConsistentRead=True).get("Item")
        if not item:
            return None
        plain = from_item(item)
        return ScrubPass(
            [str(i) for i in plain.get("erasure_ids") or []],
            str(plain.get("after") or ""),
            str(plain.get("started_at") or ""),
        )

    def save_scrub_pass(self, scrub: ScrubPass | None) -> None:
        if scrub is None:
            self._db.delete_item(TableName=self._table, Key=_SCRUB_KEY)
            return
        item = {
            **_SCRUB_KEY,
            "erasure_ids": to_attr(list(scrub.erasure_ids)),
            "after": {"S": scrub.after},
            "started_at": {"S": scrub.started_at},
        }
        self._db.put_item(TableName=self._table, Item=item)


def _erasure_key(erasure_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"erasure#{erasure_id}"}, "sk": {"S": "erasure"}}


def _erasure_item(erasure: Erasure) -> dict[str, Any]:
    pending = erasure.status != "complete"
    item: dict[str, Any] = {
        "erasure_id": erasure.erasure_id,
        "requested_by": erasure.requested_by,
        "requested_at": erasure.requested_at,
        "profile_ids": list(erasure.profile_ids),
        "stores": dict(erasure.stores),
        "errors": dict(erasure.errors),
    }
    if erasure.completed_at:
        item["completed_at"] = erasure.completed_at
    if pending:  # what finds the person: kept only while the erasure is under way
        item["pending"] = "1"
        item["identifier_keys"] = list(erasure.identifier_keys)
        item["needles"] = list(erasure.needles)
        item["names"] = list(erasure.names)
    return {**_erasure_key(erasure.erasure_id), **to_item(item)}


def _erasure(item: dict[str, Any]) -> Erasure:
    return Erasure(
        erasure_id=str(item["erasure_id"]),
        requested_by=str(item.get("requested_by") or ""),
        requested_at=str(item.get("requested_at") or ""),
        profile_ids=tuple(str(p) for p in item.get("profile_ids") or []),
        identifier_keys=tuple(str(k) for k in item.get("identifier_keys") or []),
        needles=tuple(str(n) for n in item.get("needles") or []),
        names=tuple(str(n) for n in item.get("names") or []),
        stores={str(k): cast(StoreStatus, str(v)) for k, v in (item.get("stores") or {}).items()},
        errors={str(k): str(v) for k, v in (item.get("errors") or {}).items()},
        completed_at=item.get("completed_at"),
    )


class DynamoLateArrivals:
    def __init__(self, client: Any, privacy_table: str) -> None:
        self._db = client
        self._table = privacy_table

    def note(self, prefixes: Sequence[str], at: str) -> None:
        for prefix in prefixes:
            self._db.put_item(
                TableName=self._table,
                Item={"pk": {"S": "arrival"}, "sk": {"S": prefix}, "noted_at": {"S": at}},
            )

    def pending(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :a",
            "ExpressionAttributeValues": {":a": {"S": "arrival"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            found.extend((i["sk"]["S"], i["noted_at"]["S"]) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def done(self, prefix: str, noted_at: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": {"S": "arrival"}, "sk": {"S": prefix}},
                ConditionExpression="noted_at = :seen",
                ExpressionAttributeValues={":seen": {"S": noted_at}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # noted again meanwhile: the next run scrubs it once more
