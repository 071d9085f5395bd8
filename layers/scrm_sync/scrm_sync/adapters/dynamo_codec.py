"""Python values <-> DynamoDB attribute values (boto3's serializers, with float support)."""

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


def to_attr(value: Any) -> dict[str, Any]:
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
