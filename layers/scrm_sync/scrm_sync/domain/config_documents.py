"""The configuration documents operators edit without a redeploy: the sync rules (an SSM
parameter in AWS, config/rules.dev.json locally) and the channel credentials (a secret,
config/channels.dev.json locally).

One parser judges a document's text the same way everywhere (the functions, `scrm rules check`,
the local stack's file watcher): valid JSON, a JSON object, then the document's own loader
(`load_rules`, `load_credentials`), whose pydantic model holds the actual rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from .credentials import ChannelCredentials, load_credentials
from .rules import Rules, load_rules

Parsed = TypeVar("Parsed")

_PROBLEMS_IN_SUMMARY = 20  # an exception's text stays one readable log line

_JSON_TYPE_NAMES = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}


@dataclass(frozen=True)
class Problem:
    """One reason a document is invalid. `message` is pydantic's and may quote the document's own
    values (a custom validator's text): show it to the document's author, log `path` and `kind`."""

    path: str  # dotted field path; "" for the document as a whole
    kind: str  # pydantic's error type, or json_invalid / not_an_object
    message: str

    @property
    def where(self) -> str:
        return self.path or "(document)"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class NoValidConfiguration(RuntimeError):
    """The stored document is invalid and this execution environment has no earlier valid one
    (the API answers 503; queued work is retried)."""


class InvalidDocument(ValueError):
    """A document that fails validation. Its text names fields and error kinds only, never
    values, so it is safe in a log (pydantic's own errors quote the input, a secret included)."""

    def __init__(self, document: str, problems: tuple[Problem, ...]) -> None:
        self.document = document
        self.problems = problems
        shown = "; ".join(f"{p.where}: {p.kind}" for p in problems[:_PROBLEMS_IN_SUMMARY])
        more = len(problems) - _PROBLEMS_IN_SUMMARY
        super().__init__(f"invalid {document} document ({shown}{f'; {more} more' if more > 0 else ''})")


def _problems(exc: ValidationError) -> tuple[Problem, ...]:
    return tuple(
        Problem(".".join(map(str, error["loc"])), error["type"], error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    )


@dataclass(frozen=True)
class ConfigDocument(Generic[Parsed]):
    name: str  # "rules", "channels": in messages and metric names
    load: Callable[[dict[str, Any]], Parsed]

    @property
    def invalid_metric(self) -> str:
        """The metric counting rejected versions (RulesInvalid, ChannelsInvalid); template alarms."""
        return f"{self.name.capitalize()}Invalid"

    def parse(self, text: str | bytes) -> Parsed:
        """The document's model, or InvalidDocument listing every problem."""
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
            # json's messages give a position, never the text
            problem = Problem("", "json_invalid", f"not valid JSON ({exc})")
            raise InvalidDocument(self.name, (problem,)) from None
        if not isinstance(document, dict):
            kind = "null" if document is None else _JSON_TYPE_NAMES.get(type(document), "not an object")
            problem = Problem("", "not_an_object", f"must be a JSON object, not {kind}")
            raise InvalidDocument(self.name, (problem,))
        try:
            return self.load(document)
        except ValidationError as exc:
            raise InvalidDocument(self.name, _problems(exc)) from None  # the cause quotes the input


RULES: ConfigDocument[Rules] = ConfigDocument("rules", load_rules)
CHANNELS: ConfigDocument[ChannelCredentials] = ConfigDocument("channels", load_credentials)
