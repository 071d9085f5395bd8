"""Youzan delivery ids are event ids, and event ids are idempotency keys of events already stored:
whichever helper computes them, they stay byte-identical. The values below were computed by the
adapter before it used the shared helpers (payloads.bounded_id / body_id)."""

import json

import pytest
from scrm_sync.channels.youzan import YouzanAdapter

from tests.unit.channels.test_youzan import CREDS, req

ADAPTER = YouzanAdapter()


def delivery_id(body: bytes) -> str:
    (found,) = ADAPTER.parse(req(body), CREDS).delivery_ids
    return found


def push(**fields) -> bytes:
    return json.dumps({"type": "trade_TradePaid", "msg": {}, **fields}, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (push(msg_id="msg-1"), "msg-1"),
        (push(msg_id="x" * 200), "x" * 200),  # 200 characters are kept as they are
        (
            push(msg_id="有赞" * 101),  # longer than 200 characters: hashed, "sha256-" prefix
            "sha256-d53103a0a7f17e0272e354c444e9d524de7550c4a40cf5736648362257384e8e",
        ),
        (
            # a lone surrogate from a JSON escape hashes as "?" (errors="replace")
            ('{"type":"trade_TradePaid","msg_id":"\\ud800' + "a" * 200 + '","msg":{}}').encode(),
            "sha256-88ffa8a723928a8f7fe2c24c47899cf294d330ef6615a0927a5c7e61d9daaf1c",
        ),
        (
            push(),  # no msg_id anywhere: the body identifies the push
            "body-eef3314bbdd028f1146a81af0d8aca7990bee89df215179b27320c9ab0492e9f",
        ),
    ],
)
def test_youzan_delivery_ids_never_change(body, expected):
    assert delivery_id(body) == expected


def test_the_msg_id_header_is_used_when_the_body_has_none():
    body = push()
    (found,) = ADAPTER.parse(req(body, {"msg-id": "h" * 201}), CREDS).delivery_ids
    assert found == "sha256-958cbb8536ef9af1302c1725de8c8f4afeedbe05492f2194ae668986a6efb224"
