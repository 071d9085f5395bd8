import json

from scrm_sync.domain.alerts import (
    MAX_MARKDOWN_BYTES,
    alarm_markdown,
    parse_alarm,
    summary_markdown,
)

ALARM = {
    "AlarmName": "scrm-prod-SyncSuccessRate",
    "AlarmDescription": "Sync success rate below 99.9% over 5 minutes",
    "AWSAccountId": "123456789012",
    "NewStateValue": "ALARM",
    "OldStateValue": "OK",
    "NewStateReason": "Threshold Crossed: 1 datapoint [99.2 (25/11/26 02:00:00)] was below the threshold.",
    "StateChangeTime": "2026-11-25T02:00:30.123+0000",
    "Region": "China (Beijing)",
    "AlarmArn": "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:scrm-prod-SyncSuccessRate",
    "Trigger": {
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "LessThanThreshold",
        "Threshold": 99.9,
        "Metrics": [
            {"Id": "synced", "ReturnData": False, "MetricStat": {}},
            {
                "Id": "rate",
                "Label": "success rate",
                "Expression": "100 * synced / (synced + failed)",
                "ReturnData": True,
            },
        ],
    },
}


def test_alarm_markdown_has_name_state_reason_metric_threshold_shanghai_time_and_console_link():
    text = alarm_markdown(parse_alarm(json.dumps(ALARM)))
    assert "scrm-prod-SyncSuccessRate" in text and "ALARM" in text and "OK → ALARM" in text
    assert "100 * synced / (synced + failed)" in text and "< 99.9" in text
    assert "2026-11-25 10:00:30 (Asia/Shanghai)" in text
    assert (
        "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1#alarmsV2:alarm/scrm-prod-SyncSuccessRate"
        in text
    )
    assert "Threshold Crossed" in text


def test_markdown_stays_within_the_robot_limit_even_with_a_huge_reason():
    alarm = dict(ALARM, NewStateReason="原因" * 5000)
    text = alarm_markdown(parse_alarm(json.dumps(alarm)))
    assert len(text.encode("utf-8")) <= MAX_MARKDOWN_BYTES
    assert "在控制台查看" in text  # the link survives, the reason is what gets cut


def test_a_burst_summary_names_every_alarm_or_counts_the_rest():
    alarms = [parse_alarm(json.dumps(dict(ALARM, AlarmName=f"alarm-{i:03d}"))) for i in range(50)]
    text = summary_markdown(alarms)
    assert len(text.encode("utf-8")) <= MAX_MARKDOWN_BYTES
    assert all(f"alarm-{i:03d}" in text for i in range(50))
    many = [
        parse_alarm(json.dumps(dict(ALARM, AlarmName=f"a-very-long-alarm-name-{i:04d}" * 3)))
        for i in range(400)
    ]
    text = summary_markdown(many)
    assert len(text.encode("utf-8")) <= MAX_MARKDOWN_BYTES and "more (see CloudWatch)" in text


def test_simple_metric_alarms_name_their_metric():
    alarm = dict(
        ALARM,
        Trigger={
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Statistic": "MAXIMUM",
            "Dimensions": [{"name": "QueueName", "value": "dlq"}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0.0,
        },
    )
    text = alarm_markdown(parse_alarm(json.dumps(alarm)))
    assert "AWS/SQS/ApproximateNumberOfMessagesVisible MAXIMUM (QueueName=dlq)" in text and "> 0.0" in text
