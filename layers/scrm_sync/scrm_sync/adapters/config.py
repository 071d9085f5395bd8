"""Runtime configuration read through Powertools Parameters, cached for `max_age` seconds, so
rules and credentials change without a redeploy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities import parameters

from ..domain.credentials import ChannelCredentials, load_credentials
from ..domain.rules import Rules, load_rules

Parsed = TypeVar("Parsed")


class _ParsedDocument(Generic[Parsed]):
    """A JSON document from a parameter store, parsed once per distinct value."""

    def __init__(self, fetch: Callable[[], Any], parse: Callable[[dict[str, Any]], Parsed]) -> None:
        self._fetch = fetch
        self._parse = parse
        self._last: tuple[Any, Parsed] | None = None

    def __call__(self) -> Parsed:
        document = self._fetch()
        if self._last is None or self._last[0] != document:
            self._last = (document, self._parse(document if isinstance(document, dict) else {}))
        return self._last[1]


class RulesFromParameter(_ParsedDocument[Rules]):
    def __init__(self, parameter_name: str, max_age: int) -> None:
        super().__init__(
            lambda: parameters.get_parameter(parameter_name, transform="json", max_age=max_age), load_rules
        )


class CredentialsFromSecret(_ParsedDocument[ChannelCredentials]):
    def __init__(self, secret_id: str, max_age: int) -> None:
        super().__init__(
            lambda: parameters.get_secret(secret_id, transform="json", max_age=max_age), load_credentials
        )
