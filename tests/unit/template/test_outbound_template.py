"""The change feed and its destinations in template.yaml: both streams feed the feed, every
destination has a FIFO queue with a dead-letter queue and its own function, alarms reach the
WeCom group, and each function gets only what it needs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.template.sam import TEMPLATE

RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
DESTINATIONS = {
    "WeComTagFunction": "WeComTagQueue",
    "WebhookDeliveryFunction": "WebhookDeliveryQueue",
    "EventBusDeliveryFunction": "EventBusQueue",
}


def test_the_feed_reads_both_streams_and_gives_up_only_into_its_failure_queue():
    events = RESOURCES["ChangeFeedFunction"]["Properties"]["Events"]
    streams = {e["Properties"]["Stream"]["Fn::GetAtt"][0] for e in events.values()}
    assert streams == {"ProfilesTable", "IdentityTable"}
    for event in events.values():
        props = event["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["ChangeFeedFailureQueue", "Arn"]
        }
    assert (
        RESOURCES["IdentityTable"]["Properties"]["StreamSpecification"]["StreamViewType"]
        == "NEW_AND_OLD_IMAGES"
    )


@pytest.mark.parametrize(("function", "queue"), sorted(DESTINATIONS.items()))
def test_each_destination_has_its_fifo_queue_dead_letters_and_alarms(function, queue):
    props = RESOURCES[queue]["Properties"]
    assert props["FifoQueue"] is True and props["DeduplicationScope"] == "messageGroup"
    dead_letters = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert RESOURCES[dead_letters]["Properties"]["FifoQueue"] is True
    assert props["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "OutboundMaxReceiveCount"}
    [event] = RESOURCES[function]["Properties"]["Events"].values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "OutboundMaximumConcurrency"}
    alarms = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and dead_letters in str(r["Properties"].get("Dimensions"))
    ]
    assert alarms and all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


@pytest.mark.parametrize("destination", ["wecom_tags", "webhooks", "event_bus"])
def test_each_destination_has_a_lag_alarm(destination):
    [alarm] = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == "OutboundLagSeconds"
        and {"Name": "Destination", "Value": destination} in r["Properties"]["Dimensions"]
    ]
    assert alarm["Threshold"] == {"Ref": "OutboundLagThresholdSeconds"}
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_tag_writer_only_reads_profiles_and_touches_only_its_own_checkpoint_items():
    statements = [
        s
        for p in RESOURCES["WeComTagFunction"]["Properties"]["Policies"]
        if "Statement" in p
        for s in p["Statement"]
    ]
    reads = next(s for s in statements if s["Sid"] == "ReadProfiles")
    assert set(reads["Action"]) == {"dynamodb:GetItem", "dynamodb:Query"}
    own = next(s for s in statements if s["Sid"] == "TagStateAndSharedCredentials")
    assert own["Resource"] == {"Fn::GetAtt": ["CheckpointsTable", "Arn"]}
    assert all(k.endswith("#*") for k in own["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])


def test_only_the_event_bus_and_inventory_functions_may_put_events_and_only_on_the_bus():
    putters = {
        name
        for name, r in RESOURCES.items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(
            "EventBridgePutEventsPolicy" in p
            for p in r["Properties"].get("Policies", [])
            if isinstance(p, dict)
        )
    }
    # profile changes; store transfer instructions (the inventory functions)
    inventory = {"InventoryFunction", "InventoryApiFunction", "InventoryExpiryFunction"}
    assert putters == {"EventBusDeliveryFunction"} | inventory
    for name in putters:
        [policy] = [p for p in RESOURCES[name]["Properties"]["Policies"] if "EventBridgePutEventsPolicy" in p]
        assert policy["EventBridgePutEventsPolicy"]["EventBusName"] == {"Ref": "ProfileEventBus"}
