"""The privacy rules: suppression keys, what names an erased person in landed text, and how a
landed object is scrubbed without touching anyone else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sync.domain.identifiers import identifier_key_of, normalize_identifier
from scrm_sync.domain.privacy import (
    STORES,
    Erasure,
    PersonTest,
    identifier_keys_in,
    landing_day_prefixes,
    needles_of,
    scrub_text,
    suppression_key,
)

SALT = b"dev-only-salt-" + b"x" * 40
PHONE_KEY = normalize_identifier("phone", "13911112222").key


def person(*keys: str, needles: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> PersonTest:
    return PersonTest(keys, needles, names, identifier_key_of)


def event(phone: str, name: str = "someone") -> dict[str, Any]:
    return {
        "event_id": f"e-{phone}",
        "source": "pos",
        "type": "profile.updated",
        "identifiers": [{"type": "phone", "value": phone}],
        "attributes": {"name": name},
    }


def test_a_suppression_key_is_a_salted_hash_never_the_value() -> None:
    key = suppression_key(PHONE_KEY, SALT)
    assert key.startswith("suppressed#") and "13911112222" not in key
    assert key == suppression_key(PHONE_KEY, SALT)
    assert key != suppression_key(PHONE_KEY, b"another-salt-" + b"y" * 40)


def test_any_spelling_of_an_identifier_names_the_person() -> None:
    test = person(PHONE_KEY)
    for spelling in ("13911112222", "+86 139-1111-2222", "86 13911112222"):
        assert test.event_names_person(event(spelling)), spelling
    assert not test.event_names_person(event("13911113333"))


def test_a_request_of_events_keeps_everyone_else() -> None:
    request = {"events": [event("13911112222", "赵六一"), event("13911113333", "钱七七")]}
    scrubbed = scrub_text(json.dumps(request, ensure_ascii=False), person(PHONE_KEY))
    assert scrubbed is not None
    assert [e["identifiers"][0]["value"] for e in json.loads(scrubbed)["events"]] == ["13911113333"]
    assert scrub_text(json.dumps({"events": [event("13911112222")]}), person(PHONE_KEY)) is None


def test_a_landed_push_goes_whole_when_its_events_name_the_person() -> None:
    """Its raw body (encrypted, or URL-encoded) is theirs too, even where no value shows."""
    theirs = {
        "channel": "wecom",
        "body": "<xml><Encrypt>...</Encrypt></xml>",
        "events": [event("13911112222")],
    }
    other = {"channel": "wecom", "body": "<xml>...</xml>", "events": [event("13911113333")]}
    text = "\n".join(json.dumps(d) for d in (theirs, other)) + "\n"
    scrubbed = scrub_text(text, person(PHONE_KEY))
    assert scrubbed == json.dumps(other) + "\n"


def test_names_are_looked_for_only_where_no_identifier_places_the_text() -> None:
    """Another customer may share the name: a push that names someone else by identifier stays."""
    namesake = {"channel": "youzan", "body": "王小明", "events": [event("13911113333", "王小明")]}
    unmapped = "a mapping failure: 王小明 called about an order"
    test = person(PHONE_KEY, names=("王小明",))
    assert scrub_text(json.dumps(namesake, ensure_ascii=False), test) is not None
    assert scrub_text(unmapped, test) is None


def test_an_object_that_names_nobody_comes_back_as_the_same_text() -> None:
    text = json.dumps({"events": [event("13911113333")]})
    assert scrub_text(text, person(PHONE_KEY, needles=("13911112222",))) is text


def test_values_inside_json_escapes_are_found() -> None:
    text = json.dumps({"note": "赵六一 asked to be forgotten"})  # ASCII-escaped by json.dumps
    assert scrub_text(text, person(needles=("赵六一",))) is None


def test_short_values_are_no_needles_but_chinese_names_are() -> None:
    assert needles_of(["abc", "13911112222", "赵六", " ", 42]) == ("13911112222", "赵六")


def test_identifier_keys_in_landed_text_are_normalized() -> None:
    lines = [json.dumps({"channel": "pos", "body": "", "events": [event("139-1111-2222")]}), "not json"]
    assert identifier_keys_in("\n".join(lines), identifier_key_of) == {PHONE_KEY}


def test_late_arrivals_are_looked_for_on_the_day_and_the_day_before() -> None:
    from datetime import UTC, datetime

    assert landing_day_prefixes("raw/events/", datetime(2026, 12, 3, 0, 5, tzinfo=UTC)) == [
        "raw/events/dt=2026-12-02/",
        "raw/events/dt=2026-12-03/",
    ]


def test_an_erasure_is_complete_when_every_store_is_erased() -> None:
    erasure = Erasure("er-1", "ops", "2026-12-03T00:00:00+00:00", ("p_1",), (PHONE_KEY,), ("13911112222",))
    assert erasure.status == "pending"
    for store in STORES:
        erasure = erasure.with_store(store, "erased")
    assert erasure.status == "complete"
    failed = erasure.with_store("archive", "failed", "ClientError")
    assert failed.status == "failed" and failed.pending_stores() == ["archive"]
    public = failed.public()
    assert "13911112222" not in json.dumps(public) and public["errors"] == {"archive": "ClientError"}


phones = st.integers(min_value=0, max_value=9_999_999).map(lambda n: f"139{n:08d}")


@settings(max_examples=200, deadline=None)
@given(people=st.lists(phones, min_size=1, max_size=8, unique=True), erased=st.data())
def test_scrubbing_removes_exactly_the_erased_peoples_events(
    people: list[str], erased: st.DataObject
) -> None:
    """For any mix of people in a request and any subset erased: every event naming an erased
    person goes, every other event stays, in its order."""
    gone = set(erased.draw(st.lists(st.sampled_from(people), unique=True)))
    request = {"events": [event(p) for p in people]}
    keys = [normalize_identifier("phone", p).key for p in gone]
    scrubbed = scrub_text(json.dumps(request), person(*keys))
    kept = [p for p in people if p not in gone]
    if not kept:
        assert scrubbed is None
    else:
        assert scrubbed is not None
        assert [e["identifiers"][0]["value"] for e in json.loads(scrubbed)["events"]] == kept


# -- consent ---------------------------------------------------------------------------------------
def consent_event(source: str, at: str, granted: bool, name: str = "consent_marketing_sms") -> Any:
    from scrm_sync.domain.events import CanonicalEvent

    return CanonicalEvent.model_validate(
        {
            "event_id": f"{source}-{at}",
            "source": source,
            "type": "profile.updated",
            "occurred_at": at,
            "identifiers": [{"type": "phone", "value": "13911112222"}],
            "attributes": {name: granted},
        }
    )


def test_the_persons_latest_consent_wins_whatever_the_source() -> None:
    """MDM outranks every source for ordinary fields; a consent is the person's own statement."""
    from scrm_sync.adapters.memory import InMemoryProfileRepository
    from scrm_sync.domain.rules import load_rules
    from scrm_sync.services.profiles import ProfileQueries
    from scrm_sync.services.sync import ProfileSync

    rules = load_rules({})
    repo = InMemoryProfileRepository()
    sync = ProfileSync(repo, lambda: rules)
    sync.apply(consent_event("mdm", "2026-12-01T09:00:00+08:00", True))
    sync.apply(consent_event("wechat_mp", "2026-12-02T09:00:00+08:00", False))  # withdrawn later
    sync.apply(consent_event("mdm", "2026-11-30T09:00:00+08:00", True))  # an older statement
    profile = ProfileQueries(repo).find(rules, "phone", "13911112222", None)
    assert profile is not None and profile["attributes"]["consent_marketing_sms"] is False


@pytest.mark.parametrize("name, value", [("consent_marketing_sms", "yes"), ("consent_marketing", True)])
def test_a_consent_must_name_purpose_and_channel_and_be_true_or_false(name: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=f"attributes\\n.*{name}: a consent"):
        consent_event("pos", "2026-12-01T09:00:00+08:00", value, name)


def test_consent_allows_nothing_after_a_withdrawal_and_needs_a_grant_only_where_required() -> None:
    from scrm_sync.domain.privacy import consent_allows, consent_attribute, consent_key_of, consents

    recorded = consents({"consent_marketing_sms": False, "consent_service_wechat_mp": True, "name": "x"})
    assert recorded == {"marketing.sms": False, "service.wechat_mp": True}
    assert not consent_allows(recorded, "marketing.sms", grant_required=False)
    assert consent_allows(recorded, "service.wechat_mp", grant_required=True)
    assert consent_allows(recorded, "marketing.wecom", grant_required=False)
    assert not consent_allows(recorded, "marketing.wecom", grant_required=True)
    assert consent_key_of(consent_attribute("service.wechat_mp")) == "service.wechat_mp"


def test_wecom_tags_are_taken_off_when_marketing_consent_is_withdrawn() -> None:
    from scrm_sync.domain.wecom_tags import TagRules

    rules = TagRules.model_validate(
        {"rules": [{"attribute": "member_level", "group": "会员等级", "values": {"gold": "金卡"}}]}
    )
    assert {t.name for t in rules.desired({"member_level": "gold"})} == {"金卡"}
    assert rules.desired({"member_level": "gold", "consent_marketing_wecom": False}) == frozenset()
    assert "consent_marketing_wecom" in rules.attributes  # a withdrawal is a change the writer acts on
    opt_in = rules.model_copy(update={"grant_required": True})
    assert opt_in.desired({"member_level": "gold"}) == frozenset()
    assert opt_in.desired({"member_level": "gold", "consent_marketing_wecom": True})


def test_a_webhook_subscription_with_a_purpose_gets_only_the_people_who_granted_it() -> None:
    from scrm_sync.domain.outbound_webhooks import WebhookSubscription, select_for

    subscription = WebhookSubscription.model_validate(
        {"url": "https://crm.example.com/hook", "secret": "whsec_" + "A" * 32, "purpose": "marketing.sms"}
    )
    document = {
        "type": "profile.changed",
        "id": "d1",
        "profile_id": "p_1",
        "kinds": ["fields"],
        "fields": {"level": {"old": None, "new": "gold"}},
    }
    assert select_for(subscription, {**document, "consent": {}}) is None
    assert select_for(subscription, {**document, "consent": {"marketing.sms": False}}) is None
    granted = select_for(subscription, {**document, "consent": {"marketing.sms": True}})
    assert granted is not None and granted["consent"] == {"marketing.sms": True}
    with pytest.raises(ValidationError, match="purpose"):
        WebhookSubscription.model_validate(
            {**subscription.model_dump(), "secret": "whsec_" + "A" * 32, "purpose": "sms"}
        )
