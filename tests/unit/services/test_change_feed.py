"""The change feed's fan-out: each destination gets what it wants, a failing destination holds
back only the records whose messages it could not take, and message ids are stable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from scrm_sync.adapters.batching import batches_within
from scrm_sync.domain.change_feed import profile_document
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.followers import follower_field
from scrm_sync.domain.rules import load_rules
from scrm_sync.services.change_feed import EVENT_BUS, WEBHOOKS, WECOM_TAGS, ChangeFeed, OutboundMessage

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RULES = load_rules(
    {
        "wecom_tags": {
            "rules": [{"attribute": "member_level", "group": "会员等级", "values": {"gold": "金卡"}}]
        }
    }
)
CREDENTIALS = load_credentials(
    {
        "outbound_webhooks": {
            "erp": {"url": "https://erp.example.cn/h", "secret": SECRET, "fields": ["member_level"]},
            "crm": {"url": "https://crm.example.cn/h", "secret": SECRET, "fields": ["name"]},
        }
    }
)
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Outbox:
    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.sent: dict[str, list[OutboundMessage]] = {}
        self.failing = failing

    def send(self, destination: str, messages: Sequence[OutboundMessage]) -> list[int]:
        if destination in self.failing:
            return list(range(len(messages)))
        self.sent.setdefault(destination, []).extend(messages)
        return []


def change(seq: str, **fields: str) -> dict:
    new = {"pk": "p1", **{f"v:{k}": v for k, v in fields.items()}, **{f"m:{k}": {"s": "mdm"} for k in fields}}
    document = profile_document("p1", seq, AT, {"pk": "p1"}, new)
    assert document is not None
    return document


def feed(outbox: Outbox, destinations=frozenset({WECOM_TAGS, WEBHOOKS, EVENT_BUS})) -> ChangeFeed:
    return ChangeFeed(lambda: RULES, lambda: CREDENTIALS, outbox, destinations)


def test_each_destination_gets_what_it_wants():
    outbox = Outbox()
    assert feed(outbox).publish([("1", change("1", member_level="gold"))]) == set()
    [tag] = outbox.sent[WECOM_TAGS]
    assert json.loads(tag.body)["profile_id"] == "p1" and tag.group == "p1"
    [erp] = outbox.sent[WEBHOOKS]  # crm asked for names only
    assert erp.attributes["subscription"] == "erp" and erp.group == "erp#p1"
    assert json.loads(erp.body)["fields"].keys() == {"member_level"}
    [bus] = outbox.sent[EVENT_BUS]
    assert json.loads(bus.body)["fields"]["member_level"]["new"] == "gold"


def test_a_name_change_is_no_tag_work_and_goes_only_to_who_asked():
    outbox = Outbox()
    feed(outbox).publish([("1", change("1", name="王五"))])
    assert WECOM_TAGS not in outbox.sent
    assert [m.attributes["subscription"] for m in outbox.sent[WEBHOOKS]] == ["crm"]
    outbox = Outbox()
    feed(outbox).publish([("2", change("2", **{follower_field("lisi"): "lisi"}))])
    assert len(outbox.sent[WECOM_TAGS]) == 1  # a new follower gets the customer's tags


def test_a_failing_destination_reports_its_records_and_the_others_still_get_theirs():
    outbox = Outbox(failing=frozenset({WEBHOOKS}))
    failed = feed(outbox).publish([("1", change("1", member_level="gold")), ("2", change("2", name="x"))])
    assert failed == {"1", "2"}
    assert len(outbox.sent[WECOM_TAGS]) == 1 and len(outbox.sent[EVENT_BUS]) == 2


def test_redelivered_records_make_the_same_messages():
    first, again = Outbox(), Outbox()
    feed(first).publish([("1", change("1", member_level="gold"))])
    feed(again).publish([("1", change("1", member_level="gold"))])
    for destination in (WECOM_TAGS, WEBHOOKS, EVENT_BUS):
        assert [m.deduplication_id for m in first.sent[destination]] == [
            m.deduplication_id for m in again.sent[destination]
        ]


def test_destinations_that_are_off_get_nothing():
    outbox = Outbox()
    feed(outbox, frozenset({EVENT_BUS})).publish([("1", change("1", member_level="gold"))])
    assert set(outbox.sent) == {EVENT_BUS}


def test_batches_respect_both_the_entry_and_the_byte_limits():
    assert list(batches_within([1] * 23, 10, 1000)) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    assert list(batches_within([600, 600, 300, 100], 10, 1000)) == [[0], [1, 2, 3]]


def test_documents_carry_the_profiles_consents_and_purpose_bound_subscriptions_honour_them():
    from scrm_sync.domain.change_feed import identity_documents

    credentials = load_credentials(
        {
            "outbound_webhooks": {
                "sms": {"url": "https://sms.example.cn/h", "secret": SECRET, "purpose": "marketing.sms"}
            }
        }
    )
    recorded = {"p1": {"marketing.sms": True}, "p2": {"marketing.sms": False}}
    outbox = Outbox()
    consent_feed = ChangeFeed(
        lambda: RULES, lambda: credentials, outbox, frozenset({WEBHOOKS, EVENT_BUS}), recorded.get
    )
    granted = change("1", member_level="gold", consent_marketing_sms=True)  # type: ignore[arg-type]
    assert granted["consent"] == {"marketing.sms": True}  # from the profile's image
    link = {
        "identifier_key": "phone##+8613800138000",
        "profile_id": "p2",
        "type": "phone",
        "value": "+8613800138000",
    }
    (withdrawn,) = identity_documents("2", AT, None, link)
    assert "consent" not in withdrawn  # an identity change: the feed looks the consents up
    assert consent_feed.publish([("1", granted), ("2", withdrawn)]) == set()
    assert [json.loads(m.body)["profile_id"] for m in outbox.sent[WEBHOOKS]] == ["p1"]
    bus = [json.loads(m.body) for m in outbox.sent[EVENT_BUS]]  # rules on the bus can match on it
    assert [d["consent"] for d in bus] == [{"marketing.sms": True}, {"marketing.sms": False}]
