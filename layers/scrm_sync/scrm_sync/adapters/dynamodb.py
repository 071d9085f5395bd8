"""DynamoDB implementation of the ProfileRepository port.

Tables (see template.yaml):
- profiles: pk = profile id, sk = "PROFILE". Field values live in `v:<field>`, their versions
  in `m:<field>` = {k: precedence key, s: source, t: occurred_at, e: event id}; `n:<type>`
  counts linked identifiers; `redirect_to` marks a profile merged into another.
- identity: identifier_key -> profile_id (+ who linked it); GSI `by_profile` lists a profile's.
- timeline: profile_id + sort key (time first), newest first on read; TTL on interactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from ..domain.identifiers import Identifier
from ..domain.precedence import FieldVersion, FieldWrite
from ..domain.profile import Profile, utc_now_text
from ..services.ports import (
    ApplyResult,
    CreateResult,
    IdentityLink,
    LinkResult,
    TimelineEntry,
)
from .dynamo_codec import from_item, plain, to_attr, to_item

PROFILE_SK = "PROFILE"
_MAX_REDIRECT_HOPS = 16
_MAX_CONDITION_RETRIES = 8


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _version(meta: Mapping[str, Any]) -> FieldVersion:
    return FieldVersion(str(meta["k"]), str(meta["s"]), str(meta["t"]), str(meta["e"]))


def _version_map(version: FieldVersion) -> dict[str, str]:
    return {"k": version.key, "s": version.source, "t": version.occurred_at, "e": version.event_id}


class DynamoProfileRepository:
    def __init__(self, client: Any, profiles_table: str, identity_table: str, timeline_table: str) -> None:
        self._db = client
        self._profiles = profiles_table
        self._identity = identity_table
        self._timeline = timeline_table

    # -- identity graph ---------------------------------------------------------------------
    def owners(self, identifier_keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        pending: list[dict[str, Any]] = [{"identifier_key": {"S": k}} for k in dict.fromkeys(identifier_keys)]
        while pending:
            response = self._db.batch_get_item(
                RequestItems={
                    self._identity: {
                        "Keys": pending[:100],
                        "ProjectionExpression": "identifier_key, profile_id",
                        "ConsistentRead": True,
                    }
                }
            )
            for item in response.get("Responses", {}).get(self._identity, []):
                found[item["identifier_key"]["S"]] = item["profile_id"]["S"]
            pending = pending[100:] + response.get("UnprocessedKeys", {}).get(self._identity, {}).get(
                "Keys", []
            )
        return found

    def _identity_item(self, link: IdentityLink, now: str) -> dict[str, Any]:
        ident = link.identifier
        return to_item(
            {
                "identifier_key": ident.key,
                "profile_id": link.profile_id,
                "type": ident.type,
                "value": ident.value,
                "scope": ident.scope,
                "linked_by_source": link.source,
                "linked_by_event": link.event_id,
                "linked_at": now,
            }
        )

    def create_profile(
        self, profile_id: str, writes: Sequence[FieldWrite], links: Sequence[IdentityLink]
    ) -> CreateResult:
        now = utc_now_text()
        profile: dict[str, Any] = {
            "pk": profile_id,
            "sk": PROFILE_SK,
            "profile_id": profile_id,
            "created_at": now,
            "updated_at": now,
        }
        for write in writes:
            profile[f"v:{write.field}"] = write.value
            profile[f"m:{write.field}"] = _version_map(write.version)
        for link in links:
            counter = f"n:{link.identifier.type}"
            profile[counter] = profile.get(counter, 0) + 1
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._profiles,
                    "Item": to_item(profile),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for link in links:
            actions.append(
                {
                    "Put": {
                        "TableName": self._identity,
                        "Item": self._identity_item(link, now),
                        "ConditionExpression": "attribute_not_exists(identifier_key)",
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            claimed = [
                link.identifier.key
                for link, reason in zip(links, reasons[1:], strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            return CreateResult(created=False, already_claimed=claimed)
        return CreateResult(created=True)

    def link(
        self, profile_id: str, links: Sequence[IdentityLink], max_per_type: Mapping[str, int]
    ) -> LinkResult:
        result = LinkResult()
        pending = list(links)
        for _ in range(_MAX_CONDITION_RETRIES):
            if not pending:
                return result
            counts: dict[str, int] = {}
            for link in pending:
                counts[link.identifier.type] = counts.get(link.identifier.type, 0) + 1
            names = {"#r": "redirect_to"}
            values: dict[str, Any] = {}
            adds, conditions = [], ["attribute_not_exists(#r)"]
            for i, (type_, count) in enumerate(sorted(counts.items())):
                limit = max_per_type.get(type_, max_per_type.get("default", 5))
                names[f"#n{i}"] = f"n:{type_}"
                values[f":c{i}"] = {"N": str(count)}
                values[f":room{i}"] = {"N": str(limit - count)}
                adds.append(f"#n{i} :c{i}")
                conditions.append(f"(attribute_not_exists(#n{i}) OR #n{i} <= :room{i})")
            now = utc_now_text()
            actions: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self._profiles,
                        "Key": {"pk": {"S": profile_id}, "sk": {"S": PROFILE_SK}},
                        "UpdateExpression": "ADD " + ", ".join(adds),
                        "ConditionExpression": " AND ".join(conditions),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
            for link in pending:
                actions.append(
                    {
                        "Put": {
                            "TableName": self._identity,
                            "Item": self._identity_item(link, now),
                            "ConditionExpression": "attribute_not_exists(identifier_key)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                )
            try:
                self._db.transact_write_items(TransactItems=actions)
                result.linked.extend(link.identifier for link in pending)
                return result
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons", [])
            profile_reason = reasons[0] if reasons else {}
            for link, reason in zip(pending, reasons[1:], strict=False):
                if reason.get("Code") == "ConditionalCheckFailed" and "Item" in reason:
                    owner = str(from_item(reason["Item"]).get("profile_id"))
                    if owner != profile_id:
                        result.owned_elsewhere[link.identifier.key] = owner
            if result.owned_elsewhere:
                return result
            # already ours (a replay): drop them from the batch
            pending = [
                link
                for link, reason in zip(pending, reasons[1:], strict=False)
                if reason.get("Code") != "ConditionalCheckFailed"
            ]
            if profile_reason.get("Code") == "ConditionalCheckFailed":
                old = from_item(profile_reason.get("Item", {}))
                if old.get("redirect_to"):
                    result.redirected_to = str(old["redirect_to"])
                    return result
                pending = self._within_limits(pending, old, max_per_type, result)
        raise RuntimeError("identity link did not settle")

    @staticmethod
    def _within_limits(
        pending: list[IdentityLink],
        old: Mapping[str, Any],
        max_per_type: Mapping[str, int],
        result: LinkResult,
    ) -> list[IdentityLink]:
        room: dict[str, int] = {}
        keep = []
        for link in pending:
            type_ = link.identifier.type
            if type_ not in room:
                limit = max_per_type.get(type_, max_per_type.get("default", 5))
                room[type_] = limit - int(old.get(f"n:{type_}", 0))
            if room[type_] > 0:
                room[type_] -= 1
                keep.append(link)
            else:
                result.over_limit.append(link.identifier)
        return keep

    def repoint_identifiers(self, from_profile: str, to_profile: str) -> int:
        moved: dict[str, int] = {}
        for item in self._query_all(
            TableName=self._identity,
            IndexName="by_profile",
            KeyConditionExpression="profile_id = :p",
            ExpressionAttributeValues={":p": {"S": from_profile}},
        ):
            try:
                self._db.update_item(
                    TableName=self._identity,
                    Key={"identifier_key": item["identifier_key"]},
                    UpdateExpression="SET profile_id = :to",
                    ConditionExpression="profile_id = :from",
                    ExpressionAttributeValues={":to": {"S": to_profile}, ":from": {"S": from_profile}},
                )
            except ClientError as exc:
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise
                continue
            type_ = item["type"]["S"]
            moved[type_] = moved.get(type_, 0) + 1
        if moved:
            names = {f"#n{i}": f"n:{t}" for i, t in enumerate(sorted(moved))}
            values = {f":c{i}": {"N": str(moved[t])} for i, t in enumerate(sorted(moved))}
            self._db.update_item(
                TableName=self._profiles,
                Key={"pk": {"S": to_profile}, "sk": {"S": PROFILE_SK}},
                UpdateExpression="ADD " + ", ".join(f"#n{i} :c{i}" for i in range(len(moved))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        return sum(moved.values())

    # -- fields -----------------------------------------------------------------------------
    def apply_fields(self, profile_id: str, writes: Sequence[FieldWrite]) -> ApplyResult:
        result = ApplyResult()
        pending = list(writes)
        for _ in range(_MAX_CONDITION_RETRIES):
            if not pending:
                return result
            names = {"#r": "redirect_to"}
            values: dict[str, Any] = {":now": {"S": utc_now_text()}, ":pid": {"S": profile_id}}
            sets = ["updated_at = :now", "created_at = if_not_exists(created_at, :now)", "profile_id = :pid"]
            conditions = ["attribute_not_exists(#r)"]
            for i, write in enumerate(pending):
                names[f"#v{i}"] = f"v:{write.field}"
                names[f"#m{i}"] = f"m:{write.field}"
                values[f":v{i}"] = to_attr(write.value)
                values[f":m{i}"] = to_attr(_version_map(write.version))
                values[f":k{i}"] = {"S": write.version.key}
                sets.append(f"#v{i} = :v{i}, #m{i} = :m{i}")
                conditions.append(f"(attribute_not_exists(#m{i}) OR #m{i}.k < :k{i})")
            try:
                self._db.update_item(
                    TableName=self._profiles,
                    Key={"pk": {"S": profile_id}, "sk": {"S": PROFILE_SK}},
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression=" AND ".join(conditions),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                result.applied.extend(pending)
                return result
            except ClientError as exc:
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = from_item(dict(exc.response.get("Item", {})))  # type: ignore[call-overload]
            if old.get("redirect_to"):
                result.redirected_to = str(old["redirect_to"])
                return result
            still_winning = []
            for write in pending:
                meta = old.get(f"m:{write.field}")
                current = _version(meta) if meta else None
                if write.beats(current):
                    still_winning.append(write)
                elif current is not None and current.key == write.version.key:
                    result.duplicates.append(write)
                elif current is not None:
                    result.lost.append((write, current))
            pending = still_winning
        raise RuntimeError("field writes did not settle")

    def field_versions(self, profile_id: str) -> tuple[str | None, dict[str, tuple[Any, FieldVersion]]]:
        item = self._get_profile_item(profile_id)
        if item is None:
            return None, {}
        fields = {
            name[2:]: (item.get(f"v:{name[2:]}"), _version(meta))
            for name, meta in item.items()
            if name.startswith("m:")
        }
        redirect = item.get("redirect_to")
        return (str(redirect) if redirect else None), fields

    # -- merges -----------------------------------------------------------------------------
    def redirect(self, loser_id: str, survivor_id: str, event_id: str) -> str | None:
        try:
            self._db.update_item(
                TableName=self._profiles,
                Key={"pk": {"S": loser_id}, "sk": {"S": PROFILE_SK}},
                UpdateExpression="SET redirect_to = :s, merged_by_event = :e, merged_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(redirect_to)",
                ExpressionAttributeValues={
                    ":s": {"S": survivor_id},
                    ":e": {"S": event_id},
                    ":now": {"S": utc_now_text()},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = from_item(dict(exc.response.get("Item", {})))  # type: ignore[call-overload]
            return str(old.get("redirect_to") or survivor_id)
        self._db.update_item(
            TableName=self._profiles,
            Key={"pk": {"S": survivor_id}, "sk": {"S": PROFILE_SK}},
            UpdateExpression="ADD merged_from :l",
            ExpressionAttributeValues={":l": {"SS": [loser_id]}},
        )
        return None

    def resolve(self, profile_id: str) -> str:
        current = profile_id
        for _ in range(_MAX_REDIRECT_HOPS):
            item = self._db.get_item(
                TableName=self._profiles,
                Key={"pk": {"S": current}, "sk": {"S": PROFILE_SK}},
                ProjectionExpression="redirect_to",
                ConsistentRead=True,
            ).get("Item")
            if not item or "redirect_to" not in item:
                return current
            current = item["redirect_to"]["S"]
        raise RuntimeError(f"redirect chain from {profile_id} is too long")

    def merged_from(self, profile_id: str) -> list[str]:
        item = self._get_profile_item(profile_id) or {}
        return list(item.get("merged_from", []))

    # -- reads ------------------------------------------------------------------------------
    def _get_profile_item(self, profile_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self._profiles,
            Key={"pk": {"S": profile_id}, "sk": {"S": PROFILE_SK}},
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def load(self, profile_id: str) -> Profile | None:
        live = self.resolve(profile_id)
        item = self._get_profile_item(live)
        if item is None:
            return None
        profile = Profile(live, updated_at=item.get("updated_at"))
        for name, meta in item.items():
            if name.startswith("m:"):
                field = name[2:]
                profile.versions[field] = _version(meta)
                profile.values[field] = item.get(f"v:{field}")
        seen: set[str] = set()
        for pid in [live, *item.get("merged_from", [])]:
            for ident in self._query_all(
                TableName=self._identity,
                IndexName="by_profile",
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            ):
                key = ident["identifier_key"]["S"]
                if key not in seen:
                    seen.add(key)
                    profile.identifiers.append(Identifier.from_key(key))
        return profile

    def add_timeline_entry(self, profile_id: str, entry: TimelineEntry) -> bool:
        item: dict[str, Any] = {
            "profile_id": profile_id,
            "sk": entry.sort_key,
            "kind": entry.kind,
            "occurred_at": entry.occurred_at,
            "source": entry.source,
            "event_id": entry.event_id,
            "data": dict(entry.data),
        }
        if entry.expires_at is not None:
            item["expires_at"] = entry.expires_at
        try:
            self._db.put_item(
                TableName=self._timeline,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def timeline(self, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for pid in profile_ids:
            response = self._db.query(
                TableName=self._timeline,
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
                ScanIndexForward=False,
                Limit=limit,
            )
            entries.extend(from_item(i) for i in response.get("Items", []))
        entries.sort(key=lambda e: e["sk"], reverse=True)
        return [{k: plain(v) for k, v in e.items() if k not in {"profile_id", "sk"}} for e in entries[:limit]]

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            response = self._db.query(**kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
