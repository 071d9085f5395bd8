"""The local stand-in for IoT Core's rules engine: the template's topic rule read as IoT Core runs
it (topic filter, Kinesis partition key, S3 error action), its substitution templates, MQTT
topic filters, and what it refuses to pretend to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrm_local.iot_rules import TopicRule, UnsupportedRule, matches, rules_of, substitute
from scrm_local.settings import Settings
from scrm_local.template import Template

ROOT = Path(__file__).resolve().parents[3]


def test_the_templates_device_health_rule_writes_to_the_stream_keyed_by_device():
    template = Template.load(
        Settings(template_path=ROOT / "template.yaml", project_root=ROOT, stack_name="t")
    )
    (rule,) = rules_of(template)
    assert rule.topic_filter == "scrm/devices/+/health"
    ((stream, key),) = rule.kinesis
    assert stream == "t-DeviceHealthStream"
    assert substitute(key, "scrm/devices/pump-0042/health") == "pump-0042"
    assert rule.error_s3 is not None
    bucket, key_template = rule.error_s3
    assert bucket == "t-landingbucket"
    error_key = substitute(key_template, "scrm/devices/pump-0042/health", now_ms=1764748800000)
    assert error_key.startswith("quarantine/devices/iot-rule/pump-0042/1764748800000-")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${topic()}", "a/b/c"),
        ("${topic(1)}", "a"),
        ("${topic(3)}", "c"),
        ("${topic(4)}", ""),
        ("x-${topic(2)}", "x-b"),
    ],
)
def test_topic_substitutions_follow_iot_sql(template, expected):
    assert substitute(template, "a/b/c") == expected


def test_an_unknown_substitution_is_refused_rather_than_guessed():
    with pytest.raises(UnsupportedRule):
        substitute("${clientid()}", "a/b")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("scrm/devices/+/health", "scrm/devices/pump-1/health", True),
        ("scrm/devices/+/health", "scrm/devices/pump-1/other", False),
        ("scrm/devices/+/health", "scrm/devices/a/b/health", False),
        ("scrm/#", "scrm/devices/a/health", True),
        ("scrm/devices/+", "scrm/devices", False),
    ],
)
def test_mqtt_topic_filters(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    "payload",
    [
        {"Sql": "SELECT device_id FROM 'scrm/devices/+/health'", "Actions": []},
        {"Sql": "SELECT * FROM 'a/+'", "Actions": [{"Lambda": {"FunctionArn": "x"}}]},
    ],
)
def test_rules_it_cannot_run_faithfully_are_refused(payload):
    with pytest.raises(UnsupportedRule):
        TopicRule.from_properties("Rule", {"TopicRulePayload": payload})
