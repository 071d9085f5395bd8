"""Row changes -> canonical events through the table mappings (shipped defaults and rules files)."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from scrm_sync.domain.cdc import MalformedChange
from scrm_sync.domain.rules import DEFAULT_TABLE_MAPPINGS, load_rules
from scrm_sync.domain.table_mapping import TableMapping, change_event_id, events_for_change, map_change

from tests.cdc_factories import (
    COMMITTED,
    OPEN_UID,
    SELLER,
    TID,
    change,
    jdp_row,
    pos_member,
    pos_order,
    trade,
)

RULES = load_rules({})
JDP = RULES.table_mapping("sys_info.jdp_tb_trade")
MEMBERS = RULES.table_mapping("pos.members")
ORDERS = RULES.table_mapping("pos.orders")
SHANGHAI_OFFSET = 8 * 3600


def identifiers(event):
    return [(i.type, i.value, i.scope) for i in event.identifiers]


# -- 聚石塔 jdp_tb_trade ------------------------------------------------------------------------
def test_a_pushed_trade_becomes_an_order_of_the_buyer():
    (event,) = events_for_change(change("sys_info.jdp_tb_trade", "insert", jdp_row()), JDP)
    assert event.type == "order.created" and event.source == "tmall"
    assert identifiers(event) == [("taobao_open_uid", OPEN_UID, SELLER), ("phone", "13800138000", None)]
    assert event.attributes == {"name": "王小明", "province": "浙江省", "city": "杭州市"}
    order = event.order
    assert order.order_id == str(TID)  # exact, from the JSON: DMS rounds the BIGINT column
    assert order.status == "WAIT_SELLER_SEND_GOODS"
    assert order.total == Decimal("398.00") and order.currency == "CNY"
    assert order.created_at == datetime(2026, 11, 10, 16, 0, 5, tzinfo=UTC)  # Asia/Shanghai
    first, second = order.lines
    assert (first.line_id, first.sku, first.name) == (str(TID + 1), "4987654321001", "空气蜜粉 定妆散粉 8g")
    assert (first.quantity, first.price, first.amount) == (1, Decimal("199.00"), Decimal("189.00"))
    assert (second.sku, second.quantity, second.amount) == ("612345678902", 2, Decimal("209.00"))


def test_the_trade_time_at_taobao_is_when_it_happened():
    row_change = change("sys_info.jdp_tb_trade", "insert", jdp_row(), committed_at=COMMITTED)
    (event,) = events_for_change(row_change, JDP)
    assert event.occurred_at == datetime(2026, 11, 10, 16, 0, 31, tzinfo=UTC)
    assert event.occurred_at.utcoffset().total_seconds() == SHANGHAI_OFFSET


def test_a_masked_receiver_is_neither_an_identifier_nor_a_name():
    masked = trade(receiver_mobile="138****8000", receiver_name="王**")
    (event,) = events_for_change(change("sys_info.jdp_tb_trade", "insert", jdp_row(masked)), JDP)
    assert identifiers(event) == [("taobao_open_uid", OPEN_UID, SELLER)]
    assert "name" not in event.attributes and event.attributes["city"] == "杭州市"


def test_a_trade_with_nothing_to_link_is_reported_not_raised():
    anonymous = trade(receiver_mobile="138****8000", buyer_open_uid=None)
    mapped = map_change(change("sys_info.jdp_tb_trade", "insert", jdp_row(anonymous)), JDP)
    assert mapped.events == [] and mapped.without_identifiers


def test_an_open_uid_without_its_seller_is_left_out_rather_than_linked_unscoped():
    (event,) = events_for_change(change("sys_info.jdp_tb_trade", "insert", jdp_row(seller_nick=None)), JDP)
    assert [i.type for i in event.identifiers] == ["phone"]


def test_a_status_change_is_an_order_update_with_its_own_event_id():
    paid = change("sys_info.jdp_tb_trade", "insert", jdp_row(), position="8100000001:1")
    shipped_trade = trade("WAIT_BUYER_CONFIRM_GOODS", modified="2026-11-11 10:15:07")
    before = {k: v for k, v in jdp_row().items() if k != "jdp_response"}  # DMS: no LOBs in before-images
    shipped = change(
        "sys_info.jdp_tb_trade", "update", jdp_row(shipped_trade), before=before, position="8100000002:1"
    )
    (created,) = events_for_change(paid, JDP)
    (updated,) = events_for_change(shipped, JDP)
    assert updated.type == "order.updated" and updated.order.status == "WAIT_BUYER_CONFIRM_GOODS"
    assert updated.order.order_id == created.order.order_id
    assert created.event_id == f"sys_info.jdp_tb_trade:{TID}:8100000001:1"
    assert updated.event_id == f"sys_info.jdp_tb_trade:{TID}:8100000002:1"
    assert updated.occurred_at > created.occurred_at


def test_the_same_change_read_twice_maps_to_the_same_event():
    row = jdp_row()
    first = events_for_change(change("sys_info.jdp_tb_trade", "insert", row, position="77:3"), JDP)
    again = events_for_change(change("sys_info.jdp_tb_trade", "insert", row, position="77:3"), JDP)
    assert first == again


@pytest.mark.parametrize(
    "jdp_response",
    [
        '{"trade_fullinfo_get_response": {"trade": {"tid": 3912345678901234567, "receiver_mobile": "1380',
        '{"error_response": {"code": 27, "msg": "Invalid session"}}',
        '{"trade_fullinfo_get_response": {"trade": "王小明 13800138000"}}',
        None,
    ],
    ids=["truncated LOB", "error response", "trade not an object", "NULL"],
)
def test_an_unreadable_jdp_response_is_a_malformed_change_that_names_no_values(jdp_response):
    row_change = change("sys_info.jdp_tb_trade", "insert", jdp_row(jdp_response=jdp_response))
    with pytest.raises(MalformedChange) as raised:
        events_for_change(row_change, JDP)
    assert "jdp_response" in str(raised.value)
    assert "1380" not in str(raised.value) and "王" not in str(raised.value)


def test_a_deleted_trade_row_cancels_the_order_at_the_delete_time():
    deleted_at = datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
    (event,) = events_for_change(
        change("sys_info.jdp_tb_trade", "delete", jdp_row(), committed_at=deleted_at), JDP
    )
    assert event.type == "order.updated" and event.order.status == "deleted"
    assert event.order.order_id == str(TID) and event.attributes == {}
    assert event.occurred_at == deleted_at  # the row's modified time is its last update, not the delete


# -- POS members --------------------------------------------------------------------------------
def test_a_pos_member_row_updates_the_profile_it_names():
    (event,) = events_for_change(change("pos.members", "insert", pos_member()), MEMBERS)
    assert event.type == "profile.updated" and event.source == "pos"
    assert identifiers(event) == [("member_no", "M0001234", "pos"), ("phone", "138 0013 8000", None)]
    assert event.attributes == {"name": "王小明", "member_level": "gold", "home_store": "SH-017"}
    assert event.occurred_at == datetime(2026, 11, 2, 6, 5, 11, tzinfo=UTC)
    assert event.event_id.startswith("pos.members:M0001234:")


def test_a_null_column_is_no_information_unless_an_update_cleared_it():
    (inserted,) = events_for_change(change("pos.members", "insert", pos_member(level=None)), MEMBERS)
    assert "member_level" not in inserted.attributes
    cleared = change("pos.members", "update", pos_member(level=None), before=pos_member())
    (updated,) = events_for_change(cleared, MEMBERS)
    assert updated.attributes["member_level"] is None


def test_an_update_that_changes_no_mapped_value_makes_no_event():
    touched = pos_member(updated_at="2026-11-03 09:00:00.000")
    mapped = map_change(change("pos.members", "update", touched, before=pos_member()), MEMBERS)
    assert mapped.events == [] and mapped.unchanged
    renamed = change("pos.members", "update", pos_member(name="王晓明"), before=pos_member())
    assert [e.attributes["name"] for e in events_for_change(renamed, MEMBERS)] == ["王晓明"]


def test_an_update_without_a_before_image_is_applied():
    (event,) = events_for_change(change("pos.members", "update", pos_member()), MEMBERS)
    assert event.type == "profile.updated"


def test_a_deleted_member_row_detaches_its_member_number_but_not_the_shared_phone():
    deleted_at = datetime(2026, 12, 20, 1, 30, tzinfo=UTC)
    (event,) = events_for_change(
        change("pos.members", "delete", pos_member(), committed_at=deleted_at), MEMBERS
    )
    assert event.type == "identifiers.removed"
    assert identifiers(event) == [("member_no", "M0001234", "pos")]
    assert event.attributes == {} and event.occurred_at == deleted_at


def test_a_row_without_its_primary_key_is_malformed():
    with pytest.raises(MalformedChange, match="primary key member_no"):
        events_for_change(change("pos.members", "insert", pos_member(member_no=None)), MEMBERS)


# -- POS orders ---------------------------------------------------------------------------------
def test_a_pos_order_row_with_json_lines():
    (event,) = events_for_change(change("pos.orders", "insert", pos_order()), ORDERS)
    assert event.type == "order.created" and identifiers(event) == [("member_no", "M0001234", "pos")]
    assert event.attributes == {"last_store": "SH-017"}
    assert event.order.total == Decimal("359.00") and [line.sku for line in event.order.lines] == [
        "LIP-RED-01",
        "MASK-10",
    ]
    assert event.order.created_at == datetime(2026, 11, 2, 6, 5, 11, tzinfo=UTC)


def test_lines_already_decoded_by_the_reader_are_used_as_they_are():
    lines = [{"sku": "LIP-RED-01", "quantity": 3}]
    (event,) = events_for_change(change("pos.orders", "insert", pos_order(lines=lines)), ORDERS)
    assert [(line.sku, line.quantity) for line in event.order.lines] == [("LIP-RED-01", 3)]


def test_a_deleted_order_row_cancels_the_order():
    (event,) = events_for_change(change("pos.orders", "delete", pos_order()), ORDERS)
    assert event.type == "order.updated" and event.order.status == "deleted"
    assert event.attributes == {} and event.occurred_at == COMMITTED


def test_an_anonymous_walk_in_order_has_nothing_to_link():
    mapped = map_change(change("pos.orders", "insert", pos_order(member_no=None)), ORDERS)
    assert mapped.events == [] and mapped.without_identifiers


def test_unusable_values_are_reported_by_path_and_the_rest_applies():
    row = pos_order(total="abc", created_at="0000-00-00 00:00:00", lines='[{"sku": "A", "quantity": "x"}, 7]')
    mapped = map_change(change("pos.orders", "insert", row), ORDERS)
    (event,) = mapped.events
    assert event.order.total is None and event.order.created_at is None and event.order.lines == []
    assert set(mapped.field_errors) == {
        "total: not a number",
        "created_at: not a date and time",
        "lines.0: invalid quantity",
        "lines.1: not an object",
    }


def test_lines_that_are_not_json_make_the_change_malformed():
    with pytest.raises(MalformedChange, match="column lines is not JSON"):
        events_for_change(change("pos.orders", "insert", pos_order(lines="[{")), ORDERS)


# -- configuration ------------------------------------------------------------------------------
def test_a_rules_file_entry_replaces_the_default_for_that_table_and_null_switches_one_off():
    brand = json.loads(json.dumps(DEFAULT_TABLE_MAPPINGS["pos.members"]))
    brand["identifiers"]["member_no"]["scope"] = "brand-{store}"
    brand["timezone"] = "UTC"
    rules = load_rules({"table_mappings": {"pos.members": brand, "pos.orders": None}})
    assert rules.table_mapping("pos.orders") is None
    assert rules.table_mapping("sys_info.jdp_tb_trade") == JDP
    (event,) = events_for_change(
        change("pos.members", "insert", pos_member()), rules.table_mapping("pos.members")
    )
    assert identifiers(event)[0] == ("member_no", "M0001234", "brand-SH-017")
    assert event.occurred_at == datetime(2026, 11, 2, 14, 5, 11, tzinfo=UTC)


def test_an_own_table_maps_with_a_few_lines_of_configuration():
    rules = load_rules(
        {
            "table_mappings": {
                "crm.customer": {
                    "source": "erp",
                    "kind": "member",
                    "primary_key": ["id"],
                    "identifiers": {
                        "mobile": {"type": "phone"},
                        "profile.unionid": {"type": "wechat_unionid"},
                    },
                    "json_columns": ["profile"],
                    "attributes": [{"source": "profile.vip", "target": "vip", "transform": "bool"}],
                }
            }
        }
    )
    row = {"id": 7, "mobile": "13900000000", "profile": '{"unionid": "oU-1", "vip": "Y"}'}
    (event,) = events_for_change(change("crm.customer", "insert", row), rules.table_mapping("crm.customer"))
    assert identifiers(event) == [("phone", "13900000000", None), ("wechat_unionid", "oU-1", None)]
    assert event.attributes == {"vip": True} and event.occurred_at == COMMITTED


@pytest.mark.parametrize(
    ("change_to", "message"),
    [
        ({"identifiers": {"member_no": {"type": "member_id"}}}, "unknown identifier type"),
        ({"identifiers": {"member_no": {"type": "member_no"}}}, "member_no needs a scope"),
        ({"kind": "order"}, "needs 'order' columns"),
        ({"on_delete": "cancel_order"}, "cancel_order' needs 'order' columns"),
        (
            {"attributes": [{"source": "level", "target": "metrics.level"}]},
            "cannot target interaction metrics",
        ),
        ({"timezone": "Asia/Beijing"}, "unknown timezone"),
        ({"primary_key": []}, "primary_key"),
    ],
)
def test_a_wrong_table_mapping_is_rejected_when_the_rules_load(change_to, message):
    with pytest.raises(ValidationError, match=message):
        load_rules(
            {"table_mappings": {"pos.members": {**DEFAULT_TABLE_MAPPINGS["pos.members"], **change_to}}}
        )


def test_every_default_mapping_is_valid_and_deletes_by_kind():
    defaults = {key: TableMapping.model_validate(doc) for key, doc in DEFAULT_TABLE_MAPPINGS.items()}
    assert {key: m.on_delete for key, m in defaults.items()} == {
        "sys_info.jdp_tb_trade": "cancel_order",
        "pos.members": "detach_identifiers",
        "pos.orders": "cancel_order",
        "pos.stock": "ignore",
    }


def test_an_event_id_stays_within_the_canonical_limit():
    long_position = "mysql-bin-changelog.002171:36912271:0:36912333:" * 6
    event_id = change_event_id("pos.members", "M0001234", long_position)
    assert len(event_id) <= 256 and event_id == change_event_id("pos.members", "M0001234", long_position)
    assert event_id != change_event_id("pos.members", "M0001235", long_position)


# -- docs/cdc-table-mappings.md -----------------------------------------------------------------
DOC = Path(__file__).resolve().parents[3] / "docs" / "cdc-table-mappings.md"


def doc_rules_blocks():
    return [
        json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    ]


def test_every_rules_example_in_the_doc_loads_and_the_defaults_shown_are_the_shipped_ones():
    example, defaults = doc_rules_blocks()
    assert defaults == {"table_mappings": DEFAULT_TABLE_MAPPINGS}
    rules = load_rules(example)
    row = {
        "id": 7,
        "mobile": "13900000000",
        "card_no": "C-1",
        "brand_code": "hz",
        "full_name": "李雷",
        "gender": 1,
        "profile": '{"unionid": "oU-1", "vip": 1}',
        "updated_at": "2026-11-02 14:05:11",
    }
    (event,) = events_for_change(change("crm.customer", "insert", row), rules.table_mapping("crm.customer"))
    assert ("member_no", "C-1", "erp-hz") in identifiers(event)
    assert event.attributes == {"name": "李雷", "vip": True, "gender": "male"}
