"""The inventory ledger in DynamoDB (InventoryTable): balances, applied-event markers, the
movement history and reservations, changed only by conditional transactions.

Items (pk, sk):
- balance     SKU#<sku>, LOC#<location>   on_hand, reserved, free (= on_hand - reserved), incoming,
                                          count_version, updated_at
- event mark  EVT#<source>#<event id>, EVT   makes an event's effect happen once
- movement    MOV#<sku>#<location>, <occurred_at UTC>#<source>#<event id>   append-only history
- reservation RES#<id>, RES               lines, status, expiry; while held it carries
                                          held_shard/held_until, the sparse HeldReservations index
                                          the expiry sweep reads
- transfer    TRF#<demand id>, T<attempt>  one store's instruction for an order line; its status
                                          only moves along TRANSFER_TRANSITIONS (conditional)
- snapshot    SNAPSHOTS, <source>#<location>  a source's latest reported stock there (one item,
                                          replaced only by a newer version), for reconciliation

One movement is one TransactWriteItems: the balance update (with its condition), the event mark
(attribute_not_exists) and the movement. A reservation puts the reservation item and updates each
line's balance under `free >= quantity + safety_stock`: all lines or none, never below zero.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ..domain.inventory import (
    Balance,
    Delta,
    InventoryMovement,
    Reservation,
    ReservationStatus,
    SnapshotItem,
    StockSnapshot,
    Transfer,
    TransferStatus,
)
from ..services.ports import (
    ConcurrentChange,
    FinishOutcome,
    MovementOutcome,
    ReserveOutcome,
)
from .aws_calls import error_code
from .dynamo_codec import from_item, to_attr

HELD_SHARDS = 16  # the held-reservations index is spread over this many partitions
_CONFLICT_RETRIES = 8
_FINISHED_KEPT = timedelta(days=90)  # a finished reservation stays readable (and idempotent) this long


def balance_key(sku: str, location: str) -> dict[str, Any]:
    return {"pk": {"S": f"SKU#{sku}"}, "sk": {"S": f"LOC#{location}"}}


def _reservation_key(reservation_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"RES#{reservation_id}"}, "sk": {"S": "RES"}}


def _held_shard(reservation_id: str) -> str:
    digest = hashlib.sha256(reservation_id.encode()).digest()
    return f"HELD#{digest[0] % HELD_SHARDS}"


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _balance(item: Mapping[str, Any] | None, sku: str, location: str) -> Balance:
    if not item:
        return Balance(sku, location)
    plain = from_item(item)
    version = plain.get("count_version")
    return Balance(
        sku,
        location,
        on_hand=int(plain.get("on_hand", 0)),
        reserved=int(plain.get("reserved", 0)),
        incoming=int(plain.get("incoming", 0)),
        count_version=None if version is None else int(version),
    )


def _reservation(item: Mapping[str, Any]) -> Reservation:
    plain = from_item(item)
    return Reservation(
        reservation_id=str(plain["pk"]).removeprefix("RES#"),
        location=plain["location"],
        channel=plain["channel"],
        lines=tuple((line["sku"], int(line["quantity"])) for line in plain["lines"]),
        status=plain["status"],
        created_at=datetime.fromisoformat(plain["created_at"]),
        expires_at=datetime.fromisoformat(plain["expires_at"]),
        order_id=plain.get("order_id"),
        fingerprint=plain.get("fingerprint", ""),
    )


class DynamoInventoryStore:
    def __init__(self, client: Any, table: str, clock: Callable[[], datetime] | None = None) -> None:
        self._db = client
        self._table = table
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- reads ---------------------------------------------------------------------------------
    def balances(self, sku: str) -> list[Balance]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"SKU#{sku}"}},
        }
        while True:
            page = self._db.query(**request)
            items.extend(page.get("Items") or [])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_balance(item, sku, item["sk"]["S"].removeprefix("LOC#")) for item in items]

    def balance(self, sku: str, location: str) -> Balance:
        item = self._db.get_item(TableName=self._table, Key=balance_key(sku, location), ConsistentRead=True)
        return _balance(item.get("Item"), sku, location)

    def reservation(self, reservation_id: str) -> Reservation | None:
        item = self._db.get_item(
            TableName=self._table, Key=_reservation_key(reservation_id), ConsistentRead=True
        ).get("Item")
        return _reservation(item) if item else None

    def movements(self, sku: str, location: str, limit: int = 100) -> list[dict[str, Any]]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"MOV#{sku}#{location}"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        history = []
        for item in page.get("Items") or []:
            plain = from_item(item)
            occurred_at = str(plain.pop("sk")).split("#", 1)[0]  # the key starts with when it happened
            plain.pop("pk", None)
            history.append({"occurred_at": occurred_at, **plain})
        return history

    def due_reservations(self, now: datetime, limit: int = 100) -> list[str]:
        """Held reservations whose expiry has passed, from every shard of the sparse index."""
        due: list[str] = []
        for shard in range(HELD_SHARDS):
            page = self._db.query(
                TableName=self._table,
                IndexName="HeldReservations",
                KeyConditionExpression="held_shard = :shard AND held_until <= :now",
                ExpressionAttributeValues={":shard": {"S": f"HELD#{shard}"}, ":now": {"S": _text(now)}},
                Limit=limit,
            )
            due.extend(item["pk"]["S"].removeprefix("RES#") for item in page.get("Items") or [])
        return due[:limit] if len(due) > limit else due

    def on_hand_at(self, sku: str, location: str, moment: datetime) -> int:
        """on_hand as of `moment`: today's, minus what movements that occurred later changed. The
        balance is read on both sides of the history so a movement landing meanwhile is noticed."""
        after = _text(moment + timedelta(microseconds=1))
        for attempt in range(_CONFLICT_RETRIES):
            before = self._db.get_item(
                TableName=self._table, Key=balance_key(sku, location), ConsistentRead=True
            )
            later = 0
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk >= :after",
                "ExpressionAttributeValues": {":pk": {"S": f"MOV#{sku}#{location}"}, ":after": {"S": after}},
                "ProjectionExpression": "on_hand",
                "ConsistentRead": True,
            }
            while True:
                page = self._db.query(**request)
                later += sum(
                    int(item["on_hand"]["N"]) for item in page.get("Items") or [] if "on_hand" in item
                )
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            again = self._db.get_item(
                TableName=self._table, Key=balance_key(sku, location), ConsistentRead=True
            )
            if before.get("Item") == again.get("Item"):
                return _balance(again.get("Item"), sku, location).on_hand - later
            _pause(attempt)
        raise ConcurrentChange(f"{sku} at {location} kept changing while reconciled")

    def put_snapshot(self, snapshot: StockSnapshot, per_sku: bool = False) -> bool:
        """Keep a source's snapshot unless a newer version is kept already (False then)."""
        scope = f"{snapshot.source}#{snapshot.location}"
        if per_sku:
            (only,) = snapshot.items
            scope = f"{scope}#{only.sku}"
        item = {
            "pk": "SNAPSHOTS",
            "sk": scope,
            "source": snapshot.source,
            "location": snapshot.location,
            "version": snapshot.version,
            "taken_at": snapshot.taken_at.isoformat(),
            "items": {i.sku: i.quantity for i in snapshot.items},
            "received_at": _text(self._clock()),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item={k: to_attr(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk) OR version < :v",
                ExpressionAttributeValues={":v": {"N": str(snapshot.version)}},
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def snapshots(self) -> list[StockSnapshot]:
        found: list[StockSnapshot] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "SNAPSHOTS"}},
        }
        while True:
            page = self._db.query(**request)
            for item in page.get("Items") or []:
                plain = from_item(item)
                found.append(
                    StockSnapshot(
                        source=plain["source"],
                        location=plain["location"],
                        version=int(plain["version"]),
                        taken_at=datetime.fromisoformat(plain["taken_at"]),
                        items=[
                            SnapshotItem(sku=k, quantity=int(v)) for k, v in sorted(plain["items"].items())
                        ],
                    )
                )
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- writes --------------------------------------------------------------------------------
    def apply_movement(
        self,
        source: str,
        event_id: str,
        occurred_at: datetime,
        movement: InventoryMovement,
        delta: Delta | None,
        seen: Balance,
    ) -> MovementOutcome:
        """Apply a movement once. `delta` None (an older count) records the event without changing
        stock. The balance condition checks what the delta was computed from where it matters
        (counts: on_hand; transfer_in: incoming), so a concurrent change makes it "stale"."""
        now = _text(self._clock())
        actions: list[dict[str, Any]] = []
        if delta is not None and not delta.is_zero:
            actions.append(self._balance_update(movement.sku, movement.location, delta, now, seen, movement))
        if movement.kind == "transfer_out" and movement.counterpart and movement.quantity:
            counterpart = Delta(incoming=movement.quantity)
            actions.append(
                self._balance_update(movement.sku, movement.counterpart, counterpart, now, None, None)
            )
        mark = {
            "pk": f"EVT#{source}#{event_id}",
            "sk": "EVT",
            "kind": movement.kind,
            "sku": movement.sku,
            "location": movement.location,
            "applied_at": now,
            "outcome": "applied" if delta is not None else "superseded",
        }
        actions.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {k: to_attr(v) for k, v in mark.items()},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        actions.append(self._movement_put(source, event_id, occurred_at, movement, delta, now))
        try:
            self._db.transact_write_items(TransactItems=actions)
            return "applied" if delta is not None else "superseded"
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            codes = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
        mark_index = len(actions) - 2
        if len(codes) > mark_index and codes[mark_index] == "ConditionalCheckFailed":
            return "duplicate"
        if "ConditionalCheckFailed" in codes:
            return "stale"
        raise ConcurrentChange(f"inventory movement cancelled: {sorted(set(codes))}")

    def reserve(self, reservation: Reservation, needed: Sequence[tuple[str, int, int]]) -> ReserveOutcome:
        """Hold every line or none. `needed`: (sku, quantity, safety stock) per line."""
        now = _text(self._clock())
        item: dict[str, Any] = {
            "pk": f"RES#{reservation.reservation_id}",
            "sk": "RES",
            "location": reservation.location,
            "channel": reservation.channel,
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in reservation.lines],
            "status": "held",
            "created_at": reservation.created_at.isoformat(),
            "expires_at": reservation.expires_at.isoformat(),
            "fingerprint": reservation.fingerprint,
            "held_shard": _held_shard(reservation.reservation_id),
            "held_until": _text(reservation.expires_at),
        }
        if reservation.order_id is not None:
            item["order_id"] = reservation.order_id
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {k: to_attr(v) for k, v in item.items()},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for sku, quantity, safety in needed:
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": balance_key(sku, reservation.location),
                        "UpdateExpression": "SET updated_at = :now ADD reserved :q, #free :minus",
                        "ConditionExpression": "#free >= :needed",
                        "ExpressionAttributeNames": {"#free": "free"},
                        "ExpressionAttributeValues": {
                            ":now": {"S": now},
                            ":q": {"N": str(quantity)},
                            ":minus": {"N": str(-quantity)},
                            ":needed": {"N": str(quantity + safety)},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
            actions.append(
                self._history(
                    sku,
                    reservation.location,
                    reservation.created_at,
                    "reservation",
                    reservation.reservation_id,
                    "reserve",
                    now,
                    reserved=quantity,
                )
            )
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self._db.transact_write_items(TransactItems=actions)
                return ReserveOutcome("reserved", reservation)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons", [])
            codes = [str(r.get("Code", "None")) for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                existing = self.reservation(reservation.reservation_id)
                if existing is not None:
                    return ReserveOutcome("exists", existing)
            short = [
                needed[(index - 1) // 2][0]
                for index, code in enumerate(codes)
                if code == "ConditionalCheckFailed" and index % 2 == 1
            ]
            if short:
                return ReserveOutcome("short", reservation, short_skus=tuple(short))
            _pause(attempt)
        raise ConcurrentChange("reservation did not settle (transaction conflicts)")

    def finish(self, reservation: Reservation, status: ReservationStatus, reason_id: str) -> FinishOutcome:
        """held -> released / shipped / expired, giving its lines back (or taking them off the
        shelf, for shipped). "not_held" when someone finished it first."""
        now_moment = self._clock()
        now = _text(now_moment)
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _reservation_key(reservation.reservation_id),
                    "UpdateExpression": "SET #status = :status, finished_at = :now, purge_at = :purge"
                    " REMOVE held_shard, held_until",
                    "ConditionExpression": "#status = :held",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":status": {"S": status},
                        ":now": {"S": now},
                        ":held": {"S": "held"},
                        ":purge": {"N": str(int((now_moment + _FINISHED_KEPT).timestamp()))},
                    },
                }
            }
        ]
        kind = "ship" if status == "shipped" else ("expire" if status == "expired" else "release")
        for sku, quantity in reservation.lines:
            delta = Delta(reserved=-quantity, on_hand=-quantity if status == "shipped" else 0)
            actions.append(self._balance_update(sku, reservation.location, delta, now, None, None))
            actions.append(
                self._history(
                    sku,
                    reservation.location,
                    now_moment,
                    "reservation",
                    f"{reservation.reservation_id}#{reason_id}",
                    kind,
                    now,
                    reserved=-quantity,
                    on_hand=delta.on_hand,
                )
            )
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self._db.transact_write_items(TransactItems=actions)
                return "finished"
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                codes = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
            if codes and codes[0] == "ConditionalCheckFailed":
                return "not_held"
            _pause(attempt)
        raise ConcurrentChange("reservation did not finish (transaction conflicts)")

    # --- items -----------------------------------------------------------------------------------
    def _balance_update(
        self,
        sku: str,
        location: str,
        delta: Delta,
        now: str,
        seen: Balance | None,
        movement: InventoryMovement | None,
    ) -> dict[str, Any]:
        adds = {
            "on_hand": delta.on_hand,
            "reserved": delta.reserved,
            "free": delta.free,
            "incoming": delta.incoming,
        }
        values: dict[str, Any] = {":now": {"S": now}}
        terms = []
        names: dict[str, str] = {}
        for name, amount in adds.items():
            if amount:
                terms.append(f"#{name} :{name}")  # `free` is a DynamoDB reserved word
                names[f"#{name}"] = name
                values[f":{name}"] = {"N": str(amount)}
        expression = "SET updated_at = :now"
        if delta.count_version is not None:
            expression += ", count_version = :cv"
            values[":cv"] = {"N": str(delta.count_version)}
        if terms:
            expression += " ADD " + ", ".join(terms)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": balance_key(sku, location),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if names:
            update["ExpressionAttributeNames"] = names
        conditions: list[str] = []
        if movement is not None and seen is not None and movement.kind == "count":
            if seen.on_hand == 0 and seen.count_version is None:
                conditions.append("(attribute_not_exists(on_hand) OR on_hand = :seen)")
            else:
                conditions.append("on_hand = :seen")
            values[":seen"] = {"N": str(seen.on_hand)}
            conditions.append("(attribute_not_exists(count_version) OR count_version < :cv)")
        if movement is not None and delta.incoming < 0:
            conditions.append("incoming >= :take")
            values[":take"] = {"N": str(-delta.incoming)}
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return {"Update": update}

    def _movement_put(
        self,
        source: str,
        event_id: str,
        occurred_at: datetime,
        movement: InventoryMovement,
        delta: Delta | None,
        now: str,
    ) -> dict[str, Any]:
        applied = delta or Delta()
        return self._history(
            movement.sku,
            movement.location,
            occurred_at,
            source,
            event_id,
            movement.kind if delta is not None else f"{movement.kind} (superseded)",
            now,
            on_hand=applied.on_hand,
            reserved=applied.reserved,
            incoming=applied.incoming,
            quantity=movement.quantity,
            counterpart=movement.counterpart,
            reservation_id=movement.reservation_id,
            source_version=movement.source_version,
        )

    def _history(
        self,
        sku: str,
        location: str,
        occurred_at: datetime,
        source: str,
        event_id: str,
        kind: str,
        now: str,
        **values: Any,
    ) -> dict[str, Any]:
        item = {
            "pk": f"MOV#{sku}#{location}",
            "sk": f"{_text(occurred_at)}#{source}#{event_id}",
            "kind": kind,
            "source": source,
            "event_id": event_id,
            "recorded_at": now,
            **{k: v for k, v in values.items() if v is not None and v != 0},
        }
        return {"Put": {"TableName": self._table, "Item": {k: to_attr(v) for k, v in item.items()}}}


def _transfer_key(demand_id: str, attempt: int) -> dict[str, Any]:
    return {"pk": {"S": f"TRF#{demand_id}"}, "sk": {"S": f"T{attempt:04d}"}}


def _transfer(item: Mapping[str, Any]) -> Transfer:
    plain = from_item(item)
    return Transfer(
        demand_id=str(plain["pk"]).removeprefix("TRF#"),
        attempt=int(plain["attempt"]),
        sku=plain["sku"],
        quantity=int(plain["quantity"]),
        source=plain["source"],
        destination=plain["destination"],
        channel=plain["channel"],
        order_id=plain["order_id"],
        status=plain["status"],
        requested_at=datetime.fromisoformat(plain["requested_at"]),
        ack_by=datetime.fromisoformat(plain["ack_by"]),
        tried=tuple(plain.get("tried") or ()),
        reason=plain.get("reason"),
    )


class DynamoTransferStore:
    """Store transfers, in the same table as the ledger they hold stock in."""

    def __init__(self, client: Any, table: str, clock: Callable[[], datetime] | None = None) -> None:
        self._db = client
        self._table = table
        self._clock = clock or (lambda: datetime.now(UTC))

    def create_transfer(self, transfer: Transfer) -> bool:
        """False when this attempt exists already (a redelivered order)."""
        item = {
            **{k: v["S"] for k, v in _transfer_key(transfer.demand_id, transfer.attempt).items()},
            **{k: v for k, v in transfer.to_dict().items() if k not in ("transfer_id", "tried")},
            "tried": list(transfer.tried),
            "updated_at": _text(self._clock()),
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item={k: to_attr(v) for k, v in item.items() if v is not None},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def transfer(self, demand_id: str, attempt: int) -> Transfer | None:
        item = self._db.get_item(
            TableName=self._table, Key=_transfer_key(demand_id, attempt), ConsistentRead=True
        ).get("Item")
        return _transfer(item) if item else None

    def latest_transfer(self, demand_id: str) -> Transfer | None:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TRF#{demand_id}"}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items") or []
        return _transfer(items[0]) if items else None

    def set_transfer_status(
        self, transfer: Transfer, status: TransferStatus, allowed_from: frozenset[str], reason: str | None
    ) -> bool:
        """Move the status if it is still one of `allowed_from`; False when someone moved it first."""
        values: dict[str, Any] = {":status": {"S": status}, ":now": {"S": _text(self._clock())}}
        allowed = {f":from{i}": {"S": s} for i, s in enumerate(sorted(allowed_from))}
        values.update(allowed)
        expression = "SET #status = :status, updated_at = :now"
        if reason:
            expression += ", reason = :reason"
            values[":reason"] = {"S": reason[:500]}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_transfer_key(transfer.demand_id, transfer.attempt),
                UpdateExpression=expression,
                ConditionExpression=f"#status IN ({', '.join(allowed)})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def extend(self, reservation_id: str, expires_at: datetime) -> bool:
        """Hold a reservation longer (a store accepted its transfer); False when not held."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_reservation_key(reservation_id),
                UpdateExpression="SET expires_at = :at, held_until = :until",
                ConditionExpression="#status = :held",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":at": {"S": expires_at.isoformat()},
                    ":until": {"S": _text(expires_at)},
                    ":held": {"S": "held"},
                },
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def balance_images(record: Mapping[str, Any]) -> tuple[Balance | None, Balance | None] | None:
    """The old and new balance of an InventoryTable stream record (Lambda's shape); None when
    the record is not about a balance (reservations, marks, movements, transfers...)."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    pk, sk = keys.get("pk", {}).get("S", ""), keys.get("sk", {}).get("S", "")
    if not pk.startswith("SKU#") or not sk.startswith("LOC#"):
        return None
    sku, location = pk.removeprefix("SKU#"), sk.removeprefix("LOC#")
    images = record["dynamodb"]
    old = _balance(images["OldImage"], sku, location) if images.get("OldImage") else None
    new = _balance(images["NewImage"], sku, location) if images.get("NewImage") else None
    return old, new
