"""Cached WeCom credentials: one copy per execution environment, or one shared by every Lambda.

`ProcessCredentialCache` keeps credentials in this process (one refresh at a time per name).
`DynamoCredentialCache` keeps them in the checkpoints table (pk = "wecom-credential#<name>"),
so all execution environments share one copy and one refresh: the refreshing caller holds a
lease (`lease_owner`, `lease_until`) taken with a conditional write that also requires the value
it saw to be still the current one, so a caller that read a value just before somebody else
replaced it cannot refresh a second time. A lease whose holder died expires after
`lease_seconds`. `expires_at` doubles as the table's TTL attribute. Which step to take (use,
refresh, wait) is decided in `domain.shared_credentials`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.shared_credentials import CachedCredential, Step, expiry, next_step
from .aws_calls import aws_call, error_code

# fetch() -> (value, WeCom's expires_in)
Fetch = Callable[[], tuple[str, Any]]
_KEY_PREFIX = "wecom-credential#"


class CredentialUnavailable(RuntimeError):
    """The shared cache could not be read or written, or a refresh elsewhere never finished."""


class ProcessCredentialCache:
    """Credentials shared by the threads of one process; refreshes are serialized per name."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, CachedCredential] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str, fetch: Fetch, rejected: str | None = None) -> str:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            cached = self._values.get(name)
            if next_step(cached, self._clock(), False, rejected) is Step.USE and cached is not None:
                return cached.value
            fetched_at = self._clock()
            value, expires_in = fetch()
            self._values[name] = CachedCredential(value, expiry(fetched_at, expires_in))
            return value


class DynamoCredentialCache:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease_seconds: float = 10.0,
        poll_seconds: float = 0.05,
        max_wait_seconds: float = 15.0,
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._max_wait_seconds = max_wait_seconds
        self._owner = uuid.uuid4().hex  # this execution environment
        self._memo: dict[str, CachedCredential] = {}  # saves a read per call while fresh
        self._memo_lock = threading.Lock()

    def get(self, name: str, fetch: Fetch, rejected: str | None = None) -> str:
        with self._memo_lock:
            memo = self._memo.get(name)
        if memo is not None and next_step(memo, self._clock(), False, rejected) is Step.USE:
            return memo.value
        waits_left = max(1, round(self._max_wait_seconds / self._poll_seconds))
        while True:
            cached, leased_until, holder = self._read(name)
            now = self._clock()
            elsewhere = leased_until is not None and leased_until > now and holder != self._owner
            step = next_step(cached, now, elsewhere, rejected)
            if step is Step.USE and cached is not None:
                self._remember(name, cached)
                return cached.value
            if step is Step.REFRESH and self._take_lease(name, cached, now):
                return self._refresh(name, fetch)
            if step is Step.WAIT:
                waits_left -= 1
                if waits_left <= 0:
                    raise CredentialUnavailable(f"{name}: a refresh elsewhere did not finish in time")
                self._sleep(self._poll_seconds)

    def _refresh(self, name: str, fetch: Fetch) -> str:
        fetched_at = self._clock()
        try:
            value, expires_in = fetch()
        except BaseException:
            self._release(name)
            raise
        fresh = CachedCredential(value, expiry(fetched_at, expires_in))
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(name),
                UpdateExpression="SET #value = :value, expires_at = :expires REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeNames={"#value": "value"},
                ExpressionAttributeValues={
                    ":value": {"S": value},
                    ":expires": {"N": str(int(fresh.expires_at))},  # TTL takes whole seconds
                    ":me": {"S": self._owner},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise CredentialUnavailable(error_code(exc)) from exc
            # the lease ran out and somebody else refreshed too: our value is valid all the same
        except BotoCoreError as exc:
            raise CredentialUnavailable(type(exc).__name__) from exc
        self._remember(name, fresh)
        return value

    def _read(self, name: str) -> tuple[CachedCredential | None, float | None, str | None]:
        item = self._call("get_item", TableName=self._table, Key=_key(name), ConsistentRead=True).get(
            "Item", {}
        )
        cached = None
        if "value" in item and "expires_at" in item:
            cached = CachedCredential(item["value"]["S"], float(item["expires_at"]["N"]))
        leased_until = float(item["lease_until"]["N"]) if "lease_until" in item else None
        holder = item["lease_owner"]["S"] if "lease_owner" in item else None
        return cached, leased_until, holder

    def _take_lease(self, name: str, seen: CachedCredential | None, now: float) -> bool:
        values: dict[str, Any] = {
            ":me": {"S": self._owner},
            ":now": {"N": _number(now)},
            ":until": {"N": _number(now + self._lease_seconds)},
        }
        unchanged = "attribute_not_exists(#value)"
        if seen is not None:
            unchanged = "#value = :seen"
            values[":seen"] = {"S": seen.value}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(name),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=(
                    "(attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me)"
                    f" AND {unchanged}"
                ),
                ExpressionAttributeNames={"#value": "value"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False  # somebody else leased or replaced it first: read again
            raise CredentialUnavailable(error_code(exc)) from exc
        except BotoCoreError as exc:
            raise CredentialUnavailable(type(exc).__name__) from exc
        return True

    def _release(self, name: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):  # the lease also expires by itself
            self._db.update_item(
                TableName=self._table,
                Key=_key(name),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues={":me": {"S": self._owner}},
            )

    def _remember(self, name: str, credential: CachedCredential) -> None:
        with self._memo_lock:
            self._memo[name] = credential

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return aws_call(self._db, operation, CredentialUnavailable, **kwargs)


def _key(name: str) -> dict[str, Any]:
    return {"pk": {"S": _KEY_PREFIX + name}}


def _number(value: float) -> str:
    return f"{value:.3f}"
