"""Alarm forwarding: CloudWatch alarm notifications to the operations team's WeCom group robot.

The robot takes at most 20 messages a minute, and many Lambda invocations may forward at once, so
every post first claims a send from a budget shared through a store (DynamoDB in AWS): a sliding
window of 20 sends in any 60 seconds (domain/send_window.py). A batch gets one message per alarm
while more than `reserve_sends` sends are left in the window; then one summary names every alarm
the batch still holds, and the reserved last sends let the next batches (or a concurrent
invocation) post their own summaries instead of waiting. When nothing is left, the alarms are
reported failed, come back after the queue's visibility timeout and are grouped then.
Robot failures that outlast the adapter's retries are reported failed too; after the queue's
maxReceiveCount they wait in its dead-letter queue. Nothing is dropped.

The robot's webhook URL (it carries the robot's key) is read from the channels secret on every
batch, so it can be rotated without a redeploy; it is never logged or put in an error, and the
budget is keyed by a hash of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ..domain.alerts import Alarm, NotAnAlarm, alarm_markdown, parse_alarm, summary_markdown, urgency
from ..domain.credentials import ChannelCredentials
from .send_budget import BudgetUnavailable, SendBudget

ROBOT_ENTRY = "wecom_robot"


# --- ports --------------------------------------------------------------------------------------
class RobotUnavailable(RuntimeError):
    """Transient (network, HTTP 5xx, robot busy) and still failing after the adapter's retries."""


class RobotRateLimited(RobotUnavailable):
    """The robot answered errcode 45009: its own count says the limit is reached (another sender
    shares the robot, or clocks disagree). The window is treated as full."""


class RobotRejected(RuntimeError):
    """The robot refused the message for good (e.g. errcode 93000: invalid webhook key)."""

    def __init__(self, errcode: int | None, detail: str) -> None:
        super().__init__(f"errcode {errcode}: {detail}" if errcode is not None else detail)
        self.errcode = errcode


class Robot(Protocol):
    def post_markdown(self, content: str) -> None:
        """Post one markdown message; raises RobotUnavailable / RobotRejected."""
        ...


class RobotNotConfigured(RuntimeError):
    """The channels secret has no `wecom_robot.webhook_url` (alarms wait in the queue)."""


def robot_scope(webhook_url: str) -> str:
    """Budget key prefix of one robot: a hash of its URL, so the key never appears in the table."""
    return "robot#" + hashlib.sha256(webhook_url.encode()).hexdigest()[:16]


# --- the use case -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Notification:
    message_id: str  # what the caller reports failures by (the SQS messageId)
    message: str  # the SNS Message: a CloudWatch alarm state change, as JSON


@dataclass(slots=True)
class ForwardReport:
    posts: int = 0
    individual: list[str] = field(default_factory=list)  # ids posted in a message of their own
    grouped: list[str] = field(default_factory=list)  # ids named in a summary message
    deferred: list[str] = field(default_factory=list)  # no budget (or time) left: redelivered later
    undelivered: list[str] = field(default_factory=list)  # the robot failed or refused
    not_alarms: list[str] = field(default_factory=list)  # not a CloudWatch alarm notification
    problem: str = ""  # why some were not delivered (never contains the webhook URL)

    @property
    def failed(self) -> list[str]:
        return [*self.deferred, *self.undelivered, *self.not_alarms]

    def as_log(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "individual": len(self.individual),
            "grouped": len(self.grouped),
            "deferred": self.deferred,
            "undelivered": self.undelivered,
            "not_alarms": self.not_alarms,
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class _Pending:
    message_id: str
    alarm: Alarm


class AlarmForwarder:
    def __init__(
        self,
        credentials: Callable[[], ChannelCredentials],
        robot_for: Callable[[str], Robot],
        budget: SendBudget,
        clock: Callable[[], datetime] | None = None,
        reserve_seconds: float = 10.0,
        reserve_sends: int = 2,
    ) -> None:
        self._credentials = credentials
        self._robot_for = robot_for
        self._budget = budget
        self._clock = clock or (lambda: datetime.now(UTC))
        self._reserve_seconds = reserve_seconds  # a post with its retries must end before the timeout
        self._reserve_sends = reserve_sends

    def forward(
        self, notifications: Sequence[Notification], time_left: Callable[[], float] | None = None
    ) -> ForwardReport:
        report = ForwardReport()
        pending: list[_Pending] = []
        for notification in notifications:
            try:
                pending.append(_Pending(notification.message_id, parse_alarm(notification.message)))
            except NotAnAlarm:
                report.not_alarms.append(notification.message_id)
        if report.not_alarms:
            report.problem = "not CloudWatch alarm notifications"
        if not pending:
            return report
        try:
            url = self._webhook_url()
        except RobotNotConfigured as exc:
            report.undelivered.extend(p.message_id for p in pending)
            report.problem = str(exc)
            return report
        robot, scope = self._robot_for(url), robot_scope(url)
        pending.sort(key=lambda p: urgency(p.alarm))
        while pending:
            if time_left is not None and time_left() < self._reserve_seconds:
                return _stop(report, report.deferred, pending, "out of time for another post")
            try:
                left = self._budget.claim(scope, self._clock())
            except BudgetUnavailable as exc:
                return _stop(report, report.deferred, pending, f"send budget unavailable: {exc}")
            if left is None:
                return _stop(report, report.deferred, pending, "robot send budget used up in this window")
            # one alarm per message while the window has room; near its end one summary of the rest,
            # leaving the last sends to other batches' summaries instead of deferring them
            group = pending[:1] if left > self._reserve_sends or len(pending) == 1 else pending
            text = (
                alarm_markdown(group[0].alarm)
                if len(group) == 1
                else summary_markdown([p.alarm for p in group])
            )
            try:
                robot.post_markdown(text)
            except RobotRateLimited as exc:
                with suppress(BudgetUnavailable):  # the alarms come back either way
                    self._budget.exhaust(scope, self._clock())
                return _stop(report, report.deferred, pending, str(exc))
            except (RobotUnavailable, RobotRejected) as exc:
                return _stop(report, report.undelivered, pending, f"{type(exc).__name__}: {exc}")
            report.posts += 1
            (report.individual if len(group) == 1 else report.grouped).extend(p.message_id for p in group)
            pending = pending[len(group) :]
        return report

    def _webhook_url(self) -> str:
        entry = self._credentials().channel(ROBOT_ENTRY) or {}
        url = entry.get("webhook_url")
        if not isinstance(url, str) or not url:
            raise RobotNotConfigured("the channels secret has no wecom_robot.webhook_url")
        return url


def _stop(report: ForwardReport, into: list[str], pending: Sequence[_Pending], problem: str) -> ForwardReport:
    into.extend(p.message_id for p in pending)
    report.problem = problem
    return report
