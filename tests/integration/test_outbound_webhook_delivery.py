"""Outbound webhook deliveries over real HTTP to a local receiver (tests/fake_receiver.py) that
verifies them with the Standard Webhooks reference library, not with this project's code."""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from scrm_sync.adapters.webhook_sender import HttpWebhookSender
from scrm_sync.domain.outbound_webhooks import WebhookSubscriptions, signed_headers
from scrm_sync.services.outbound_webhooks import (
    DeliveryFailed,
    ReceiverUnreachable,
    WebhookDelivery,
    documents_for,
)

from tests.fake_receiver import RECEIVER_SECRET, running_receiver
from tests.unit.domain.test_outbound_webhooks import DOCUMENT

OTHER_SECRET = "whsec_rUle6+k2wJpxbYJowgrbiFpiSvl9AL3JyM5/en+U8H8="


def delivery(url: str, secret: str = RECEIVER_SECRET, sender=None, **options) -> WebhookDelivery:
    subscriptions = WebhookSubscriptions.parse({"crm": {"url": url, "secret": secret, **options}})
    return WebhookDelivery(lambda: subscriptions, sender or HttpWebhookSender(), lambda: datetime.now(UTC))


def crm_body(**options) -> bytes:
    config = {"crm": {"url": "http://x", "secret": RECEIVER_SECRET, **options}}
    return dict(documents_for(WebhookSubscriptions.parse(config), DOCUMENT))["crm"]


def test_a_delivery_verifies_with_the_reference_library():
    with running_receiver() as receiver:
        result = delivery(receiver.url).deliver("crm", crm_body(), DOCUMENT["id"])
    assert result.delivered and result.status == 200
    assert list(receiver.deliveries) == [DOCUMENT["id"]]
    verified = receiver.deliveries[DOCUMENT["id"]]
    assert verified["id"] == DOCUMENT["id"] and "identifiers" not in verified
    attempt = receiver.attempts[0]
    assert attempt.body == crm_body()
    assert attempt.headers["content-type"] == "application/json"
    assert attempt.headers["user-agent"].startswith("omnichannel-scrm-sync")


def test_three_failures_then_the_fourth_attempt_delivers_with_the_same_id():
    with running_receiver(fail_first=3) as receiver:
        deliver = delivery(receiver.url)
        for _ in range(3):
            with pytest.raises(DeliveryFailed, match="webhook crm: HTTP 500"):
                deliver.deliver("crm", crm_body(), DOCUMENT["id"])
        assert deliver.deliver("crm", crm_body(), DOCUMENT["id"]).delivered
        assert deliver.deliver("crm", crm_body(), DOCUMENT["id"]).delivered  # a redelivery: deduped
    assert receiver.attempt_count == 5
    assert [a.status for a in receiver.attempts] == [500, 500, 500, 200, 200]
    assert {a.headers["webhook-id"] for a in receiver.attempts} == {DOCUMENT["id"]}
    assert list(receiver.deliveries) == [DOCUMENT["id"]]
    assert all(a.verified for a in receiver.attempts) and receiver.rejected == []


def test_a_receiver_that_always_fails_keeps_failing():
    with running_receiver(always_fail=True) as receiver:
        for _ in range(2):
            with pytest.raises(DeliveryFailed, match="HTTP 500"):
                delivery(receiver.url).deliver("crm", crm_body(), DOCUMENT["id"])
    assert receiver.deliveries == {} and receiver.attempt_count == 2


class TamperingSender(HttpWebhookSender):
    """Changes the body after it was signed (a man in the middle)."""

    def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        return super().post(url, headers, body.replace(b"gold", b"diamond"), timeout)


def test_a_tampered_body_is_rejected_by_the_receiver():
    with running_receiver() as receiver, pytest.raises(DeliveryFailed, match="HTTP 400"):
        delivery(receiver.url, sender=TamperingSender()).deliver("crm", crm_body(), DOCUMENT["id"])
    assert len(receiver.rejected) == 1 and receiver.deliveries == {}


def test_a_wrong_secret_is_rejected_by_the_receiver():
    with running_receiver() as receiver, pytest.raises(DeliveryFailed, match="HTTP 400"):
        delivery(receiver.url, secret=OTHER_SECRET).deliver("crm", crm_body(), DOCUMENT["id"])
    assert len(receiver.rejected) == 1 and receiver.deliveries == {}


def test_a_stale_timestamp_is_rejected_by_the_receiver():
    body = crm_body()
    stale = int(datetime.now(UTC).timestamp()) - 600
    with running_receiver() as receiver:
        status = HttpWebhookSender().post(
            receiver.url, signed_headers(RECEIVER_SECRET, "chg_1", stale, body), body, 2
        )
    assert status == 400 and len(receiver.rejected) == 1


def test_a_slow_receiver_times_out_and_the_error_carries_no_url():
    with (
        running_receiver(delay=2.5, path="/hooks?token=abc") as receiver,
        pytest.raises(DeliveryFailed) as failed,
    ):
        delivery(receiver.url, timeout_seconds=1).deliver("crm", crm_body(), DOCUMENT["id"])
    assert failed.value.reason == "receiver unreachable (timed out)"
    text = str(failed.value)
    assert "token" not in text and "abc" not in text and "127.0.0.1" not in text
    assert failed.value.__cause__ is None  # nothing chained that could carry the URL
    assert failed.value.__context__ is None or failed.value.__suppress_context__


def test_an_error_answer_never_leaks_the_query_string():
    with (
        running_receiver(always_fail=True, path="/hooks?token=abc") as receiver,
        pytest.raises(DeliveryFailed) as failed,
    ):
        delivery(receiver.url).deliver("crm", crm_body(), DOCUMENT["id"])
    assert receiver.attempts[0].path == "/hooks?token=abc"  # the token did reach the receiver
    assert str(failed.value) == "webhook crm: HTTP 500"


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ReceiverUnreachable, match="connection refused"):
        HttpWebhookSender().post(f"http://127.0.0.1:{port}/x?token=abc", {}, b"{}", 1)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(status):
    seen: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert HttpWebhookSender().post(url, {"content-type": "application/json"}, b"{}", 2) == status
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["/hook"]
