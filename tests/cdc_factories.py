"""Builders for CDC row changes: 聚石塔 jdp_tb_trade rows and the documented POS tables."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_sync.domain.cdc import RowChange, RowOperation, dms_document, encode_dms

COMMITTED = datetime(2026, 11, 10, 16, 0, 33, tzinfo=UTC)
SELLER = "示例美妆官方旗舰店"
OPEN_UID = "AAHk5d-EAAeGwJedwSHJr3Ab"
TID = 3912345678901234567
_positions = itertools.count(1)


def trade(
    status: str = "WAIT_SELLER_SEND_GOODS",
    *,
    receiver_mobile: str = "13800138000",
    receiver_name: str = "王小明",
    buyer_open_uid: str | None = OPEN_UID,
    modified: str = "2026-11-11 00:00:31",
) -> dict[str, Any]:
    """A trade as taobao.trade.fullinfo.get returns it (the 聚石塔 push stores it as JSON text)."""
    fields: dict[str, Any] = {
        "tid": TID,
        "status": status,
        "type": "fixed",
        "seller_nick": SELLER,
        "buyer_nick": "王**",
        "receiver_name": receiver_name,
        "receiver_mobile": receiver_mobile,
        "receiver_state": "浙江省",
        "receiver_city": "杭州市",
        "receiver_district": "西湖区",
        "receiver_address": "文三路 90 号",
        "payment": "398.00",
        "total_fee": "418.00",
        "created": "2026-11-11 00:00:05",
        "modified": modified,
        "pay_time": "2026-11-11 00:00:31",
        "orders": {
            "order": [
                {
                    "oid": TID + 1,
                    "num_iid": 612345678901,
                    "sku_id": "4987654321001",
                    "title": "空气蜜粉 定妆散粉 8g",
                    "num": 1,
                    "price": "199.00",
                    "payment": "189.00",
                    "status": status,
                },
                {
                    "oid": TID + 2,
                    "num_iid": 612345678902,  # an item without SKUs: no sku_id
                    "title": "雕花口红 #M106",
                    "num": 2,
                    "price": "109.50",
                    "payment": "209.00",
                    "status": status,
                },
            ]
        },
    }
    if buyer_open_uid is not None:
        fields["buyer_open_uid"] = buyer_open_uid
    return fields


def jdp_row(trade_fields: Mapping[str, Any] | None = None, **columns: Any) -> dict[str, Any]:
    fields = dict(trade_fields or trade())
    row: dict[str, Any] = {
        "tid": 3.912345678901234e18,  # what DMS writes for a BIGINT past 16 digits
        "status": fields["status"],
        "type": "fixed",
        "seller_nick": SELLER,
        "buyer_nick": "王**",
        "created": fields["created"],
        "modified": fields["modified"],
        "jdp_hashcode": "-1204567311",
        "jdp_response": json.dumps({"trade_fullinfo_get_response": {"trade": fields}}, ensure_ascii=False),
        "jdp_created": "2026-11-11 00:00:33",
        "jdp_modified": "2026-11-11 00:00:33",
    }
    row.update(columns)
    return row


def pos_member(member_no: str = "M0001234", **columns: Any) -> dict[str, Any]:
    row = {
        "member_no": member_no,
        "phone": "138 0013 8000",
        "name": "王小明",
        "level": "gold",
        "store": "SH-017",
        "updated_at": "2026-11-02 14:05:11.000",
    }
    row.update(columns)
    return row


def pos_order(order_no: str = "S017-88410", **columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_no": order_no,
        "member_no": "M0001234",
        "store": "SH-017",
        "status": "paid",
        "total": "359.00",
        "lines": json.dumps(
            [
                {
                    "sku": "LIP-RED-01",
                    "name": "丝绒口红 正红",
                    "quantity": 1,
                    "price": "259.00",
                    "amount": "259.00",
                },
                {
                    "sku": "MASK-10",
                    "name": "补水面膜 10 片",
                    "quantity": 1,
                    "price": "100.00",
                    "amount": "100.00",
                },
            ],
            ensure_ascii=False,
        ),
        "created_at": "2026-11-02 14:05:11",
        "updated_at": "2026-11-02 14:05:11",
    }
    row.update(columns)
    return row


def change(
    table_key: str,
    operation: RowOperation,
    row: Mapping[str, Any],
    *,
    before: Mapping[str, Any] | None = None,
    position: str | None = None,
    committed_at: datetime = COMMITTED,
) -> RowChange:
    schema, table = table_key.split(".", 1)
    return RowChange(
        schema,
        table,
        operation,
        dict(row),
        None if before is None else dict(before),
        committed_at,
        position or f"81000{next(_positions):08d}:1",
    )


def kinesis_record(data: bytes, sequence_number: str, partition_key: str = "pk") -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1794326433.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000003:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/scrm-test-CdcFunctionRole",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/scrm-test-CdcStream",
    }


def dms_record(row_change: RowChange, sequence_number: str, record_id: int = 1) -> dict[str, Any]:
    """A Kinesis record carrying the DMS document of one row change."""
    transaction_id = row_change.position.split(":", 1)[0]
    document = dms_document(row_change, transaction_id, record_id, "pk")
    return kinesis_record(encode_dms(document), sequence_number)


def at(seconds: float) -> datetime:
    return COMMITTED + timedelta(seconds=seconds)
