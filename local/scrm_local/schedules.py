"""Schedule / ScheduleV2 events: the EventBridge "Scheduled Event" (or the template's Input),
fired on demand, and on their rate(...) when SCRM_RUN_SCHEDULES=1 (cron: on demand only)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .settings import ACCOUNT_ID, REGION
from .template import ScheduleSpec

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs for `rate(N unit)`; None for cron(...) and at(...)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    if value <= 0:
        raise ValueError(f"invalid schedule expression {expression!r}")
    return float(value * _UNIT_SECONDS[unit])


def scheduled_event(schedule: ScheduleSpec, now: datetime | None = None) -> Any:
    """The event the function receives: the Input when the template gives one, else the
    EventBridge "Scheduled Event"."""
    if schedule.input is not None:
        return json.loads(schedule.input)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [schedule.rule_arn],
        "detail": {},
    }


class ScheduleRunner:
    """Fires each enabled rate(...) schedule on its rate, in one thread."""

    def __init__(self, schedules: Iterable[ScheduleSpec], invoke: Callable[[str, Any], Any]) -> None:
        self.invoke = invoke
        self.due: list[tuple[ScheduleSpec, float]] = []
        for schedule in schedules:
            every = rate_seconds(schedule.expression)
            if not schedule.enabled:
                continue
            if every is None:
                log.info(
                    "%s.%s: %s runs on demand only (`scrm schedule %s`)",
                    schedule.function_id,
                    schedule.event_name,
                    schedule.expression,
                    schedule.function_id,
                )
                continue
            self.due.append((schedule, every))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scrm-schedules", daemon=True)

    def start(self) -> None:
        if self.due:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        started = time.monotonic()
        next_run = {id(s): started + every for s, every in self.due}
        while not self._stop.is_set():
            now = time.monotonic()
            for schedule, every in self.due:
                if now >= next_run[id(schedule)]:
                    next_run[id(schedule)] = now + every
                    try:
                        self.invoke(schedule.function_id, scheduled_event(schedule))
                    except Exception:
                        log.exception("%s.%s failed", schedule.function_id, schedule.event_name)
            wait = min(next_run.values()) - time.monotonic()
            self._stop.wait(max(0.05, min(wait, 1.0)))
