"""WeCom group robot (群机器人) webhook: markdown messages over HTTPS with the stdlib.

WeCom answers `{"errcode": 0}`. Network errors, HTTP 5xx/429, errcode -1 (system busy) and 45009
(frequency limit) are transient: retried here with exponential backoff and jitter, a few attempts
within a bounded total time, then raised as RobotUnavailable (RobotRateLimited for 45009). Every
other answer (e.g. 93000: invalid webhook key) is RobotRejected at once.

The webhook URL carries the robot's key: it never appears in an exception or a log line (errors
name the status or errcode only, chained exceptions are dropped), and X-Ray's urllib patch records
URLs without their query string.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from ..services.alarms import RobotRateLimited, RobotRejected, RobotUnavailable

RATE_LIMITED = 45009
_TRANSIENT_CODES = frozenset({-1, RATE_LIMITED})  # -1: system busy, retry later


class WeComRobot:
    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 3.0,
        attempts: int = 3,
        first_backoff: float = 0.5,
        max_seconds: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = webhook_url
        keys = urllib.parse.parse_qs(urllib.parse.urlsplit(webhook_url).query).get("key", [])
        self._secrets = tuple(s for s in (webhook_url, *keys) if s)  # the URL first: it holds the key
        self._timeout = timeout
        self._attempts = max(attempts, 1)
        self._first_backoff = first_backoff
        self._max_seconds = max_seconds
        self._sleep = sleep
        self._clock = clock

    def post_markdown(self, content: str) -> None:
        body = json.dumps(
            {"msgtype": "markdown", "markdown": {"content": content}}, ensure_ascii=False
        ).encode("utf-8")
        deadline = self._clock() + self._max_seconds
        backoff = self._first_backoff
        for attempt in range(1, self._attempts + 1):
            try:
                self._post(body, min(self._timeout, max(deadline - self._clock(), 0.1)))
                return
            except RobotUnavailable:
                pause = backoff * random.uniform(0.5, 1.0)  # jitter: concurrent forwarders spread out
                if attempt == self._attempts or self._clock() + pause >= deadline:
                    raise
                self._sleep(pause)
                backoff *= 2

    def _post(self, body: bytes, timeout: float) -> None:
        if not self._url.startswith(("https://", "http://")):
            raise RobotRejected(None, "wecom_robot.webhook_url is not an http(s) URL")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                payload = response.read(65_536)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            if status >= 500 or status == 429:
                raise RobotUnavailable(f"robot answered HTTP {status}") from None
            raise RobotRejected(None, f"robot answered HTTP {status}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, refused, cut off
            raise RobotUnavailable(f"robot unreachable: {type(exc).__name__}") from None
        answer = _json_object(payload)
        if answer is None:
            raise RobotUnavailable("robot answered something other than a JSON object")
        errcode = answer.get("errcode")
        if errcode == 0:
            return
        if errcode == RATE_LIMITED:
            raise RobotRateLimited(f"robot errcode {RATE_LIMITED}: too many messages")
        if errcode in _TRANSIENT_CODES:
            raise RobotUnavailable(f"robot errcode {errcode}: busy")
        raise RobotRejected(
            errcode if isinstance(errcode, int) else None, self._redact(str(answer.get("errmsg", "")))
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:200]


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(payload)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
