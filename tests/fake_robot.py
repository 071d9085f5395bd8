"""A local stand-in for a WeCom group robot webhook (POST /cgi-bin/webhook/send?key=...): tests
never call the internet. Answers can be scripted (HTTP status + JSON body, consumed in order);
every attempt is recorded with the time it arrived, and accepted messages are kept in order.

Run it next to the local stack to see what AlarmForwarderFunction posts:
    python -m tests.fake_robot --port 9999 --key dev-robot-key
with `"wecom_robot": {"webhook_url": "http://127.0.0.1:9999/cgi-bin/webhook/send?key=dev-robot-key"}`
in the channels file (config/channels.dev.json)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.json_http import serving_json

ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"  # the shape of a real key, not a real one
Answer = tuple[int, dict[str, Any]]  # HTTP status, JSON body
OK: Answer = (200, {"errcode": 0, "errmsg": "ok"})
RATE_LIMITED: Answer = (200, {"errcode": 45009, "errmsg": "api freq out of limit"})
INVALID_KEY: Answer = (
    200,
    {"errcode": 93000, "errmsg": f"invalid webhook url, hint: key {ROBOT_KEY} not found"},
)
UNAVAILABLE: Answer = (503, {})


@dataclass
class Attempt:
    at: float  # time.monotonic() on arrival
    content: str
    status: int
    errcode: int | None


@dataclass
class FakeRobot:
    key: str = ROBOT_KEY
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # next answers, in order
    default: tuple[int, dict[str, Any]] = OK  # the answer once the script is used up
    attempts: list[Attempt] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def delivered(self) -> list[str]:
        """Markdown contents the robot accepted, in arrival order."""
        return [a.content for a in self.attempts if a.status == 200 and a.errcode == 0]

    def answer(self, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            status, answer = self.script.pop(0) if self.script else self.default
            try:
                message = json.loads(body)
                content = message["markdown"]["content"] if message.get("msgtype") == "markdown" else ""
            except (ValueError, KeyError, TypeError):
                status, answer, content = 200, {"errcode": 40008, "errmsg": "invalid message type"}, ""
            if key != self.key:
                status, answer = INVALID_KEY
            elif status == 200 and answer.get("errcode") == 0 and len(content.encode()) > 4096:
                answer = {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
            self.attempts.append(Attempt(time.monotonic(), content, status, answer.get("errcode")))
            return status, answer


@contextmanager
def running_fake_robot(port: int = 0, key: str = ROBOT_KEY) -> Iterator[FakeRobot]:
    fake = FakeRobot(key=key)

    def answer(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if method != "POST" or path != "/cgi-bin/webhook/send":
            return 404, {}
        return fake.answer(query.get("key", ""), body)

    with serving_json(answer, port) as base_url:
        fake.url = f"{base_url}/cgi-bin/webhook/send?key={key}"
        yield fake


def main() -> None:
    parser = argparse.ArgumentParser(description="Print what is posted to a local WeCom robot webhook.")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--key", default="dev-robot-key")
    args = parser.parse_args()
    with running_fake_robot(args.port, args.key) as fake:
        print(f"robot listening: {fake.url}", flush=True)
        shown = 0
        try:
            while True:
                time.sleep(0.2)
                for attempt in fake.attempts[shown:]:
                    print(f"--- {attempt.status} errcode={attempt.errcode}\n{attempt.content}\n", flush=True)
                shown = len(fake.attempts)
        except KeyboardInterrupt:
            return


if __name__ == "__main__":
    main()
