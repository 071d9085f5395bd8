"""Uplinks: stored, refused for good (named scores only) or unavailable (send again later)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scrm_edge.runtime.uplinks import (
    HEALTH_TOPIC,
    GreengrassIpcUplink,
    HttpUplink,
    UplinkRejected,
    UplinkUnavailable,
    device_topic,
)

from tests.unit.edge.runtime.support import API_KEY, free_port, make_score, running_receiver, window


def documents(count: int, device_id: str = "pump-0042") -> list[bytes]:
    return [make_score(device_id, window(index)).to_json() for index in range(count)]


def refuse_bad_class(document: dict[str, Any]) -> str | None:
    return "unknown machine class" if document["machine_class"] == "bad" else None


def bad_document(index: int) -> bytes:
    document = json.loads(make_score(window_start=window(index)).to_json())
    document["machine_class"] = "bad"
    return json.dumps(document).encode()


@dataclass
class Scripted:
    """An HTTP server answering from a script of (status, headers, body, delay) per request."""

    script: list[tuple[int, dict[str, str], dict[str, Any] | None, float]]
    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def scripted(*answers: tuple[int, dict[str, str], dict[str, Any] | None, float]) -> Iterator[Scripted]:
    state = Scripted(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            status, headers, body, delay = state.script.pop(0)
            time.sleep(delay)
            payload = json.dumps(body).encode() if body is not None else b""
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (the timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/devices/health"
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_http_posts_the_documents_as_scores_with_the_api_key() -> None:
    batch = documents(3)
    with running_receiver() as receiver:
        HttpUplink(receiver.url, api_key=API_KEY).send(batch)
    assert [request.api_key for request in receiver.requests] == [API_KEY]
    assert [receiver.stored[key] for key in receiver.stored_order] == [json.loads(d) for d in batch]


def test_http_names_the_scores_the_api_refuses_and_the_others_are_stored() -> None:
    batch = [documents(1)[0], bad_document(1), make_score(window_start=window(2)).to_json()]
    with running_receiver(refuse=refuse_bad_class) as receiver, pytest.raises(UplinkRejected) as refusal:
        HttpUplink(receiver.url, api_key=API_KEY).send(batch)
    assert refusal.value.reasons == {1: "machine_class: unknown machine class"}
    assert [request.status for request in receiver.requests] == [207]
    assert len(receiver.stored) == 2


def test_http_422_when_every_score_is_refused() -> None:
    with running_receiver(refuse=refuse_bad_class) as receiver, pytest.raises(UplinkRejected) as refusal:
        HttpUplink(receiver.url, api_key=API_KEY).send([bad_document(0), bad_document(1)])
    assert sorted(refusal.value.reasons) == [0, 1]
    assert [request.status for request in receiver.requests] == [422]


def test_several_errors_for_one_score_are_joined() -> None:
    rejected = [
        {"index": 0, "field": "zone", "message": "not a zone"},
        {"index": 0, "field": "score", "message": "over 100"},
    ]
    with (
        scripted((207, {}, {"accepted": 1, "rejected": rejected}, 0)) as server,
        pytest.raises(UplinkRejected) as refusal,
    ):
        HttpUplink(server.url).send(documents(2))
    assert refusal.value.reasons == {0: "zone: not a zone; score: over 100"}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_http_transient_statuses_are_unavailable_with_retry_after(status: int) -> None:
    with (
        scripted((status, {"Retry-After": "7"}, {"message": "busy"}, 0)) as server,
        pytest.raises(UplinkUnavailable) as failure,
    ):
        HttpUplink(server.url).send(documents(2))
    assert failure.value.retry_after == 7
    assert failure.value.delivered == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_http_configuration_errors_keep_the_scores_waiting(status: int) -> None:
    with (
        scripted((status, {}, {"message": "no"}, 0)) as server,
        pytest.raises(UplinkUnavailable, match="check the uplink's URL and API key"),
    ):
        HttpUplink(server.url, api_key="wrong").send(documents(2))


def test_a_wrong_api_key_is_unavailable_not_rejected() -> None:
    with running_receiver() as receiver, pytest.raises(UplinkUnavailable):
        HttpUplink(receiver.url, api_key="wrong").send(documents(1))
    assert receiver.stored == {}


def test_a_refusal_naming_no_score_is_narrowed_down_one_score_at_a_time() -> None:
    answers = [
        (400, {}, {"message": 'body must be {"scores": [...]}'}, 0.0),
        (202, {}, {"accepted": 1, "rejected": []}, 0.0),
        (400, {}, {"message": "bad score"}, 0.0),
        (202, {}, {"accepted": 1, "rejected": []}, 0.0),
    ]
    batch = documents(3)
    with scripted(*answers) as server, pytest.raises(UplinkRejected) as refusal:
        HttpUplink(server.url).send(batch)
    assert refusal.value.reasons == {1: "HTTP 400: bad score"}
    assert [len(body["scores"]) for body in server.bodies] == [3, 1, 1, 1]
    assert [body["scores"][0] for body in server.bodies[1:]] == [json.loads(d) for d in batch]


def test_narrowing_down_stops_at_an_outage_and_reports_the_stored_prefix() -> None:
    answers = [
        (413, {}, None, 0.0),
        (202, {}, {"accepted": 1, "rejected": []}, 0.0),
        (503, {}, None, 0.0),
    ]
    with scripted(*answers) as server, pytest.raises(UplinkUnavailable) as failure:
        HttpUplink(server.url).send(documents(3))
    assert failure.value.delivered == 1


def test_an_unreachable_api_is_unavailable() -> None:
    with pytest.raises(UplinkUnavailable, match="unreachable"):
        HttpUplink(f"http://127.0.0.1:{free_port()}/devices/health", timeout=2).send(documents(1))


def test_a_slow_api_times_out_as_unavailable() -> None:
    with (
        scripted((202, {}, {"accepted": 1, "rejected": []}, 1.0)) as server,
        pytest.raises(UplinkUnavailable),
    ):
        HttpUplink(server.url, timeout=0.2).send(documents(1))


def test_a_lost_acknowledgement_is_unavailable_though_the_api_stored_the_scores() -> None:
    with running_receiver(mode=lambda: "lost_ack") as receiver, pytest.raises(UplinkUnavailable):
        HttpUplink(receiver.url, api_key=API_KEY).send(documents(2))
    assert len(receiver.stored) == 2


def test_the_api_key_never_shows_in_descriptions() -> None:
    uplink = HttpUplink("https://api.example.com/devices/health", api_key=API_KEY)
    assert API_KEY not in repr(uplink)
    assert API_KEY not in uplink.describe()
    with pytest.raises(ValueError, match="http"):
        HttpUplink("ftp://api.example.com/devices/health")


def test_device_topic_follows_the_template() -> None:
    assert device_topic(documents(1, "press-7:line.2")[0]) == "scrm/devices/press-7:line.2/health"
    assert HEALTH_TOPIC == "scrm/devices/{device_id}/health"
    with pytest.raises(ValueError):
        device_topic(b'{"device_id": "a/b"}')


class FakeIpcClient:
    """Stands in for awsiot.greengrasscoreipc.clientv2.GreengrassCoreIPCClientV2."""

    def __init__(self, failures: dict[int, Exception] | None = None) -> None:
        self.failures = failures or {}
        self.published: list[tuple[str, str, bytes]] = []
        self.calls = 0

    def publish_to_iot_core(self, *, topic_name: str, qos: str, payload: bytes) -> object:
        call, self.calls = self.calls, self.calls + 1
        if call in self.failures:
            raise self.failures[call]
        self.published.append((topic_name, qos, payload))
        return object()


class UnauthorizedError(Exception):
    """Named like the SDK's error, which the uplink recognises by name."""


class InvalidArgumentsError(Exception):
    pass


def test_greengrass_ipc_publishes_each_score_at_least_once_to_its_device_topic() -> None:
    client = FakeIpcClient()
    batch = documents(2, "pump-0042") + documents(1, "fan-3")
    GreengrassIpcUplink(client=client).send(batch)
    assert client.published == [
        ("scrm/devices/pump-0042/health", "1", batch[0]),
        ("scrm/devices/pump-0042/health", "1", batch[1]),
        ("scrm/devices/fan-3/health", "1", batch[2]),
    ]


def test_greengrass_ipc_failure_reports_what_was_published() -> None:
    client = FakeIpcClient({2: UnauthorizedError("not authorized")})
    with pytest.raises(UplinkUnavailable) as failure:
        GreengrassIpcUplink(client=client).send(documents(4))
    assert failure.value.delivered == 2
    assert len(client.published) == 2


def test_greengrass_ipc_refused_arguments_reject_that_score_only() -> None:
    client = FakeIpcClient({1: InvalidArgumentsError("payload too large")})
    with pytest.raises(UplinkRejected) as refusal:
        GreengrassIpcUplink(client=client).send(documents(3))
    assert list(refusal.value.reasons) == [1]
    assert len(client.published) == 2
