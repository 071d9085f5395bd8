"""Sync rules: configuration that operators change without a redeploy (rules file locally,
an SSM parameter in AWS). Everything has a sensible default, so `{}` is a valid rules file."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .identifiers import InvalidIdentifier, normalize_identifier
from .identity_graph import DEFAULT_MAX_LINKS_PER_TYPE, link_limit
from .incremental_pull import PullTables
from .inventory import InventoryRules
from .mapping import FieldRule
from .table_mapping import TableMapping
from .wecom_tags import TagRules

# Field mappings that ship with the project; the rules file's `mappings` replace them per
# (channel, event kind).
DEFAULT_MAPPINGS: dict[str, dict[str, list[dict[str, str]]]] = {
    "douyin": {
        "new_video_digg": [
            {"source": "content.digg_count", "target": "interaction_index", "transform": "int"},
            {"source": "content.digg_count", "target": "metrics.likes", "transform": "int"},
        ],
    },
}

# CDC table mappings that ship with the project (docs/cdc-table-mappings.md); a rules file entry
# for a table replaces the default for that table, and `null` switches it off.
DEFAULT_TABLE_MAPPINGS: dict[str, dict[str, Any]] = {
    # 聚石塔 order push (reference/tmall-jushita.md): the trade is the JSON text of jdp_response
    "sys_info.jdp_tb_trade": {
        "source": "tmall",
        "kind": "jdp_tb_trade",
        # tid is a BIGINT, which DMS writes in scientific notation past 16 digits: the JSON keeps it exact
        "primary_key": ["trade.tid"],
        "modified_column": "modified",
        "identifiers": {
            "trade.buyer_open_uid": {"type": "taobao_open_uid", "scope": "{seller_nick}"},
            "trade.receiver_mobile": {"type": "phone", "detach_on_delete": False},
        },
        "attributes": [
            {"source": "trade.receiver_name", "target": "name"},
            {"source": "trade.receiver_state", "target": "province"},
            {"source": "trade.receiver_city", "target": "city"},
        ],
        "order": {
            "order_id": "trade.tid",
            "status": "trade.status",
            "total": "trade.payment",
            "created_at": "trade.created",
            "lines": "trade.orders.order",
            "line_rules": [
                {"source": "oid", "target": "line_id", "transform": "str"},
                {"source": "num_iid", "target": "sku", "transform": "str"},
                {"source": "sku_id", "target": "sku", "transform": "str"},  # the SKU when the item has one
                {"source": "title", "target": "name"},
                {"source": "num", "target": "quantity"},
                {"source": "price", "target": "price"},
                {"source": "payment", "target": "amount"},
            ],
        },
    },
    # the documented store POS schema (config/pos_schema.sql)
    "pos.members": {
        "source": "pos",
        "kind": "member",
        "primary_key": ["member_no"],
        "modified_column": "updated_at",
        "identifiers": {
            "member_no": {"type": "member_no", "scope": "pos"},
            # other channels vouch for the phone too: a deleted member row keeps it linked
            "phone": {"type": "phone", "detach_on_delete": False},
        },
        "attributes": [
            {"source": "name", "target": "name"},
            {"source": "level", "target": "member_level"},
            {"source": "store", "target": "home_store"},
        ],
    },
    "pos.orders": {
        "source": "pos",
        "kind": "order",
        "primary_key": ["order_no"],
        "modified_column": "updated_at",
        "json_columns": ["lines"],
        "identifiers": {"member_no": {"type": "member_no", "scope": "pos"}},
        "attributes": [{"source": "store", "target": "last_store"}],
        "order": {
            "order_id": "order_no",
            "status": "status",
            "total": "total",
            "created_at": "created_at",
            "lines": "lines",
        },
    },
    # the POS's stock on hand: each row change is a count for the inventory lane
    "pos.stock": {
        "source": "pos",
        "kind": "stock",
        "primary_key": ["store", "sku"],
        "modified_column": "updated_at",
        "stock": {"sku": "sku", "quantity": "qty", "location": "store"},
    },
}

DEFAULT_SOURCE_RANK: dict[str, int] = {
    "mdm": 100,  # the master-data system is the highest authority
    "erp": 50,
    "pos": 50,
    "wecom": 30,
    "wechat_mp": 30,
    "tmall": 20,
    "douyin": 20,
    "doudian": 20,
    "youzan": 20,
}


class Rules(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    source_rank: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SOURCE_RANK))
    default_rank: int = Field(10, ge=0, le=9999)
    write_once_fields: frozenset[str] = frozenset({"contract_no"})
    identifier_blocklist: dict[str, frozenset[str]] = Field(default_factory=dict)
    max_identifiers_per_type: dict[str, int] = Field(
        default_factory=lambda: {"default": DEFAULT_MAX_LINKS_PER_TYPE}
    )
    default_phone_region: str = "CN"
    mappings: dict[str, dict[str, tuple[FieldRule, ...]]] = Field(default_factory=dict)
    # CDC source tables, "schema.table" -> mapping (None: the table's changes are skipped)
    table_mappings: dict[str, TableMapping | None] = Field(default_factory=dict)
    # tables read by the scheduled incremental pull (MySQL sources without binlog access)
    incremental_pull: PullTables = ()
    # profile attributes -> WeCom corp tags on the customer, for every following member
    wecom_tags: TagRules = Field(default_factory=TagRules)
    # stock locations (warehouses, stores, channel allocations), safety stock, reservation expiry
    inventory: InventoryRules = Field(default_factory=InventoryRules)

    @field_validator("source_rank")
    @classmethod
    def _ranks_in_range(cls, ranks: dict[str, int]) -> dict[str, int]:
        for source, rank in ranks.items():
            if not 0 <= rank <= 9999:
                raise ValueError(f"rank of {source!r} must be within 0..9999")
        return ranks

    def rank_of(self, source: str) -> int:
        return self.source_rank.get(source, self.default_rank)

    def is_write_once(self, field: str) -> bool:
        return field in self.write_once_fields

    def max_links(self, identifier_type: str) -> int:
        return link_limit(self.max_identifiers_per_type, identifier_type)

    def mapping_for(self, channel: str, kind: str) -> tuple[FieldRule, ...]:
        """The field rules for one channel's event kind: the rules file's, else the defaults."""
        configured = self.mappings.get(channel, {})
        if kind in configured:
            return configured[kind]
        return tuple(FieldRule.model_validate(r) for r in DEFAULT_MAPPINGS.get(channel, {}).get(kind, []))

    def table_mapping(self, table_key: str) -> TableMapping | None:
        """How a CDC source table ("schema.table") maps to events: the rules file's, else the
        shipped default; None for a table nobody mapped (its changes are skipped)."""
        if table_key in self.table_mappings:
            return self.table_mappings[table_key]
        return _default_table_mappings().get(table_key)

    def is_blocklisted(self, identifier_type: str, value: str) -> bool:
        return value in self._normalized_blocklist().get(identifier_type, frozenset())

    def _normalized_blocklist(self) -> dict[str, frozenset[str]]:
        cached: dict[str, frozenset[str]] | None = self.__dict__.get("_blocklist_cache")
        if cached is None:
            cached = {}
            for type_, values in self.identifier_blocklist.items():
                normalized = set()
                for value in values:
                    try:
                        # scope does not matter to a blocklist; "any" satisfies the types that need one
                        normalized.add(
                            normalize_identifier(type_, value, "any", self.default_phone_region).value
                        )
                    except InvalidIdentifier:
                        normalized.add(value)
                cached[type_] = frozenset(normalized)
            object.__setattr__(self, "_blocklist_cache", cached)
        return cached


@cache
def _default_table_mappings() -> dict[str, TableMapping]:
    return {key: TableMapping.model_validate(doc) for key, doc in DEFAULT_TABLE_MAPPINGS.items()}


def load_rules(document: dict[str, Any] | None) -> Rules:
    return Rules.model_validate(document or {})
