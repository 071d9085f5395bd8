"""A local webhook receiver that checks deliveries the way a subscriber would: every POST is
verified with the Standard Webhooks reference library (``standardwebhooks``, a test-only
dependency), never with this project's own signing code. Tests never call the internet.

Verified deliveries are kept once per ``webhook-id`` (receivers dedupe on it) and every raw
attempt is recorded. Unverifiable requests are answered 400 and recorded as rejected. It can be
told to fail the first N verified attempts (HTTP 500), to always fail, or to answer slowly.

Run it next to the local stack to watch deliveries:
    python -m tests.fake_receiver --port 9998 --secret whsec_...
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

# 32 random bytes; a test secret, not a real one
RECEIVER_SECRET = "whsec_X09iyXZoUO/evHu/83LYlXP2rBs4gkygN0Pypcq06eM="


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic() on arrival
    path: str  # with its query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered
    verified: bool


@dataclass
class FakeReceiver:
    secret: str
    fail_first: int = 0  # answer 500 to this many verified attempts, then 200
    always_fail: bool = False
    delay: float = 0.0  # seconds to wait before answering
    status_on_failure: int = 500
    url: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    deliveries: dict[str, Any] = field(default_factory=dict)  # webhook-id -> verified JSON body
    rejected: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def attempt_count(self) -> int:
        return len(self.attempts)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            document = Webhook(self.secret).verify(body, headers)
            verified = True
        except (WebhookVerificationError, ValueError):
            document, verified = None, False
        with self.lock:
            if not verified:
                status = 400
            elif self.always_fail or self.fail_first > 0:
                self.fail_first = max(self.fail_first - 1, 0)
                status = self.status_on_failure
            else:
                status = 200
                self.deliveries.setdefault(headers["webhook-id"], document)
            attempt = Attempt(time.monotonic(), path, headers, body, status, verified)
            self.attempts.append(attempt)
            if not verified:
                self.rejected.append(attempt)
        return status


@contextmanager
def running_receiver(
    secret: str = RECEIVER_SECRET,
    *,
    fail_first: int = 0,
    always_fail: bool = False,
    delay: float = 0.0,
    port: int = 0,
    path: str = "/hooks/profiles",
) -> Iterator[FakeReceiver]:
    """A receiver on 127.0.0.1; ``.url`` is where to deliver (settings can be changed while it runs)."""
    fake = FakeReceiver(secret, fail_first=fail_first, always_fail=always_fail, delay=delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fake.delay:
                time.sleep(fake.delay)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = fake.answer(self.path, headers, body)
            payload = b"{}" if status == 200 else json.dumps({"status": status}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the sender gave up waiting (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        fake.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Verify and print outbound webhook deliveries.")
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--secret", default=RECEIVER_SECRET)
    args = parser.parse_args()
    with running_receiver(args.secret, port=args.port) as fake:
        print(f"receiver listening: {fake.url}", flush=True)
        shown = 0
        try:
            while True:
                time.sleep(0.2)
                for attempt in fake.attempts[shown:]:
                    print(f"--- {attempt.status} {attempt.headers.get('webhook-id')}", flush=True)
                    print(attempt.body.decode("utf-8", "replace"), flush=True)
                shown = len(fake.attempts)
        except KeyboardInterrupt:
            return


if __name__ == "__main__":
    main()
