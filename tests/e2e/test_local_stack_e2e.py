"""End to end through `scrm local run`: HTTP in, queue, sync core, DynamoDB, HTTP out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.rules import load_rules

from tests.sync_model import expected_profiles

pytestmark = pytest.mark.e2e
EVENTS = Path(__file__).resolve().parents[2] / "events"


def lookup(stack, type_, value, scope=None):
    query = f"/profiles?type={type_}&value={value}" + (f"&scope={scope}" if scope else "")
    return stack.call("GET", query)


def test_canonical_event_posted_is_readable_as_a_profile(local_stack):
    body = json.loads((EVENTS / "canonical/mdm_profile.json").read_text())
    status, report = local_stack.call("POST", "/events", body)
    assert (status, report["accepted"]) == (202, 1)
    local_stack.wait_drained()
    status, profile = lookup(local_stack, "phone", "%2B86-138-0013-8000")
    assert status == 200
    assert profile["attributes"]["name"] == "王小明"
    assert profile["sources"]["name"]["source"] == "mdm"
    assert local_stack.call("GET", f"/profiles/{profile['profile_id']}")[1] == profile


def test_requests_without_a_valid_key_are_refused(local_stack):
    # as API Gateway answers with a Lambda authorizer: no key 401, a key nobody holds 403
    assert local_stack.call("POST", "/events", {"events": []}, api_key="wrong")[0] == 403
    assert local_stack.call("GET", "/profiles?type=phone&value=13800138000", api_key=None)[0] == 401


def test_a_malformed_event_gets_a_4xx_naming_the_field_and_changes_nothing(local_stack):
    bad = {
        "event_id": "bad-1",
        "source": "pos",
        "type": "profile.updated",
        "occurred_at": "yesterday",
        "identifiers": [{"type": "phone", "value": "13700000001"}],
        "attributes": {"name": "nobody"},
    }
    status, report = local_stack.call("POST", "/events", bad)
    assert status == 422
    assert report["results"][0]["errors"][0]["field"] == "occurred_at"
    assert local_stack.call("POST", "/events", b"{not json")[0] == 400
    local_stack.wait_drained()
    assert lookup(local_stack, "phone", "13700000001")[0] == 404


def test_unconfigured_webhook_channels_answer_404(local_stack):
    assert local_stack.call("POST", "/webhooks/no-such-channel", {}, api_key=None)[0] == 404


def customer_events(customers: int, seed: int) -> list[dict]:
    """Each customer shows up on several channels with a subset of their identifiers; some
    events carry two of them, which is what lets the sync core merge the fragments."""
    rng = random.Random(seed)
    events = []
    for c in range(customers):
        ids = {
            "phone": {"type": "phone", "value": f"+86 139 {c:04d} {c:04d}"},
            "openid": {"type": "wechat_openid", "value": f"oE2E{seed}x{c}", "scope": "wx-e2e"},
            "member": {"type": "member_no", "value": f"E{seed}-{c}", "scope": "e2e"},
            "external": {"type": "wecom_external_userid", "value": f"wmE2E{seed}x{c}", "scope": "ww-e2e"},
        }
        fragments = [
            ["openid"],
            ["member"],
            ["external"],
            ["phone", "openid"],
            ["member", "phone"],
            ["external", "member"],
        ]
        for i, parts in enumerate(fragments):
            source = rng.choice(["mdm", "pos", "wecom", "wechat_mp", "youzan"])
            events.append(
                {
                    "event_id": f"e2e-{seed}-{c}-{i}",
                    "source": source,
                    "type": "profile.updated",
                    "occurred_at": f"2026-11-0{1 + rng.randrange(9)}T0{rng.randrange(10)}:00:00+08:00",
                    "identifiers": [ids[p] for p in parts],
                    "attributes": {
                        rng.choice(["name", "level", "contract_no", "city"]): f"{source}-{rng.randrange(100)}"
                    },
                }
            )
    rng.shuffle(events)
    return events


def test_hundreds_of_events_merge_into_the_right_profiles(local_stack):
    events = customer_events(customers=40, seed=7)  # 240 events
    for start in range(0, len(events), 120):
        status, report = local_stack.call("POST", "/events", {"events": events[start : start + 120]})
        assert (status, report.get("rejected")) == (202, 0), report
    local_stack.wait_drained(timeout=240)

    rules = load_rules(
        json.loads((Path(__file__).resolve().parents[2] / "config/rules.dev.json").read_text())
    )
    expected = expected_profiles([CanonicalEvent.model_validate(e) for e in events], rules)
    assert len(expected) == 40
    for keys, attributes in expected.items():
        seen = set()
        for key in sorted(keys):
            type_, scope, value = key.split("#", 2)
            status, profile = lookup(local_stack, type_, value.replace("+", "%2B"), scope or None)
            assert status == 200, key
            assert profile["attributes"] == attributes
            found = {f"{i['type']}#{i.get('scope', '')}#{i['value']}" for i in profile["identifiers"]}
            assert found == set(keys)
            seen.add(profile["profile_id"])
        assert len(seen) == 1


def test_audit_verify_catches_a_tampered_record(local_stack):
    body = {
        "events": [
            {
                "event_id": f"audit-{i}",
                "source": "pos",
                "type": "profile.updated",
                "occurred_at": f"2026-11-0{i + 1}T10:00:00+08:00",
                "identifiers": [{"type": "member_no", "value": "AUDIT-1", "scope": "e2e"}],
                "attributes": {"level": f"L{i}"},
            }
            for i in range(3)
        ]
    }
    assert local_stack.call("POST", "/events", body)[0] == 202
    local_stack.wait_drained()
    profile_id = lookup(local_stack, "member_no", "AUDIT-1", "e2e")[1]["profile_id"]

    clean = local_stack.scrm("audit", "verify", profile_id)
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] and report["entries"] >= 1

    dynamodb = local_stack.client("dynamodb")
    table = f"{local_stack.env['SCRM_STACK_NAME']}-AuditTable"
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": profile_id}, "sk": {"S": "000000000001"}},
        UpdateExpression="SET change = :c",
        ExpressionAttributeValues={":c": {"S": '{"kind":"fields","changes":[]}'}},
    )
    tampered = local_stack.scrm("audit", "verify", profile_id)
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["first_broken_seq"] == 1


def test_sample_events_run_through_scrm_invoke(local_stack):
    """The events/ samples (shared with `sam local invoke -e`) drive the real handlers."""
    synced = local_stack.scrm(
        "invoke", "ProfileSyncFunction", "--event", str(EVENTS / "profile_sync/sqs_batch.json")
    )
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout) == {"batchItemFailures": []}

    found = local_stack.scrm(
        "invoke", "ProfileApiFunction", "--event", str(EVENTS / "profile_api/find_by_phone.json")
    )
    response = json.loads(found.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["attributes"]["member_level"] == "gold"

    partly = local_stack.scrm(
        "invoke", "EventsApiFunction", "--event", str(EVENTS / "events_api/post_events_partly_invalid.json")
    )
    response = json.loads(partly.stdout)
    assert response["statusCode"] == 207
    assert [r["status"] for r in json.loads(response["body"])["results"]] == ["accepted", "rejected"]


@pytest.mark.parametrize(
    ("sample", "expected_body"),
    [
        ("youzan_trade_paid.json", '{"code":0,"msg":"success"}'),
        ("doudian_verification_ping.json", '{"code":0,"msg":"success"}'),
        ("douyin_new_follow.json", "{}"),
        ("wecom_url_check.json", "5927782489442352469"),
        ("wecom_add_external_contact.json", ""),
        ("wechat_mp_url_check.json", "8164902713209468513"),
        ("wechat_mp_subscribe_safe_mode.json", "success"),
    ],
)
def test_signed_webhook_samples_verify_with_the_dev_credentials(local_stack, sample, expected_body):
    """events/webhook/* are signed with config/channels.dev.json, for `scrm invoke` and sam local."""
    result = local_stack.scrm("invoke", "WebhookFunction", "--event", str(EVENTS / "webhook" / sample))
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200, response
    assert response["body"].replace(" ", "") == expected_body
