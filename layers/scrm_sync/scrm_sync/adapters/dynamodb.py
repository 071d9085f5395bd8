"""DynamoDB implementation of the ProfileRepository port.

Tables (see template.yaml):
- profiles: pk = profile id, sk = "PROFILE". Field values live in `v:<field>`, their versions
  in `m:<field>` = {k: precedence key, s: source, t: occurred_at, e: event id}; `n:<type>`
  counts linked identifiers; `redirect_to` marks a profile merged into another.
- identity: identifier_key -> profile_id (+ who linked it); GSI `by_profile` lists a profile's.
- timeline: profile_id + sort key (time first), newest first on read; TTL on interactions.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from ..domain.audit import ERASED_BY
from ..domain.identifiers import Identifier
from ..domain.identity_graph import link_limit, within_link_limits
from ..domain.precedence import FieldVersion, FieldWrite
from ..domain.profile import (
    EventRecord,
    Profile,
    utc_now_text,
    version_from_document,
    version_to_document,
)
from ..domain.timeline import timeline_page_of
from ..services.ports import (
    ApplyResult,
    ConcurrentChange,
    CreateResult,
    Evidence,
    IdentityLink,
    LinkResult,
    NewProfile,
    Owner,
    SplitPlan,
    TimelineEntry,
)
from .dynamo_codec import from_item, plain, to_attr, to_item

PROFILE_SK = "PROFILE"
EVENT_SK_PREFIX = "E#"  # event records (the evidence of links and fields) beside the profile item
_MAX_TRANSACTION_ITEMS = 100
_MAX_REDIRECT_HOPS = 16
_MAX_CONDITION_RETRIES = 8
_BATCH_WRITE_PAGE = 25  # BatchWriteItem's limit
_BACKOFF_BASE_SECONDS = 0.025
_PARALLEL_PAGES = 4


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_item_too_large(exc: ClientError) -> bool:
    """DynamoDB's answer to an update that would make the item larger than 400 KB."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return _error_code(exc) == "ValidationException" and "exceeded the maximum allowed size" in message


def _field_attributes(name: str, value: Any, version: FieldVersion) -> dict[str, Any]:
    """A field's value and version as the profile item holds them."""
    return {f"v:{name}": value, f"m:{name}": version_to_document(version)}


def _fields(item: Mapping[str, Any]) -> dict[str, tuple[Any, FieldVersion]]:
    """The fields of a profile item (decoded by `from_item`): name -> (value, version)."""
    return {
        name[2:]: (item.get(f"v:{name[2:]}"), version_from_document(meta))
        for name, meta in item.items()
        if name.startswith("m:")
    }


def _counters(identifier_types: Iterable[str]) -> dict[str, int]:
    """The profile item's `n:<type>` counters: how many identifiers of each type it links."""
    return {f"n:{type_}": count for type_, count in Counter(identifier_types).items()}


def _types(identifier_keys: Iterable[str]) -> list[str]:
    return [Identifier.from_key(key).type for key in identifier_keys]


class DynamoProfileRepository:
    def __init__(self, client: Any, profiles_table: str, identity_table: str, timeline_table: str) -> None:
        self._db = client
        self._profiles = profiles_table
        self._identity = identity_table
        self._timeline = timeline_table

    @property
    def profiles_table(self) -> str:
        return self._profiles

    @property
    def identity_table(self) -> str:
        return self._identity

    @property
    def timeline_table(self) -> str:
        return self._timeline

    # -- identity graph ---------------------------------------------------------------------
    def owners(self, identifier_keys: Sequence[str]) -> dict[str, Owner]:
        return {
            item["identifier_key"]["S"]: Owner(
                item["profile_id"]["S"], bool(item.get("link_blocked", {}).get("BOOL", False))
            )
            for item in self._identity_items(identifier_keys, "identifier_key, profile_id, link_blocked")
        }

    def suppressed(self, suppression_keys: Sequence[str]) -> set[str]:
        """Suppression entries live in the identity table under their hashed keys
        (adapters/dynamodb_privacy.py writes them)."""
        return {
            item["identifier_key"]["S"] for item in self._identity_items(suppression_keys, "identifier_key")
        }

    def _identity_items(self, keys: Sequence[str], projection: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = [{"identifier_key": {"S": k}} for k in dict.fromkeys(keys)]
        while pending:
            response = self._db.batch_get_item(
                RequestItems={
                    self._identity: {
                        "Keys": pending[:100],
                        "ProjectionExpression": projection,
                        "ConsistentRead": True,
                    }
                }
            )
            found.extend(response.get("Responses", {}).get(self._identity, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(self._identity, {}).get("Keys", [])
            pending = pending[100:] + unprocessed
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
            profile.update(_field_attributes(write.field, write.value, write.version))
        profile.update(_counters(link.identifier.type for link in links))
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
                names[f"#n{i}"] = f"n:{type_}"
                values[f":c{i}"] = {"N": str(count)}
                values[f":room{i}"] = {"N": str(link_limit(max_per_type, type_) - count)}
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
                linked = {name[2:]: int(count) for name, count in old.items() if name.startswith("n:")}
                pending, over = within_link_limits(pending, linked, max_per_type)
                result.over_limit.extend(link.identifier for link in over)
        raise RuntimeError("identity link did not settle")

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

    def detach_identifiers(self, profile_id: str, identifiers: Sequence[Identifier]) -> list[Identifier]:
        detached = []
        for identifier in identifiers:
            if self._detach(profile_id, identifier):
                detached.append(identifier)
        return detached

    def _detach(self, profile_id: str, identifier: Identifier) -> bool:
        """Delete one identity item and decrement the owner's counter, in one transaction."""
        actions: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._identity,
                    "Key": {"identifier_key": {"S": identifier.key}},
                    # only from the owner the caller resolved; an operator's block is never lifted
                    "ConditionExpression": (
                        "profile_id = :owner AND (attribute_not_exists(link_blocked) OR link_blocked = :no)"
                    ),
                    "ExpressionAttributeValues": {":owner": {"S": profile_id}, ":no": {"BOOL": False}},
                }
            },
            {
                "Update": {
                    "TableName": self._profiles,
                    "Key": {"pk": {"S": profile_id}, "sk": {"S": PROFILE_SK}},
                    "UpdateExpression": "ADD #n :minus_one",
                    "ConditionExpression": "attribute_exists(pk)",  # never create a stub profile
                    "ExpressionAttributeNames": {"#n": f"n:{identifier.type}"},
                    "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
                }
            },
        ]
        for _ in range(_MAX_CONDITION_RETRIES):
            try:
                self._db.transact_write_items(TransactItems=actions)
                return True
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                codes = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
            if "ConditionalCheckFailed" in codes:
                return False  # no longer (or never) this owner's link
            if "TransactionConflict" not in codes:
                raise RuntimeError(f"identifier detach cancelled: {sorted(map(str, codes))}")
        raise RuntimeError("identifier detach did not settle")

    # -- fields -----------------------------------------------------------------------------
    def apply_fields(self, profile_id: str, writes: Sequence[FieldWrite]) -> ApplyResult:
        result = ApplyResult()
        pending = list(writes)
        for _ in range(_MAX_CONDITION_RETRIES):
            if not pending:
                return result
            names = {"#r": "redirect_to", "#x": ERASED_BY}
            values: dict[str, Any] = {":now": {"S": utc_now_text()}, ":pid": {"S": profile_id}}
            sets = ["updated_at = :now", "created_at = if_not_exists(created_at, :now)", "profile_id = :pid"]
            # an erased profile's tombstone is never written to again (a stale owner read)
            conditions = ["attribute_not_exists(#r)", "attribute_not_exists(#x)"]
            for i, write in enumerate(pending):
                names[f"#v{i}"] = f"v:{write.field}"
                names[f"#m{i}"] = f"m:{write.field}"
                values[f":v{i}"] = to_attr(write.value)
                values[f":m{i}"] = to_attr(version_to_document(write.version))
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
                if _is_item_too_large(exc):
                    result.too_large.extend(pending)  # DynamoDB refused the whole update
                    return result
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = from_item(dict(exc.response.get("Item", {})))  # type: ignore[call-overload]
            if old.get(ERASED_BY):
                result.erased = True
                return result
            if old.get("redirect_to"):
                result.redirected_to = str(old["redirect_to"])
                return result
            still_winning = []
            for write in pending:
                meta = old.get(f"m:{write.field}")
                current = version_from_document(meta) if meta else None
                if write.beats(current):
                    still_winning.append(write)
                elif current is not None and current.key == write.version.key:
                    result.duplicates.append(write)
                elif current is not None:
                    result.lost.append((write, current))
            pending = still_winning
        raise RuntimeError("field writes did not settle")

    def field_versions(self, profile_id: str) -> tuple[str | None, dict[str, tuple[Any, FieldVersion]]]:
        item = self.profile_item(profile_id)
        if item is None:
            return None, {}
        redirect = item.get("redirect_to")
        return (str(redirect) if redirect else None), _fields(item)

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
        item = self.profile_item(profile_id) or {}
        return list(item.get("merged_from", []))

    # -- reads ------------------------------------------------------------------------------
    def profile_item(self, profile_id: str) -> dict[str, Any] | None:
        """The profile item as stored (plain values), consistently read."""
        item = self._db.get_item(
            TableName=self._profiles,
            Key={"pk": {"S": profile_id}, "sk": {"S": PROFILE_SK}},
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def load(self, profile_id: str, identifiers: bool = True) -> Profile | None:
        live, item = profile_id, self.profile_item(profile_id)
        for _ in range(_MAX_REDIRECT_HOPS):  # a merged-away profile's item names its survivor
            if item is None or "redirect_to" not in item:
                break
            live = item["redirect_to"]
            item = self.profile_item(live)
        else:
            raise RuntimeError(f"redirect chain from {profile_id} is too long")
        if item is None or item.get(ERASED_BY):
            return None
        profile = Profile(
            live, updated_at=item.get("updated_at"), merged_from=list(item.get("merged_from", []))
        )
        for field, (value, version) in _fields(item).items():
            profile.values[field] = value
            profile.versions[field] = version
        seen: set[str] = set()
        for pid in [live, *item.get("merged_from", [])] if identifiers else []:
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

    def record_events(self, entries: Sequence[Evidence]) -> None:
        # keyed by item key: BatchWriteItem refuses a request naming one key twice (an event
        # delivered twice in one queue batch), and the second copy is the same item anyway
        events: dict[tuple[str, str], dict[str, Any]] = {}
        timeline: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in entries:
            events[(entry.profile_id, entry.record.key)] = self._event_item(entry.profile_id, entry.record)
            if entry.timeline is not None:
                timeline[(entry.profile_id, entry.timeline.sort_key)] = self._timeline_item(
                    entry.profile_id, entry.timeline
                )
        requests = [(self._profiles, {"PutRequest": {"Item": item}}) for item in events.values()]
        requests += [(self._timeline, {"PutRequest": {"Item": item}}) for item in timeline.values()]
        pages = [requests[i : i + _BATCH_WRITE_PAGE] for i in range(0, len(requests), _BATCH_WRITE_PAGE)]

        def write(page: list[tuple[str, dict[str, Any]]]) -> None:
            by_table: dict[str, list[dict[str, Any]]] = {}
            for table, request in page:
                by_table.setdefault(table, []).append(request)
            self._batch_write(by_table)

        if len(pages) <= 1:
            for page in pages:
                write(page)
            return
        # a queue batch's evidence is several pages: send them at once, not one round trip each
        with ThreadPoolExecutor(max_workers=min(len(pages), _PARALLEL_PAGES)) as pool:
            for done in [pool.submit(write, page) for page in pages]:
                done.result()

    def _event_item(self, profile_id: str, record: EventRecord) -> dict[str, Any]:
        return to_item(
            {
                "pk": profile_id,
                "sk": EVENT_SK_PREFIX + record.key,
                "kind": "event",
                "doc": record.to_document(),
            }
        )

    @staticmethod
    def _timeline_item(profile_id: str, entry: TimelineEntry) -> dict[str, Any]:
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
        return to_item(item)

    def _batch_write(self, writes: dict[str, list[dict[str, Any]]]) -> None:
        """Every request written, in BatchWriteItem pages of 25. What DynamoDB leaves unprocessed
        (throttling) goes into the next page after an exponential, jittered pause, as AWS
        advises; only pages that make no progress count towards giving up."""
        pending = {table: list(requests) for table, requests in writes.items() if requests}
        stalled = 0
        while pending:
            batch: dict[str, list[dict[str, Any]]] = {}
            room = _BATCH_WRITE_PAGE
            for table, requests in pending.items():
                if room and requests:
                    batch[table], pending[table] = requests[:room], requests[room:]
                    room -= len(batch[table])
            response = self._db.batch_write_item(RequestItems=batch)
            unprocessed = response.get("UnprocessedItems", {})
            for table, requests in unprocessed.items():
                pending[table] = list(requests) + pending.get(table, [])
            pending = {table: requests for table, requests in pending.items() if requests}
            if not unprocessed:
                stalled = 0
                continue
            stalled += 1
            if stalled > _MAX_CONDITION_RETRIES:
                raise RuntimeError("batch write did not complete: DynamoDB kept items unprocessed")
            time.sleep(random.uniform(0, _BACKOFF_BASE_SECONDS * 2**stalled))

    def timeline(self, profile_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
        return self.timeline_page(profile_ids, limit)[0]

    def timeline_page(
        self, profile_ids: Sequence[str], limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        by_key: dict[str, dict[str, Any]] = {}
        more = False
        for pid in dict.fromkeys(profile_ids):
            condition, values = "profile_id = :p", {":p": {"S": pid}}
            if before is not None:
                condition, values = f"{condition} AND sk < :before", {**values, ":before": {"S": before}}
            response = self._db.query(
                TableName=self._timeline,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1,  # one more than a page tells whether another page follows
            )
            items = response.get("Items", [])
            more = more or len(items) > limit or "LastEvaluatedKey" in response
            for item in items:
                entry = {k: plain(v) for k, v in from_item(item).items()}
                by_key.setdefault(entry["sk"], entry)
        return timeline_page_of(by_key, limit, more)

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            response = self._db.query(**kwargs)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- unlink support ---------------------------------------------------------------------
    def members(self, profile_id: str) -> list[str]:
        seen: list[str] = []
        queue = [profile_id]
        while queue:
            current = queue.pop()
            if current in seen:
                continue
            seen.append(current)
            queue.extend(self.merged_from(current))
        return seen

    def links_of(self, profile_ids: Sequence[str]) -> list[IdentityLink]:
        links = []
        for pid in profile_ids:
            for raw in self._query_all(
                TableName=self._identity,
                IndexName="by_profile",
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            ):
                item = from_item(raw)
                if item.get("link_blocked"):
                    continue
                links.append(
                    IdentityLink(
                        Identifier.from_key(item["identifier_key"]),
                        pid,
                        str(item.get("linked_by_source", "")),
                        str(item.get("linked_by_event", "")),
                    )
                )
        return links

    def event_records(self, profile_ids: Sequence[str]) -> list[EventRecord]:
        records: dict[str, EventRecord] = {}
        for pid in profile_ids:
            for raw in self._query_all(
                TableName=self._profiles,
                KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
                ExpressionAttributeValues={":p": {"S": pid}, ":e": {"S": EVENT_SK_PREFIX}},
            ):
                record = EventRecord.from_document(from_item(raw)["doc"])
                records[record.key] = record
        return [records[k] for k in sorted(records)]

    def split(self, plan: SplitPlan) -> None:
        now = utc_now_text()
        member_values = {f":m{i}": {"S": pid} for i, pid in enumerate(plan.members)}
        member_list = ", ".join(member_values)
        actions: list[dict[str, Any]] = [self._rewrite_fields_action(plan, now)]
        for new in (*plan.new_profiles, plan.unlinked_profile):
            actions.append(self._split_profile_put(new, plan, now))
            for key in new.identifier_keys:
                blocked = key == plan.unlinked_key
                update = "SET profile_id = :to, relinked_at = :now"
                values: dict[str, Any] = {":to": {"S": new.profile_id}, ":now": {"S": now}, **member_values}
                if blocked:
                    update += ", link_blocked = :t, unlinked_reason = :r, unlinked_by = :b"
                    values.update(
                        {":t": {"BOOL": True}, ":r": {"S": plan.reason}, ":b": {"S": plan.requested_by}}
                    )
                actions.append(
                    {
                        "Update": {
                            "TableName": self._identity,
                            "Key": {"identifier_key": {"S": key}},
                            "UpdateExpression": update,
                            "ConditionExpression": f"profile_id IN ({member_list})",
                            "ExpressionAttributeValues": values,
                        }
                    }
                )
        if len(actions) > _MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"unlink would change {len(actions)} items; at most {_MAX_TRANSACTION_ITEMS} at once"
            )
        try:
            self._db.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _error_code(exc) == "TransactionCanceledException":
                raise ConcurrentChange("the profile changed while the unlink was planned; retry") from exc
            raise

    def _rewrite_fields_action(self, plan: SplitPlan, now: str) -> dict[str, Any]:
        names: dict[str, str] = {"#r": "redirect_to", "#u": "last_unlink"}
        values: dict[str, Any] = {
            ":now": {"S": now},
            ":u": to_attr(
                {"identifier": plan.unlinked_key, "reason": plan.reason, "by": plan.requested_by, "at": now}
            ),
        }
        sets = ["updated_at = :now", "#u = :u"]
        removes: list[str] = []
        conditions = ["attribute_exists(pk)", "attribute_not_exists(#r)"]
        fields = sorted(set(plan.expected_versions) | set(plan.kept_fields))
        for i, name in enumerate(fields):
            names[f"#v{i}"], names[f"#m{i}"] = f"v:{name}", f"m:{name}"
            if name in plan.expected_versions:
                values[f":x{i}"] = {"S": plan.expected_versions[name]}
                conditions.append(f"#m{i}.k = :x{i}")
            else:
                conditions.append(f"attribute_not_exists(#m{i})")
            if name in plan.kept_fields:
                value, version = plan.kept_fields[name]
                values[f":v{i}"], values[f":mv{i}"] = to_attr(value), to_attr(version_to_document(version))
                sets.append(f"#v{i} = :v{i}, #m{i} = :mv{i}")
            else:
                removes.append(f"#v{i}, #m{i}")
        moved = [k for new in (*plan.new_profiles, plan.unlinked_profile) for k in new.identifier_keys]
        for j, (counter, count) in enumerate(sorted(_counters(_types(moved)).items())):
            names[f"#n{j}"] = counter
            values[f":d{j}"] = {"N": str(-count)}
            sets.append(f"#n{j} = if_not_exists(#n{j}, :zero) + :d{j}")
            values[":zero"] = {"N": "0"}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {
            "Update": {
                "TableName": self._profiles,
                "Key": {"pk": {"S": plan.profile_id}, "sk": {"S": PROFILE_SK}},
                "UpdateExpression": expression,
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _split_profile_put(self, new: NewProfile, plan: SplitPlan, now: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": new.profile_id,
            "sk": PROFILE_SK,
            "profile_id": new.profile_id,
            "created_at": now,
            "updated_at": now,
            "split_from": plan.profile_id,
        }
        for name, (value, version) in new.fields.items():
            item.update(_field_attributes(name, value, version))
        item.update(_counters(_types(new.identifier_keys)))
        return {
            "Put": {
                "TableName": self._profiles,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def move_evidence(self, from_ids: Sequence[str], to_profile: str, event_keys: Sequence[str]) -> None:
        wanted = set(event_keys)
        puts: list[dict[str, Any]] = []
        deletes: list[tuple[str, dict[str, Any]]] = []
        for pid in from_ids:
            for raw in self._query_all(
                TableName=self._profiles,
                KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
                ExpressionAttributeValues={":p": {"S": pid}, ":e": {"S": EVENT_SK_PREFIX}},
            ):
                if raw["sk"]["S"][len(EVENT_SK_PREFIX) :] in wanted:
                    puts.append({"PutRequest": {"Item": {**raw, "pk": {"S": to_profile}}}})
                    deletes.append((self._profiles, {"pk": raw["pk"], "sk": raw["sk"]}))
            for raw in self._query_all(
                TableName=self._timeline,
                KeyConditionExpression="profile_id = :p",
                ExpressionAttributeValues={":p": {"S": pid}},
            ):
                if f"{raw['source']['S']}#{raw['event_id']['S']}" in wanted:
                    self._batch_write(
                        {self._timeline: [{"PutRequest": {"Item": {**raw, "profile_id": {"S": to_profile}}}}]}
                    )
                    deletes.append((self._timeline, {"profile_id": raw["profile_id"], "sk": raw["sk"]}))
        self._batch_write({self._profiles: puts})  # copies first: a crash leaves duplicates, never gaps
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, key in deletes:
            by_table.setdefault(table, []).append({"DeleteRequest": {"Key": key}})
        self._batch_write(by_table)
