"""Authentic pushes that cannot be mapped into storable events: landed, recorded as a mapping
failure (no payload values), acked with the platform's success answer, never 4xx/5xx; the good
events of a multi-event push still go to the queue."""

import json
from dataclasses import replace

import pytest
from pydantic import BaseModel, ValidationError
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
from scrm_sync.channels.doudian import DoudianAdapter
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.mapping import MappingError
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.webhooks import WebhookIngest, failure_reason

from tests.unit.channels import test_doudian as doudian
from tests.unit.channels import test_douyin as douyin

OVERFLOWING_DIGG = douyin.envelope("new_video_digg", '{"item_id": "v-1", "digg_count": 1e400}')
SECRET_PHONE = "13800138000"


def webhook(channel_adapter, credentials, rules=None):
    landing, queue = InMemoryLanding(), InMemoryPushStream()
    loaded = load_credentials({channel_adapter.name: credentials})
    rules = rules or load_rules({})
    ingest = WebhookIngest(
        {channel_adapter.name: channel_adapter}, lambda: loaded, landing, queue, lambda: rules
    )
    return ingest, landing, queue


def only_record(landing: InMemoryLanding, channel: str) -> dict:
    (key,) = landing.keys(f"quarantine/mapping-failures/{channel}/")
    return json.loads(landing.get(key))


def test_a_signed_douyin_push_with_an_overflowing_count_is_acked_recorded_and_not_enqueued():
    ingest, landing, queue = webhook(DouyinAdapter(), douyin.CREDS)
    request = douyin.req(OVERFLOWING_DIGG, {"msg-id": "m-inf"})

    reply = ingest.handle(request)
    assert (reply.status, reply.body, reply.unmappable) == (200, "{}", 1)  # Douyin's success ack
    assert queue.messages == []
    (landed,) = queue.documents  # the raw push, landed through the stream with no events
    assert landed["request_id"] == "req-1" and landed["events"] == [] and landed["body"]
    assert not landing.keys("quarantine/webhooks/") and not landing.keys(
        "raw/"
    )  # authentic: not treated as forged or garbage

    record = only_record(landing, "douyin")
    assert record["channel"] == "douyin" and record["request_id"] == "req-1"
    assert record["received_at"] == douyin.RECEIVED.isoformat()
    assert record["landing_prefix"] == f"raw/webhooks/dt={douyin.RECEIVED:%Y-%m-%d}/"
    assert record["replay"].endswith("--request-id req-1") and record["events_enqueued"] == 0
    (failure,) = record["failures"]
    assert failure["kind"] == "new_video_digg" and failure["stage"] == "mapping" and failure["reason"]
    text = json.dumps(record)
    assert "inf" not in text.replace("info", "") and "open-user-1" not in text  # no values quoted

    # a platform retry of the same bytes is answered the same way: never a 5xx loop
    assert ingest.handle(replace(request, request_id="req-2")).status == 200
    assert queue.messages == []


def test_an_unparseable_authentic_push_is_acked_with_the_success_body_not_400():
    ingest, landing, queue = webhook(DoudianAdapter(), doudian.CREDS)
    reply = ingest.handle(doudian.req(b'[{"msg_id": "no-tag"}]'))
    assert (reply.status, reply.body) == (200, doudian.SUCCESS)
    (failure,) = only_record(landing, "doudian")["failures"]
    assert failure == {"stage": "parse", "reason": "MalformedPush: message 0 has no tag"}  # no kind
    assert queue.messages == []


def test_a_forged_push_is_still_refused_and_never_recorded_as_a_mapping_failure():
    ingest, landing, stream = webhook(DouyinAdapter(), douyin.CREDS)
    forged = douyin.req(OVERFLOWING_DIGG, {"x-douyin-signature": douyin.sign(OVERFLOWING_DIGG, "forger")})
    assert ingest.handle(forged).status == 401
    assert landing.keys("quarantine/webhooks/douyin/") and not landing.keys("quarantine/mapping-failures/")
    assert not landing.keys("raw/") and stream.records == []


def doudian_message(msg_id: str, points) -> dict:
    data = {"p_id": 1, "pay_time": 1764000100, "post_tel": SECRET_PHONE, "points": points}
    return {"tag": "101", "msg_id": msg_id, "data": data}


@pytest.mark.parametrize(
    ("bad_points", "reason_type"),
    [
        ("1e400", ("OverflowError", "MappingError")),  # JSON 1e400 is infinity: int() cannot convert it
        ({"nested": SECRET_PHONE}, ("ValidationError",)),  # mapped, but the canonical model refuses it
    ],
)
def test_the_good_events_of_a_multi_event_push_are_enqueued_and_the_bad_one_recorded(bad_points, reason_type):
    transform = "int" if bad_points == "1e400" else "copy"
    rules = load_rules(
        {
            "mappings": {
                "doudian": {"101": [{"source": "data.points", "target": "points", "transform": transform}]}
            }
        }
    )
    ingest, landing, queue = webhook(DoudianAdapter(), doudian.CREDS, rules)
    body = json.dumps([doudian_message("m-good", 5), doudian_message("m-bad", bad_points)])
    body = body.replace('"1e400"', "1e400").encode()  # a bare JSON number, as the platform would send

    reply = ingest.handle(doudian.req(body))
    assert (reply.status, reply.body, reply.unmappable) == (200, doudian.SUCCESS, 1)
    (message,) = queue.messages
    assert json.loads(message)["event_id"] == "m-good" and json.loads(message)["attributes"]["points"] == 5
    record = only_record(landing, "doudian")
    assert record["events_enqueued"] == 1
    (failure,) = record["failures"]
    assert failure["kind"] == "101" and failure["reason"].startswith(reason_type)
    assert SECRET_PHONE not in json.dumps(record)


class _Model(BaseModel):
    count: int


def test_failure_reasons_never_quote_the_input_value():
    with pytest.raises(ValidationError) as refused:
        _Model.model_validate({"count": "13800138000x"})
    assert failure_reason(refused.value) == "ValidationError: count (int_parsing)"
    # messages of arbitrary exceptions may carry the value: only their type is kept
    assert failure_reason(KeyError(SECRET_PHONE)) == "KeyError"
    assert failure_reason(OverflowError("cannot convert Infinity")) == "OverflowError"
    # our own exceptions are written without values: their message explains the failure
    message = "content.digg_count: cannot apply int to float"
    assert failure_reason(MappingError(message)) == f"MappingError: {message}"
