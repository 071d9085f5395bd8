"""Runtime configuration read through Powertools Parameters, cached for `max_age` seconds, so
rules and credentials change without a redeploy.

A document that fails validation never replaces the last valid one (configuration cannot take
the service down): the execution environment keeps serving what it parsed last, logs the
problems (field paths and error kinds, never values) and counts the rejected version once in
`RulesInvalid` / `ChannelsInvalid`, which the template alarms on. When a valid document is
applied again, the same metric gets a 0, which returns the alarm to OK.

With no valid document at all (a cold start while the stored one is invalid) there is nothing
safe to serve, so reading fails: the shipped default rules would rank sources, map fields and
skip blocklists differently from what the operator configured, and merges made that way are
not undone by fixing the document later; empty credentials would disable every channel. A
failed read fails the sync (the message stays in its queue and is retried once the document
is fixed) or the request (5xx), and the alarm is already raised.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.exceptions import SchemaValidationError
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from ..domain.config_documents import (
    CHANNELS,
    RULES,
    ConfigDocument,
    InvalidDocument,
    NoValidConfiguration,
)
from ..domain.credentials import ChannelCredentials
from ..domain.rules import Rules

log = logging.getLogger(__name__)

Parsed = TypeVar("Parsed")


class LastValidDocument(Generic[Parsed]):
    """The document behind `fetch` (its raw text), parsed once per distinct version; a version
    that fails validation is rejected and the last valid one keeps being served."""

    def __init__(
        self, kind: ConfigDocument[Parsed], fetch: Callable[[], str | bytes], max_age: float = 0
    ) -> None:
        self._kind = kind
        self._fetch = fetch
        # the fetch's own cache lives as long; within it a valid document is served without
        # asking (Powertools' cached lookup reads a dozen environment variables per call)
        self._max_age = max_age
        self._fetched_at = -math.inf
        self._lock = threading.Lock()  # a batch's worker threads share one instance
        self._valid: tuple[str | bytes, Parsed] | None = None  # (text, parsed) served now
        self._rejected: str | bytes | None = None  # the version last rejected, while it is current

    def __call__(self) -> Parsed:
        valid = self._valid
        if (
            valid is not None
            and self._rejected is None
            and time.monotonic() - self._fetched_at < self._max_age
        ):
            return valid[1]
        text = self._fetch()
        fetched_at = time.monotonic()
        if valid is not None and valid[0] == text and self._rejected is None:
            self._fetched_at = fetched_at
            return valid[1]  # nothing changed (Powertools caches the text)
        with self._lock:
            parsed = self._refresh(text)
            if self._rejected is None:
                self._fetched_at = fetched_at
            return parsed

    def _refresh(self, text: str | bytes) -> Parsed:
        if self._valid is not None and self._valid[0] == text:  # put back as it was
            self._serving_current()
            return self._valid[1]
        if text == self._rejected:
            return self._last_valid(None)
        try:
            parsed = self._kind.parse(text)
        except InvalidDocument as invalid:
            self._rejected = text
            _count(self._kind.invalid_metric, 1)
            return self._last_valid(invalid)
        cold_start = self._valid is None and self._rejected is None
        self._valid = (text, parsed)
        self._serving_current(changed=not cold_start)
        return parsed

    def _serving_current(self, changed: bool = False) -> None:
        """The stored document is the one served: after a rejected version, or for a new valid
        version, count a 0 so the alarm returns to OK (not at a cold start: nothing to clear)."""
        if self._rejected is not None or changed:
            self._rejected = None
            _count(self._kind.invalid_metric, 0)

    def _last_valid(self, invalid: InvalidDocument | None) -> Parsed:
        """The last valid document, logging a newly rejected version once."""
        name = self._kind.name
        if self._valid is None:
            if invalid is not None:
                log.error(
                    "%s; no valid %s document to fall back on, reads fail until it is fixed",
                    invalid,
                    name,
                    extra={"document": name, "problems": _summary(invalid)},
                )
            raise NoValidConfiguration(
                f"the stored {name} document is invalid and no valid one was read before: "
                f"fix it (`scrm {name} check FILE` validates one)"
            )
        if invalid is not None:
            log.error(
                "%s; still serving the last valid %s document",
                invalid,
                name,
                extra={"document": name, "problems": _summary(invalid)},
            )
        return self._valid[1]


def _summary(invalid: InvalidDocument) -> list[str]:
    return [f"{p.where}: {p.kind}" for p in invalid.problems]


def _count(metric: str, value: int) -> None:
    """An EMF document of its own: the handler's Metrics object is flushed per invocation by the
    handler, and this count belongs to no particular invocation."""
    metrics = EphemeralMetrics()
    metrics.add_metric(metric, MetricUnit.Count, value)
    try:
        metrics.flush_metrics()
    except SchemaValidationError:  # no POWERTOOLS_METRICS_NAMESPACE (a tool, not a function)
        log.warning("%s not counted: POWERTOOLS_METRICS_NAMESPACE is not set", metric)


def _text(value: str | bytes | dict | None) -> str | bytes:
    """The raw document; a parameter or secret always holds text (or binary) when fetched raw."""
    if isinstance(value, str | bytes):
        return value
    raise TypeError(f"expected the document's text, got {type(value).__name__}")


class RulesFromParameter(LastValidDocument[Rules]):
    def __init__(self, parameter_name: str, max_age: int) -> None:
        # fetched raw, so the cache holds invalid JSON too: no fetch per call while it is stored
        super().__init__(
            RULES, lambda: _text(parameters.get_parameter(parameter_name, max_age=max_age)), max_age
        )


class CredentialsFromSecret(LastValidDocument[ChannelCredentials]):
    def __init__(self, secret_id: str, max_age: int) -> None:
        super().__init__(CHANNELS, lambda: _text(parameters.get_secret(secret_id, max_age=max_age)), max_age)


class SaltFromSecret:
    """The suppression list's salt (domain/privacy.py): generated into its own secret when the
    stack is created, and never changed (a new salt would forget every suppression), so it is
    read once per execution environment. The secret holds {"salt": "..."}."""

    def __init__(self, secret_id: str) -> None:
        self._secret_id = secret_id
        self._salt: bytes | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        if self._salt is None:
            with self._lock:
                if self._salt is None:
                    text = _text(parameters.get_secret(self._secret_id, max_age=3600))
                    salt = str(json.loads(text).get("salt") or "")
                    if len(salt) < 32:
                        raise NoValidConfiguration("the privacy salt secret holds no salt of 32+ characters")
                    self._salt = salt.encode("utf-8")
        return self._salt


def forget_parameter_clients() -> None:
    """Drop Powertools' default parameter providers: each holds a boto3 client built from the
    environment as it was (its endpoint, its region), so a reset must rebuild them too."""
    DEFAULT_PROVIDERS.clear()
