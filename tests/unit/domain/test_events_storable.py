"""The canonical event accepts only what can be queued and stored, and says which field is at
fault; times in JSON are RFC 3339 text with an offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError
from scrm_sync.adapters.messaging import SQS_BATCH
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.storable import MAX_ATTRIBUTES_PER_EVENT, MAX_EVENT_BYTES, MAX_TEXT_CHARS

GOOD = {
    "event_id": "e-1",
    "source": "pos",
    "type": "profile.updated",
    "occurred_at": "2026-11-01T09:30:00+08:00",
    "identifiers": [{"type": "phone", "value": "13800138000"}],
    "attributes": {"name": "王小明"},
}
ORDER = {"order_id": "o-1", "status": "paid", "total": "359.00"}


def errors(**changes):
    with pytest.raises(ValidationError) as caught:
        CanonicalEvent.model_validate(json.loads(json.dumps({**GOOD, **changes})))
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"attributes": {"points": 10**39}}, "attributes.points", "more than 38 significant digits"),
        ({"attributes": {"points": -1e308}}, "attributes.points", "out of range"),
        ({"attributes": {"points": 1e-200}}, "attributes.points", "out of range"),
        ({"attributes": {"points": "x" * (MAX_TEXT_CHARS + 1)}}, "attributes.points", "longer than 4096"),
        (
            {"attributes": {f"a{i}": i for i in range(MAX_ATTRIBUTES_PER_EVENT + 1)}},
            "attributes",
            f"at most {MAX_ATTRIBUTES_PER_EVENT} items",
        ),
        (
            {"attributes": {f"a{i}": "x" * 1000 for i in range(30)}},
            "",
            f"as queued; at most {MAX_EVENT_BYTES}",
        ),
        (
            {"type": "order.created", "order": {**ORDER, "total": 10**40}},
            "order.total",
            "more than 38 significant digits",
        ),
        (
            {"type": "order.created", "order": {**ORDER, "lines": [{"price": "1E+126"}]}},
            "order.lines.0.price",
            "out of range",
        ),
        (
            {"type": "order.created", "order": {**ORDER, "lines": [{"quantity": "1E-131"}]}},
            "order.lines.0.quantity",
            "out of range",
        ),
        (
            {"type": "interaction", "interaction": {"kind": "like", "metrics": {"likes": 1e200}}},
            "interaction.metrics.likes",
            "out of range",
        ),
        ({"occurred_at": 1700000000}, "occurred_at", "RFC 3339"),
        ({"occurred_at": 1700000000.5}, "occurred_at", "RFC 3339"),
        ({"occurred_at": "1700000000"}, "occurred_at", "RFC 3339"),
        ({"occurred_at": "2026-11-01T09:30:00"}, "occurred_at", "RFC 3339"),  # no offset
        ({"occurred_at": "2026-11-01T09:30+08:00"}, "occurred_at", "RFC 3339"),  # no seconds
        (
            {"type": "order.created", "order": {**ORDER, "created_at": 1700000000}},
            "order.created_at",
            "RFC 3339",
        ),
        ({"attributes": {"name": "\ud800"}}, "", "unpaired surrogate"),
    ],
)
def test_unstorable_values_are_refused_naming_the_field(changes, field, message):
    found = errors(**changes)
    assert field in found, found
    assert message in found[field]


def test_non_finite_floats_from_python_are_refused():
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValidationError, match="not finite"):
            CanonicalEvent.model_validate({**GOOD, "attributes": {"points": value}})


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-01T09:30:00+08:00",
        "2026-11-01T01:30:00Z",
        "2026-11-01t01:30:00.123456z",
        "2026-11-01 09:30:00-05:00",
    ],
)
def test_rfc3339_texts_are_accepted(occurred_at):
    assert CanonicalEvent.model_validate({**GOOD, "occurred_at": occurred_at}).occurred_at.tzinfo is not None


def test_code_may_pass_aware_datetimes_but_not_naive_ones():
    moment = datetime(2026, 11, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert CanonicalEvent.model_validate({**GOOD, "occurred_at": moment}).occurred_at == moment
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate({**GOOD, "occurred_at": datetime(2026, 11, 1, 9, 30)})


def test_the_extremes_that_are_accepted_survive_the_queue_unchanged():
    attributes = {
        "big": int("9" * 38),
        "negative": -int("9" * 38),
        "tiny": 1e-130,
        "tenth": 0.1,
        "small": 1e-5,
        "huge": 9.999999999999998e125,
        "flag": True,
        "cleared": None,
        **{f"f{i}": i for i in range(MAX_ATTRIBUTES_PER_EVENT - 8)},
    }
    event = CanonicalEvent.model_validate(
        {
            **GOOD,
            "type": "order.created",
            "attributes": attributes,
            "order": {
                **ORDER,
                "total": "9.9999999999999999999999999999999999999E+125",
                "created_at": datetime(2026, 11, 1, tzinfo=UTC),
                "lines": [{"quantity": "12345678901234567890123456789012345678", "price": "1E-130"}],
            },
        }
    )
    back = CanonicalEvent.model_validate_json(event.to_message())
    assert back == event
    assert back.attributes["big"] == int("9" * 38) and back.attributes["tenth"] == 0.1
    assert back.order is not None and back.order.total == Decimal(
        "9.9999999999999999999999999999999999999E+125"
    )


def test_ten_events_at_the_size_cap_fit_one_sqs_batch():
    assert SQS_BATCH * MAX_EVENT_BYTES <= 256 * 1024  # SendMessageBatch's payload limit


def test_the_longest_chinese_interaction_a_channel_sends_is_accepted():
    event = CanonicalEvent.model_validate(
        {
            **GOOD,
            "event_id": "m" * 200,  # the channels' longest delivery id
            "source": "douyin",
            "type": "interaction",
            "attributes": {},
            "identifiers": [{"type": "douyin_openid", "value": "o" * 64, "scope": "k" * 64}],
            "interaction": {"kind": "im_receive_msg", "content": "字" * 8192, "channel_ref": "r" * 256},
        }
    )
    assert len(event.to_message().encode()) <= MAX_EVENT_BYTES
