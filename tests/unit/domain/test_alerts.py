import json

from scrm_sync.domain.alerts import (
    MAX_MARKDOWN_BYTES,
    alarm_markdown,
    parse_alarm,
    summary_markdown,
    urgency,
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


def test_two_hundred_alarm_summary_with_long_names_and_reasons_stays_within_the_limit():
    alarms = [
        parse_alarm(
            json.dumps(dict(ALARM, AlarmName=f"告警-{i:03d}-" + "x" * 60, NewStateReason="原因很长" * 2000))
        )
        for i in range(200)
    ]
    text = summary_markdown(alarms)
    assert len(text.encode("utf-8")) <= MAX_MARKDOWN_BYTES
    assert text.startswith("### 200 条告警状态变化")
    shown = [i for i in range(200) if f"告警-{i:03d}-" in text]
    assert shown == list(range(len(shown)))  # a prefix of the burst is listed by name ...
    assert f"… +{200 - len(shown)} more (see CloudWatch)" in text  # ... and the rest is counted
    for alarm in alarms[:3]:
        single = alarm_markdown(alarm)
        assert len(single.encode("utf-8")) <= MAX_MARKDOWN_BYTES and alarm.name in single


def test_a_summary_that_fits_lists_state_and_shanghai_time_per_alarm():
    ok = parse_alarm(
        json.dumps(dict(ALARM, AlarmName="recovered", NewStateValue="OK", OldStateValue="ALARM"))
    )
    text = summary_markdown([parse_alarm(json.dumps(ALARM)), ok])
    assert '<font color="warning">ALARM</font> scrm-prod-SyncSuccessRate 10:00:30' in text
    assert '<font color="info">OK</font> recovered 10:00:30' in text


def test_urgency_puts_alarm_transitions_first_then_oldest_first_and_naive_times_are_utc():
    early_ok = parse_alarm(
        json.dumps(
            dict(ALARM, AlarmName="ok", NewStateValue="OK", StateChangeTime="2026-11-25T01:00:00.000+0000")
        )
    )
    late_alarm = parse_alarm(json.dumps(dict(ALARM, AlarmName="late", StateChangeTime="2026-11-25T03:00:00")))
    early_alarm = parse_alarm(json.dumps(dict(ALARM, AlarmName="early")))
    assert late_alarm.changed_at.utcoffset() is not None
    ordered = sorted([early_ok, late_alarm, early_alarm], key=urgency)
    assert [a.name for a in ordered] == ["early", "late", "ok"]
