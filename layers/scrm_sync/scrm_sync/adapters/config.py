"""Runtime configuration read through Powertools Parameters, cached for `max_age` seconds, so
rules and credentials change without a redeploy."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from ..domain.credentials import ChannelCredentials, load_credentials
from ..domain.rules import Rules, load_rules


class RulesFromParameter:
    def __init__(self, parameter_name: str, max_age: int) -> None:
        self._name = parameter_name
        self._max_age = max_age
        self._last: tuple[Any, Rules] | None = None

    def __call__(self) -> Rules:
        document = parameters.get_parameter(self._name, transform="json", max_age=self._max_age)
        if self._last is None or self._last[0] != document:
            self._last = (document, load_rules(document if isinstance(document, dict) else {}))
        return self._last[1]


class CredentialsFromSecret:
    def __init__(self, secret_id: str, max_age: int) -> None:
        self._id = secret_id
        self._max_age = max_age
        self._last: tuple[Any, ChannelCredentials] | None = None

    def __call__(self) -> ChannelCredentials:
        document = parameters.get_secret(self._id, transform="json", max_age=self._max_age)
        if self._last is None or self._last[0] != document:
            self._last = (document, load_credentials(document if isinstance(document, dict) else {}))
        return self._last[1]
