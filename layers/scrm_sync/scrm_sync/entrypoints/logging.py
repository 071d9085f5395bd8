"""A Powertools Logger that never writes personal data in full.

Two layers, because a log line has two ways to carry personal data: known fields (``phone``,
``name``, ``address``... anywhere in the structured record) are erased with Powertools data
masking, and phone numbers inside any text (an exception message quoting an input value, say)
are shortened to their first three and last four digits, enough to correlate with a ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.utilities.data_masking import DataMasking

from ..domain.masking import mask_phones

PII_FIELDS = frozenset(
    {
        "phone",
        "mobile",
        "name",
        "nickname",
        "email",
        "address",
        "receiver_name",
        "receiver_mobile",
        "receiver_phone",
        "receiver_address",
        "remark_mobiles",
        "buyer_nick",
    }
)


def _keys(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _keys(item)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phones(value)
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


class PiiMaskingFormatter(LambdaPowertoolsFormatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._masking = DataMasking(raise_on_missing_field=False)

    def serialize(self, log: Any) -> str:  # the formatter's record: a dict
        record: dict[str, Any] = dict(log)
        present = PII_FIELDS.intersection(_keys(record))
        if present:
            record = self._masking.erase(record, fields=[f"$..{key}" for key in sorted(present)])
        return super().serialize(_scrub(record))


def pii_safe_logger(**kwargs: Any) -> Logger:
    """The Logger every handler uses (same options as Powertools' Logger)."""
    return Logger(logger_formatter=PiiMaskingFormatter(), **kwargs)
