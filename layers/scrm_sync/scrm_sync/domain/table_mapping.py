"""CDC table mappings: how one source table's row changes become canonical events.

Mappings are configuration, like the channels' field mappings: the rules file's `table_mappings`
(keyed "schema.table"), else the defaults shipped in rules.py. A row is first turned into a
*document*: its columns, with the mapping's JSON columns parsed, and for the 聚石塔 push table
(kind `jdp_tb_trade`) the pushed trade unwrapped as `trade`. Every path in a mapping (primary
key, modified column, identifiers, attribute rules, order fields) is a dot path into that
document, so `trade.receiver_mobile` reaches into the JSON text of `jdp_response`.

Each change maps to at most one event, with an id derived from the table, the primary key and
the change's position at the source: a change delivered twice maps to the same event id (and
services/cdc.py applies a change once).

A `stock` table (a store POS's or an ERP's stock per SKU and location) names no customer: each
row is what the source counts for one SKU at one location, either applied to the ledger as a
versioned `count` (the source is the authority for that location) or, with `report_only`, kept
as the source's reported stock that reconciliation compares with the ledger.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .cdc import MalformedChange, RowChange
from .events import IDENTIFIERS_REMOVED, INVENTORY, CanonicalEvent, Order, OrderLine, SourceName
from .identifiers import IDENTIFIER_TYPES, SCOPE_REQUIRED
from .inventory import LocationCode, SnapshotItem, StockSnapshot
from .mapping import FieldRule, apply_rules, value_at

TableKind = Literal["member", "order", "jdp_tb_trade", "stock"]
DeleteAction = Literal["detach_identifiers", "cancel_order", "ignore"]

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
DELETED_ORDER_STATUS: Final = "deleted"
UNKNOWN_ORDER_STATUS: Final = "unknown"
JDP_RESPONSE_COLUMN: Final = "jdp_response"
JDP_TRADE_PATH: Final = "jdp_response.trade_fullinfo_get_response.trade"

_MAX_EVENT_ID_LENGTH = 256
_MAX_IDENTIFIER_VALUE_LENGTH = 512
_MAX_ATTRIBUTE_TEXT_LENGTH = 4096
_SCOPE_REFERENCE = re.compile(r"\{([^{}]+)\}")
_ORDER_KINDS: Final = frozenset({"order", "jdp_tb_trade"})
_LINE_FIELDS: Final = frozenset(OrderLine.model_fields)
_MASK = "*"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierColumn(_Model):
    """The identifier a column (or path) holds."""

    type: str
    # fixed text ("pos"), or a template naming other paths of the row ("{seller_nick}"); an
    # identifier whose template cannot be filled is left out rather than linked unscoped
    scope: str | None = None
    # whether a deleted row (on_delete "detach_identifiers") takes this identifier off the profile;
    # false for values other sources vouch for too, such as a phone number
    detach_on_delete: bool = True

    @model_validator(mode="after")
    def _known_type_with_scope(self) -> IdentifierColumn:
        if self.type not in IDENTIFIER_TYPES:
            raise ValueError(f"unknown identifier type {self.type!r}")
        if SCOPE_REQUIRED[self.type] and not self.scope:
            raise ValueError(f"{self.type} needs a scope")
        return self

    def references(self) -> list[str]:
        return _SCOPE_REFERENCE.findall(self.scope or "")


DEFAULT_LINE_RULES: Final = (
    FieldRule(source="line_id", target="line_id", transform="str"),
    FieldRule(source="sku", target="sku", transform="str"),
    FieldRule(source="name", target="name"),
    FieldRule(source="quantity", target="quantity"),
    FieldRule(source="price", target="price"),
    FieldRule(source="amount", target="amount"),
)


class OrderColumns(_Model):
    """Where an order's fields are (paths); `lines` names a list (a JSON column or path)."""

    order_id: str
    status: str
    total: str | None = None
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")  # fixed: sources keep one currency per table
    created_at: str | None = None
    lines: str | None = None
    # each line item -> OrderLine fields (line_id, sku, name, quantity, price, amount); a later
    # rule for the same target wins when its path is present
    line_rules: tuple[FieldRule, ...] = DEFAULT_LINE_RULES

    @field_validator("line_rules")
    @classmethod
    def _targets_are_line_fields(cls, rules: tuple[FieldRule, ...]) -> tuple[FieldRule, ...]:
        unknown = sorted({r.target for r in rules} - _LINE_FIELDS)
        if unknown:
            raise ValueError(f"order line rules may only target {sorted(_LINE_FIELDS)}, not {unknown}")
        return rules


class StockColumns(_Model):
    """Where a stock row's fields are (paths), for tables of kind `stock`."""

    sku: str
    quantity: str  # units on hand at the location, as the source counts them
    location: str | None = None  # the column naming the location (a store code)...
    fixed_location: LocationCode | None = None  # ...or one location for the whole table
    # the source's codes -> the ledger's location names (a code not listed is used as it is)
    location_codes: dict[str, LocationCode] = Field(default_factory=dict)
    # an integer that grows with every change of the row (a row version or change counter); when
    # absent, the mapping's modified_column (as microseconds) orders the source's counts
    version: str | None = None
    # keep rows as the source's reported stock for reconciliation instead of applying them
    report_only: bool = False

    @model_validator(mode="after")
    def _one_location(self) -> StockColumns:
        if (self.location is None) == (self.fixed_location is None):
            raise ValueError("name either 'location' (a column) or 'fixed_location'")
        return self


class TableMapping(_Model):
    source: SourceName  # the canonical source name, which sets the field precedence rank
    kind: TableKind
    primary_key: tuple[str, ...] = Field(min_length=1)
    timezone: str = DEFAULT_TIMEZONE  # of naive DATETIME values
    modified_column: str | None = None  # the row's own last-change time, used as occurred_at
    json_columns: tuple[str, ...] = ()
    identifiers: dict[str, IdentifierColumn] = Field(default_factory=dict)  # none for stock tables
    attributes: tuple[FieldRule, ...] = ()
    order: OrderColumns | None = None
    stock: StockColumns | None = None
    on_delete: DeleteAction
    # a value containing "*" is a masked copy (138****8000, 王**): never an identifier, and
    # never written over a real attribute value
    masked_means_absent: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_delete_action(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("on_delete") is None:
            kind = data.get("kind")
            action = (
                "cancel_order"
                if kind in _ORDER_KINDS
                else "ignore"  # a deleted stock row is a SKU no longer listed there, not zero stock
                if kind == "stock"
                else "detach_identifiers"
            )
            return {**data, "on_delete": action}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {name!r}") from exc
        return name

    @field_validator("attributes")
    @classmethod
    def _profile_attributes_only(cls, rules: tuple[FieldRule, ...]) -> tuple[FieldRule, ...]:
        metrics = [r.target for r in rules if r.target.startswith("metrics.")]
        if metrics:
            raise ValueError(f"table attributes cannot target interaction metrics: {metrics}")
        return rules

    @model_validator(mode="after")
    def _order_fields_match_kind(self) -> TableMapping:
        if self.kind == "stock":
            return self._stock_table()
        if not self.identifiers:
            raise ValueError(f"a {self.kind} table needs at least one identifier column")
        if self.stock is not None:
            raise ValueError("only a stock table has 'stock' columns")
        if self.kind in _ORDER_KINDS and self.order is None:
            raise ValueError(f"a {self.kind} table needs 'order' columns")
        if self.kind == "member" and self.order is not None:
            raise ValueError("a member table has no 'order' columns")
        if self.on_delete == "cancel_order" and self.order is None:
            raise ValueError("on_delete 'cancel_order' needs 'order' columns")
        return self

    def _stock_table(self) -> TableMapping:
        if self.stock is None:
            raise ValueError("a stock table needs 'stock' columns")
        if self.identifiers or self.attributes or self.order is not None:
            raise ValueError("a stock table names no customer: no identifiers, attributes or order")
        if self.on_delete != "ignore":
            raise ValueError("a stock table's deleted rows are ignored (on_delete 'ignore')")
        if self.stock.version is None and self.modified_column is None:
            raise ValueError("a stock table needs stock.version or modified_column to order its counts")
        return self

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances by name


@dataclass(frozen=True, slots=True)
class MappedChange:
    event_id: str  # derived from the change, whether or not it makes an event
    events: list[CanonicalEvent]
    unchanged: bool = False  # an update that changed no mapped value
    without_identifiers: bool = False  # no identifier value to link it by (absent or masked)
    field_errors: tuple[str, ...] = ()  # paths whose values could not be used (never the values)
    reported: StockSnapshot | None = None  # a report_only stock row: the source's reported stock


def events_for_change(change: RowChange, mapping: TableMapping) -> list[CanonicalEvent]:
    return map_change(change, mapping).events


def map_change(change: RowChange, mapping: TableMapping) -> MappedChange:
    """The canonical event for one row change (raises MalformedChange for a row that cannot be
    read: a primary key, order id or JSON column that is missing or not JSON)."""
    document = row_document(change.row, mapping)
    event_id = change_event_id(change.table_key, _primary_key_text(document, mapping), change.position)
    if mapping.stock is not None:
        return _stock_change(change, mapping, mapping.stock, document, event_id)
    errors: list[str] = []
    content = _content(document, mapping, errors)
    event_type: str
    if change.operation == "delete":
        deleted = _on_delete(content, mapping)
        if deleted is None:
            return MappedChange(event_id, [], field_errors=tuple(errors))
        event_type, content = deleted
        occurred_at = change.committed_at  # the row's modified time is its last update, not the delete
    else:
        before = _before_content(change, mapping)
        if before is not None and before == content:
            return MappedChange(event_id, [], unchanged=True)
        content = _Content(
            content.identifiers, _without_unknown_values(content.attributes, before), content.order
        )
        if mapping.kind == "member":
            event_type = "profile.updated"
        else:
            event_type = "order.updated" if change.operation == "update" else "order.created"
        occurred_at = _occurred_at(document, mapping, change, errors)

    if not content.identifiers:
        return MappedChange(event_id, [], without_identifiers=True, field_errors=tuple(errors))
    payload: dict[str, Any] = {
        "event_id": event_id,
        "source": mapping.source,
        "type": event_type,
        "occurred_at": occurred_at,
        "identifiers": [identifier for _, identifier in content.identifiers],
        "attributes": content.attributes,
        "order": content.order,
    }
    try:
        event = CanonicalEvent.model_validate(payload)
    except ValidationError as exc:
        raise MalformedChange(f"not a valid canonical event: {_locations(exc)}") from None
    return MappedChange(event_id, [event], field_errors=tuple(errors))


def row_document(row: Mapping[str, Any], mapping: TableMapping) -> dict[str, Any]:
    """The row with its JSON columns parsed (and `trade` unwrapped for jdp_tb_trade)."""
    document = dict(row)
    json_columns = list(mapping.json_columns)
    if mapping.kind == "jdp_tb_trade" and JDP_RESPONSE_COLUMN not in json_columns:
        json_columns.append(JDP_RESPONSE_COLUMN)
    for column in json_columns:
        value = document.get(column)
        if isinstance(value, str | bytes | bytearray):
            try:
                document[column] = json.loads(value)
            except ValueError:
                # DMS limited-LOB mode truncates long text, which lands here too
                raise MalformedChange(f"column {column} is not JSON") from None
    if mapping.kind == "jdp_tb_trade":
        trade = value_at(document, JDP_TRADE_PATH)
        if not isinstance(trade, Mapping):
            raise MalformedChange(f"{JDP_RESPONSE_COLUMN} has no trade_fullinfo_get_response.trade object")
        document["trade"] = trade
    return document


def change_event_id(table_key: str, primary_key: str, position: str) -> str:
    """Deterministic: the same change read twice gets the same id, so the sync core dedupes it."""
    event_id = f"{table_key}:{primary_key}:{position}"
    if len(event_id) <= _MAX_EVENT_ID_LENGTH:
        return event_id
    digest = hashlib.sha256(f"{primary_key}:{position}".encode()).hexdigest()
    return f"{table_key[: _MAX_EVENT_ID_LENGTH - len(digest) - 1]}:{digest}"


# -- the mapped content of one row ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Content:
    identifiers: tuple[tuple[str, dict[str, str]], ...]  # (path, identifier as sent)
    attributes: dict[str, Any]
    order: Order | None = None


def _content(document: Mapping[str, Any], mapping: TableMapping, errors: list[str]) -> _Content:
    identifiers = []
    for path, column in mapping.identifiers.items():
        identifier = _identifier(document, path, column, errors)
        if identifier is not None:
            identifiers.append((path, identifier))
    order = _order(document, mapping, errors) if mapping.order is not None else None
    return _Content(tuple(identifiers), _attributes(document, mapping, errors), order)


def _before_content(change: RowChange, mapping: TableMapping) -> _Content | None:
    """The mapped content of an update's before-image, when the source sent a readable one."""
    if change.operation != "update" or change.before is None:
        return None
    try:
        return _content(row_document(change.before, mapping), mapping, [])
    except MalformedChange:
        return None  # e.g. DMS leaves LOB columns out of before-images


def _on_delete(content: _Content, mapping: TableMapping) -> tuple[str, _Content] | None:
    """The event type and content a deleted row makes, per the mapping's on_delete; None for
    nothing to do. A deleted row writes no attributes: it says nothing new about the customer."""
    match mapping.on_delete:
        case "detach_identifiers":
            detachable = tuple(
                (path, identifier)
                for path, identifier in content.identifiers
                if mapping.identifiers[path].detach_on_delete
            )
            return (IDENTIFIERS_REMOVED, _Content(detachable, {})) if detachable else None
        case "cancel_order" if content.order is not None:
            deleted = content.order.model_copy(update={"status": DELETED_ORDER_STATUS})
            return "order.updated", _Content(content.identifiers, {}, deleted)
    return None  # "ignore"


def _without_unknown_values(attributes: dict[str, Any], before: _Content | None) -> dict[str, Any]:
    """A NULL column is no information, except where an update cleared a value it had: only then
    is None written (and clears the field)."""
    had_value = {name for name, value in (before.attributes if before else {}).items() if value is not None}
    return {name: value for name, value in attributes.items() if value is not None or name in had_value}


def _identifier(
    document: Mapping[str, Any], path: str, column: IdentifierColumn, errors: list[str]
) -> dict[str, str] | None:
    value = _text(value_at(document, path))
    if value is None or _MASK in value:
        return None  # a masked value is no identifier (and must never be linked)
    if len(value) > _MAX_IDENTIFIER_VALUE_LENGTH:
        errors.append(f"{path}: too long for an identifier")
        return None
    identifier = {"type": column.type, "value": value}
    if column.scope:
        scope = column.scope
        for reference in column.references():
            filled = _text(value_at(document, reference))
            if filled is None:
                return None  # an identifier in an unknown scope would link the wrong customers
            scope = scope.replace(f"{{{reference}}}", filled)
        identifier["scope"] = scope
    return identifier


def _attributes(document: Mapping[str, Any], mapping: TableMapping, errors: list[str]) -> dict[str, Any]:
    mapped = apply_rules(mapping.attributes, document)
    errors.extend(mapped.errors)
    attributes: dict[str, Any] = {}
    for name, value in mapped.attributes.items():
        if isinstance(value, Decimal | datetime | date):
            value = value.isoformat() if isinstance(value, date) else str(value)
        if isinstance(value, str) and mapping.masked_means_absent and _MASK in value:
            continue
        if isinstance(value, str) and len(value) > _MAX_ATTRIBUTE_TEXT_LENGTH:
            errors.append(f"{name}: longer than {_MAX_ATTRIBUTE_TEXT_LENGTH} characters")
            continue
        if value is not None and not isinstance(value, str | bool | int | float):
            errors.append(f"{name}: a {type(value).__name__} is not an attribute value")
            continue
        attributes[name] = value
    return attributes


def _order(document: Mapping[str, Any], mapping: TableMapping, errors: list[str]) -> Order:
    columns = mapping.order
    assert columns is not None
    order_id = _text(value_at(document, columns.order_id))
    if order_id is None:
        raise MalformedChange(f"order id {columns.order_id} is missing")
    created_at = None
    if columns.created_at is not None:
        created_at = _moment(value_at(document, columns.created_at), mapping.zone)
        if created_at is None and _text(value_at(document, columns.created_at)) is not None:
            errors.append(f"{columns.created_at}: not a date and time")
    try:
        return Order(
            order_id=order_id,
            status=_text(value_at(document, columns.status)) or UNKNOWN_ORDER_STATUS,
            total=_decimal(document, columns.total, errors),
            currency=columns.currency,
            created_at=created_at,
            lines=_lines(document, columns, errors),
        )
    except ValidationError as exc:
        raise MalformedChange(f"order fields invalid: {_locations(exc)}") from None


def _lines(document: Mapping[str, Any], columns: OrderColumns, errors: list[str]) -> list[OrderLine]:
    if columns.lines is None:
        return []
    items = value_at(document, columns.lines)
    if items is None:
        return []
    if not isinstance(items, list):
        errors.append(f"{columns.lines}: not a list of lines")
        return []
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            errors.append(f"{columns.lines}.{index}: not an object")
            continue
        mapped = apply_rules(columns.line_rules, item)
        errors.extend(f"{columns.lines}.{index}.{error}" for error in mapped.errors)
        try:
            lines.append(
                OrderLine.model_validate({k: v for k, v in mapped.attributes.items() if v is not None})
            )
        except ValidationError as exc:
            errors.append(f"{columns.lines}.{index}: invalid {_locations(exc)}")
    return lines


def _occurred_at(
    document: Mapping[str, Any], mapping: TableMapping, change: RowChange, errors: list[str]
) -> datetime:
    """The row's own modified time when the mapping names one (the time it happened at the
    source, which field precedence needs), else the commit time."""
    if mapping.modified_column is None:
        return change.committed_at
    moment = _moment(value_at(document, mapping.modified_column), mapping.zone)
    if moment is None:
        errors.append(f"{mapping.modified_column}: not a date and time, used the commit time")
        return change.committed_at
    return moment


def _primary_key_text(document: Mapping[str, Any], mapping: TableMapping) -> str:
    parts = []
    for path in mapping.primary_key:
        value = _text(value_at(document, path))
        if value is None:
            raise MalformedChange(f"primary key {path} is missing")
        parts.append(value)
    return ",".join(parts)


# -- stock tables ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _StockRow:
    sku: str
    location: str
    quantity: int


def _stock_change(
    change: RowChange,
    mapping: TableMapping,
    columns: StockColumns,
    document: Mapping[str, Any],
    event_id: str,
) -> MappedChange:
    if change.operation == "delete":
        return MappedChange(event_id, [])
    row = _stock_row(document, columns)
    if change.operation == "update" and change.before is not None:
        try:
            if _stock_row(row_document(change.before, mapping), columns) == row:
                return MappedChange(event_id, [], unchanged=True)
        except MalformedChange:
            pass  # an unreadable before-image: treat the change as a change
    errors: list[str] = []
    taken_at = _occurred_at(document, mapping, change, errors)
    version = _stock_version(document, mapping, columns, taken_at)
    try:
        if columns.report_only:
            reported = StockSnapshot(
                source=mapping.source,
                location=row.location,
                version=version,
                taken_at=taken_at,
                items=[SnapshotItem(sku=row.sku, quantity=row.quantity)],
            )
            return MappedChange(event_id, [], field_errors=tuple(errors), reported=reported)
        event = CanonicalEvent.model_validate(
            {
                "event_id": event_id,
                "source": mapping.source,
                "type": INVENTORY,
                "occurred_at": taken_at,
                "inventory": {
                    "kind": "count",
                    "sku": row.sku,
                    "location": row.location,
                    "quantity": row.quantity,
                    "source_version": version,
                },
            }
        )
    except ValidationError as exc:
        raise MalformedChange(f"not a valid stock row: {_locations(exc)}") from None
    return MappedChange(event_id, [event], field_errors=tuple(errors))


def _stock_row(document: Mapping[str, Any], columns: StockColumns) -> _StockRow:
    sku = _text(value_at(document, columns.sku))
    if sku is None:
        raise MalformedChange(f"stock sku {columns.sku} is missing")
    if columns.location is not None:
        code = _text(value_at(document, columns.location))
        if code is None:
            raise MalformedChange(f"stock location {columns.location} is missing")
        location = columns.location_codes.get(code, code)
    else:
        assert columns.fixed_location is not None
        location = columns.fixed_location
    quantity = _whole_number(value_at(document, columns.quantity))
    if quantity is None or quantity < 0:
        # a negative count (a POS that sold before the receipt was booked) is no count either
        raise MalformedChange(f"stock quantity {columns.quantity} is not a whole number >= 0")
    return _StockRow(sku, location, quantity)


def _stock_version(
    document: Mapping[str, Any], mapping: TableMapping, columns: StockColumns, taken_at: datetime
) -> int:
    if columns.version is not None:
        version = _whole_number(value_at(document, columns.version))
        if version is None or version < 0:
            raise MalformedChange(f"stock version {columns.version} is not a whole number >= 0")
        return version
    if (
        mapping.modified_column is None
        or _moment(value_at(document, mapping.modified_column), mapping.zone) is None
    ):
        raise MalformedChange(f"stock row has no readable {mapping.modified_column} to order it by")
    # microseconds since the epoch: a later change of the row is a larger version
    return (taken_at - _EPOCH) // timedelta(microseconds=1)  # exact, unlike float seconds


def _whole_number(value: Any) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return int(number) if number.is_finite() and number == number.to_integral_value() else None


# -- value conversions ----------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    """A scalar as text; None for absent, NULL, empty and non-scalar values."""
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    return text or None


def _moment(value: Any, zone: tzinfo) -> datetime | None:
    """A DATETIME value: naive ones are in the mapping's timezone; zero dates are no time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _decimal(document: Mapping[str, Any], path: str | None, errors: list[str]) -> Decimal | None:
    if path is None:
        return None
    text = _text(value_at(document, path))
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        errors.append(f"{path}: not a number")
        return None
    if not amount.is_finite():
        errors.append(f"{path}: not a number")
        return None
    return amount


def _locations(exc: ValidationError) -> str:
    """Where validation failed, without the input values (they may be personal data)."""
    return ", ".join(
        sorted({".".join(str(part) for part in error["loc"]) or "value" for error in exc.errors()})
    )
