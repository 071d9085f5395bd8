"""Python values <-> DynamoDB attribute values (boto3's serializers, with float support).

`to_attr` writes the common JSON-like values itself (text, booleans, null, small integers, maps
and lists: what events, evidence and timeline entries are made of) and hands everything else,
numbers with a fraction among them, to boto3's TypeSerializer. boto3's serializer checks every
value against a dozen types and builds a Decimal for every integer; on the sync's hot path that
was a third of the CPU spent on an event's evidence. The property test in
tests/unit/adapters/test_dynamo_codec.py holds both to the same output for any such value."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ..domain.storable import stored_decimal

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _dynamo_safe(value: Any) -> Any:
    if isinstance(value, float):
        return stored_decimal(value) if value == value else str(value)
    if isinstance(value, Mapping):
        return {k: _dynamo_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(v) for v in value]
    return value


_EXACT_INTEGER = 10**38  # DynamoDB numbers carry 38 significant digits; beyond, boto3 decides


def to_attr(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int) and -_EXACT_INTEGER < value < _EXACT_INTEGER:
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {k: to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    attr: dict[str, Any] = dict(_serializer.serialize(_dynamo_safe(value)))
    return attr


def to_item(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in mapping.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(_deserializer.deserialize(v)) for k, v in item.items()}


def plain(value: Any) -> Any:
    """Decimals back to int/float, sets to sorted lists: JSON-ready."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    return value
