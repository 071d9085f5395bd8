"""Douyin, Doudian and Youzan events that the canonical model refuses at construction (numbers
DynamoDB cannot store, text that is not Unicode) or that no identifier could link are never
dropped quietly: the push is acked with the platform's success answer, a mapping-failure record
names the event kind and a value-free reason, the failure is counted (`WebhookReply.unmappable`
is the `WebhooksUnmappable` metric), nothing of the refused event is queued, the other events of
the push are, and `scrm replay` reports the same events as skipped."""

import json
from dataclasses import replace

import pytest
from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream, InMemoryQueue
from scrm_sync.channels.base import RefusedEvent
from scrm_sync.channels.doudian import DoudianAdapter
from scrm_sync.channels.douyin import DouyinAdapter
from scrm_sync.channels.youzan import YouzanAdapter
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.replay import WebhookReplay
from scrm_sync.services.webhooks import WebhookIngest

from tests.landing_support import deliver
from tests.unit.channels import test_doudian as doudian
from tests.unit.channels import test_douyin as douyin
from tests.unit.channels import test_youzan as youzan
from tests.unit.services.test_unmappable_pushes import only_record, webhook

PHONE = "13800138000"
FORTY_DIGITS = "1234567890" * 4  # more significant digits than DynamoDB keeps
TOTAL_REFUSED = "ValidationError: order.total (value_error)"
DOUYIN_LIKES_REFUSED = "ValidationError: interaction.metrics.likes (value_error)"


def douyin_overflowing_likes() -> bytes:
    """A finite count beyond DynamoDB's range (1e200 > 9.99e125): the model refuses the likes."""
    return douyin.envelope("new_video_digg", '{"item_id": "v-1", "digg_count": 1e200}')


def doudian_paid(msg_id: str, **data) -> dict:
    return {
        "tag": "101",
        "msg_id": msg_id,
        "data": {"p_id": 1, "pay_time": 1764000100, "post_tel": PHONE, **data},
    }


def youzan_paid(payment: str = "188.00", phone: str = PHONE, yz_open_id: str = "yzOpen-abc") -> bytes:
    msg = youzan.full_order_info(phone=phone, yz_open_id=yz_open_id)
    msg["full_order_info"]["pay_info"]["payment"] = payment
    return youzan.push_body(msg=msg)


def assert_value_free(record: dict, *values: str) -> None:
    text = json.dumps(record, ensure_ascii=False)
    for value in values:
        assert value not in text


# ---- the adapters report what they could not build ---------------------------------------------


def test_each_adapter_reports_the_event_the_model_refused_instead_of_dropping_it():
    push = DouyinAdapter().parse(douyin.req(douyin_overflowing_likes()), douyin.CREDS)
    assert push.events == [] and push.refused == [RefusedEvent("new_video_digg", DOUYIN_LIKES_REFUSED)]

    push = YouzanAdapter().parse(youzan.req(youzan_paid(payment=FORTY_DIGITS)), youzan.CREDS)
    assert push.events == [] and push.refused == [RefusedEvent("trade_TradePaid", TOTAL_REFUSED)]

    body = json.dumps([doudian_paid("m-good"), doudian_paid("m-bad", pay_amount=FORTY_DIGITS)]).encode()
    push = DoudianAdapter().parse(doudian.req(body), doudian.CREDS)
    assert [e.event_id for e in push.events] == ["m-good"]
    assert push.refused == [RefusedEvent("101", TOTAL_REFUSED)]
    (kept,) = push.unmapped["messages"]  # the raw message stays available, as before
    assert kept["msg_id"] == "m-bad" and kept["reason"] == TOTAL_REFUSED


def test_doudian_amounts_are_converted_exactly_and_never_fail_the_whole_push():
    """Fen to yuan used to round through a 28-digit context: a longer amount raised and made the
    whole push unreadable, good messages included. Now it is exact; the model decides."""
    amounts = {"a": 18800, "b": "12.345", "c": "1" * 30, "d": FORTY_DIGITS, "e": "1e999999999"}
    body = json.dumps([doudian_paid(f"m-{k}", pay_amount=v) for k, v in amounts.items()]).encode()
    push = DoudianAdapter().parse(doudian.req(body), doudian.CREDS)
    totals = {e.event_id: str(e.order.total) for e in push.events}
    assert totals == {"m-a": "188.00", "m-b": "0.12", "m-c": "1" * 28 + ".11"}
    assert push.refused == [RefusedEvent("101", TOTAL_REFUSED)] * 2


# ---- the webhook records, counts and acks them -------------------------------------------------


def test_douyin_refused_event_is_acked_recorded_counted_and_not_queued():
    ingest, landing, queue = webhook(DouyinAdapter(), douyin.CREDS)
    reply = ingest.handle(douyin.req(douyin_overflowing_likes(), {"msg-id": "m-big"}))
    assert (reply.status, reply.body, reply.unmappable) == (200, "{}", 1)
    assert queue.messages == []
    (landed,) = queue.documents  # landed raw through the stream, with no events
    record = only_record(landing, "douyin")
    assert record["request_id"] == landed["request_id"] and record["events_enqueued"] == 0
    assert record["failures"] == [
        {"kind": "new_video_digg", "stage": "mapping", "reason": DOUYIN_LIKES_REFUSED}
    ]
    assert_value_free(record, "1e+200", "1e200", "open-user-1")


def test_doudian_refused_messages_are_recorded_and_the_good_one_is_queued():
    ingest, landing, queue = webhook(DoudianAdapter(), doudian.CREDS)
    messages = [
        doudian_paid("m-good", pay_amount=18800),
        doudian_paid("m-digits", pay_amount=FORTY_DIGITS),
        doudian_paid("m-text", shop_id="\ud800"),  # not Unicode: the event cannot be queued
    ]
    reply = ingest.handle(doudian.req(json.dumps(messages).encode()))
    assert (reply.status, reply.body, reply.unmappable) == (200, doudian.SUCCESS, 2)
    (message,) = queue.messages
    assert json.loads(message)["event_id"] == "m-good" and json.loads(message)["order"]["total"] == "188.00"
    record = only_record(landing, "doudian")
    assert record["events_enqueued"] == 1
    assert record["failures"] == [
        {"kind": "101", "stage": "mapping", "reason": TOTAL_REFUSED},
        {"kind": "101", "stage": "mapping", "reason": "ValidationError: event (value_error)"},
    ]
    assert_value_free(record, PHONE, FORTY_DIGITS, "m-digits")


def test_youzan_refused_event_is_acked_recorded_counted_and_not_queued():
    ingest, landing, queue = webhook(YouzanAdapter(), youzan.CREDS)
    reply = ingest.handle(youzan.req(youzan_paid(payment=FORTY_DIGITS)))
    assert (reply.status, reply.body, reply.unmappable) == (200, youzan.SUCCESS, 1)
    assert queue.messages == []
    record = only_record(landing, "youzan")
    assert record["failures"] == [{"kind": "trade_TradePaid", "stage": "mapping", "reason": TOTAL_REFUSED}]
    assert_value_free(record, PHONE, FORTY_DIGITS, "yzOpen-abc")


def test_a_good_push_records_nothing():
    ingest, landing, queue = webhook(YouzanAdapter(), youzan.CREDS)
    reply = ingest.handle(youzan.req(youzan_paid()))
    assert (reply.status, reply.unmappable) == (200, 0) and len(queue.messages) == 1
    assert not landing.keys("quarantine/")


@pytest.mark.parametrize(
    ("phone", "blocklist", "reason"),
    [
        ("12345", {}, "phone (not a valid phone number)"),
        (PHONE, {"phone": [PHONE]}, "phone (blocklisted)"),  # a shop's front-desk phone
    ],
)
def test_an_event_no_identifier_can_link_is_recorded_not_queued(phone, blocklist, reason):
    """The model accepts it, but the sync core could only send it to the DLQ (UnlinkableEvent):
    refused at the edge like POST /events does."""
    rules = load_rules({"identifier_blocklist": blocklist})
    ingest, landing, queue = webhook(YouzanAdapter(), youzan.CREDS, rules)
    reply = ingest.handle(youzan.req(youzan_paid(phone=phone, yz_open_id="")))
    assert (reply.status, reply.body, reply.unmappable) == (200, youzan.SUCCESS, 1)
    assert queue.messages == []
    (failure,) = only_record(landing, "youzan")["failures"]
    assert failure == {
        "kind": "trade_TradePaid",
        "stage": "mapping",
        "reason": f"no identifier that can link a profile: {reason}",
    }
    assert_value_free(only_record(landing, "youzan"), phone)


# ---- replay reports them as skipped ------------------------------------------------------------


def test_replay_skips_and_reports_refused_events_and_replays_the_rest():
    adapters = {"douyin": DouyinAdapter(), "doudian": DoudianAdapter(), "youzan": YouzanAdapter()}
    credentials = load_credentials({"douyin": douyin.CREDS, "doudian": doudian.CREDS, "youzan": youzan.CREDS})
    rules = load_rules({})
    landing, stream = InMemoryLanding(), InMemoryPushStream()
    ingest = WebhookIngest(adapters, lambda: credentials, landing, stream, lambda: rules)
    doudian_body = json.dumps(
        [doudian_paid("d-good"), doudian_paid("d-bad", pay_amount=FORTY_DIGITS)]
    ).encode()
    for request_id, request in {
        "dy": douyin.req(douyin_overflowing_likes(), {"msg-id": "m-big"}),
        "dd": doudian.req(doudian_body),
        "yz": youzan.req(youzan_paid(payment=FORTY_DIGITS)),
    }.items():
        assert ingest.handle(replace(request, request_id=request_id)).status == 200
    (batched,) = deliver(stream, landing, per_object=10)  # the delivery stream lands all three

    replay_queue = InMemoryQueue()
    replay = WebhookReplay(adapters, lambda: credentials, landing, replay_queue, lambda: rules)
    day = douyin.RECEIVED.date()
    reports = {channel: replay.replay(channel, day, day, "r1") for channel in adapters}

    assert {c: (r.pushes, r.events) for c, r in reports.items()} == {
        "douyin": (1, 0),
        "doudian": (1, 1),
        "youzan": (1, 0),
    }
    assert [json.loads(m)["event_id"] for m in replay_queue.messages] == ["d-good~replay:r1"]
    expected = {"douyin": ("new_video_digg", DOUYIN_LIKES_REFUSED), "doudian": ("101", TOTAL_REFUSED)}
    expected["youzan"] = ("trade_TradePaid", TOTAL_REFUSED)
    for channel, (kind, reason) in expected.items():
        (skipped,) = reports[channel].skipped
        request_id = {"douyin": "dy", "doudian": "dd", "youzan": "yz"}[channel]
        assert skipped == {
            "key": batched,
            "line": str(list(expected).index(channel) + 1),
            "request_id": request_id,
            "kind": kind,
            "stage": "mapping",
            "reason": reason,
        }
