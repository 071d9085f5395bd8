"""CloudWatch alarm notifications -> WeCom group robot markdown.

The robot accepts markdown up to 4,096 UTF-8 bytes and at most 20 messages a minute per robot;
`alarm_markdown` keeps one alarm within the limit and `summary_markdown` groups a burst into one
message that names every alarm (nothing is left out, details are shortened first)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

MAX_MARKDOWN_BYTES = 4096
SHANGHAI = ZoneInfo("Asia/Shanghai")
_STATE_COLOR = {"ALARM": "warning", "OK": "info", "INSUFFICIENT_DATA": "comment"}
_COMPARISON = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside",
}


class NotAnAlarm(ValueError):
    """The SNS message is not a CloudWatch alarm state change."""


@dataclass(frozen=True, slots=True)
class Alarm:
    name: str
    description: str
    new_state: str
    old_state: str
    reason: str
    changed_at: datetime
    region: str
    metric: str
    condition: str
    console_url: str


def _metric_text(trigger: dict[str, Any]) -> str:
    if trigger.get("MetricName"):
        dims = ", ".join(f"{d.get('name')}={d.get('value')}" for d in trigger.get("Dimensions", []))
        stat = trigger.get("Statistic") or trigger.get("ExtendedStatistic") or ""
        return f"{trigger.get('Namespace', '')}/{trigger['MetricName']} {stat}".strip() + (
            f" ({dims})" if dims else ""
        )
    for metric in trigger.get("Metrics", []):  # metric math: the expression that returns data
        if metric.get("ReturnData", True) and metric.get("Expression"):
            return f"{metric.get('Label') or metric.get('Id')}: {metric['Expression']}"
    return "metric math"


def parse_alarm(message: str) -> Alarm:
    try:
        doc = json.loads(message)
        name, new_state = str(doc["AlarmName"]), str(doc["NewStateValue"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NotAnAlarm("not a CloudWatch alarm notification") from exc
    arn = str(doc.get("AlarmArn", ""))
    region = arn.split(":")[3] if arn.count(":") >= 4 else "us-east-1"
    trigger = doc.get("Trigger") or {}
    operator = _COMPARISON.get(
        str(trigger.get("ComparisonOperator", "")), str(trigger.get("ComparisonOperator", ""))
    )
    threshold = trigger.get("Threshold")
    condition = f"{operator} {threshold}" if threshold is not None else operator
    try:
        changed = datetime.fromisoformat(str(doc.get("StateChangeTime", "")).replace("+0000", "+00:00"))
    except ValueError:
        changed = datetime.now(SHANGHAI)
    if changed.tzinfo is None:  # CloudWatch writes UTC; never compare naive and aware times
        changed = changed.replace(tzinfo=UTC)
    domain = "console.amazonaws.cn" if region.startswith("cn-") else f"{region}.console.aws.amazon.com"
    return Alarm(
        name=name,
        description=str(doc.get("AlarmDescription") or "").strip(),  # YAML `>` ends with a newline
        new_state=new_state,
        old_state=str(doc.get("OldStateValue", "")),
        reason=str(doc.get("NewStateReason", "")),
        changed_at=changed,
        region=region,
        metric=_metric_text(trigger),
        condition=condition,
        console_url=f"https://{domain}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name, safe='')}",
    )


def urgency(alarm: Alarm) -> tuple[bool, datetime]:
    """Sort key: ALARM transitions before OK / INSUFFICIENT_DATA, each oldest first. When the
    robot's budget is short, what needs action gets its own message; recoveries are summarized."""
    return (alarm.new_state != "ALARM", alarm.changed_at)


def _fit(text: str, limit: int) -> str:
    """Cut to at most `limit` UTF-8 bytes on a character boundary, marking the cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(limit - 3, 0)].decode("utf-8", errors="ignore") + "..."


def alarm_markdown(alarm: Alarm, max_bytes: int = MAX_MARKDOWN_BYTES) -> str:
    color = _STATE_COLOR.get(alarm.new_state, "comment")
    head = [
        f'### <font color="{color}">{alarm.new_state}</font> {alarm.name}',
        f"> 时间 Time: {alarm.changed_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} (Asia/Shanghai)",
        f"> 状态 State: {alarm.old_state} → {alarm.new_state}",
        f"> 指标 Metric: {alarm.metric}",
        f"> 阈值 Threshold: {alarm.condition}",
        f"[在控制台查看 Open in console]({alarm.console_url})",
    ]
    fixed = "\n".join(head)
    room = max_bytes - len(fixed.encode("utf-8")) - 2
    details = "\n".join(x for x in (alarm.description, f"原因 Reason: {alarm.reason}") if x)
    return _fit(fixed + "\n\n" + _fit(details, room), max_bytes) if room > 0 else _fit(fixed, max_bytes)


def summary_markdown(alarms: Sequence[Alarm], max_bytes: int = MAX_MARKDOWN_BYTES) -> str:
    """One message for a burst: every alarm named, newest state per line."""
    head = f"### {len(alarms)} 条告警状态变化 alarm state changes (grouped: robot limit 20/min)"
    lines = [
        f'- <font color="{_STATE_COLOR.get(a.new_state, "comment")}">{a.new_state}</font> '
        f"{a.name} {a.changed_at.astimezone(SHANGHAI):%H:%M:%S}"
        for a in alarms
    ]
    text = "\n".join([head, *lines])
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    # too many to list with details: names only, as many as fit, then the count of the rest
    names = [a.name for a in alarms]
    for shown in range(len(names), 0, -1):
        candidate = "\n".join([head, *(f"- {n}" for n in names[:shown])])
        if shown < len(names):
            candidate += f"\n… +{len(names) - shown} more (see CloudWatch)"
        if len(candidate.encode("utf-8")) <= max_bytes:
            return candidate
    return _fit(head, max_bytes)
