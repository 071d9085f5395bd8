"""The edge runtime's MQTT adapters against a real Mosquitto broker.

Uses the broker on 127.0.0.1:1883 when one listens (anonymous access), else starts a private
`mosquitto` on a free port (stopped by PID); skips only when neither is possible. Topics carry a
per-run id, so runs sharing a broker never see each other's messages.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from scrm_edge.runtime.outbox import Outbox
from scrm_edge.runtime.sender import Sender, SenderSettings
from scrm_edge.runtime.sources import MqttSensor
from scrm_edge.runtime.uplinks import MqttUplink, UplinkUnavailable
from scrm_edge.score import format_time

from tests.mqtt_broker import SKIP_REASON, Broker, mqtt_broker
from tests.unit.edge.runtime.support import START, free_port, make_score, window
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with mqtt_broker(tmp_path_factory.mktemp("mosquitto")) as running:
        if running is None:
            pytest.skip(SKIP_REASON)
        yield running


class Subscriber:
    """A paho client recording (topic, payload) of every message on a topic filter, in arrival order."""

    def __init__(self, broker: Broker, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = lambda _c, _u, message: self.messages.append(
            (message.topic, bytes(message.payload))
        )
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_mqtt_uplink_delivers_each_score_once_in_order_through_the_sender(
    broker: Broker, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    devices = [f"pump-{run}", f"fan-{run}"]
    subscriber = Subscriber(broker, "scrm/devices/+/health")
    uplink = MqttUplink(broker.host, port=broker.port, client_id=f"edge-{run}", timeout=10)
    try:
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            for index in range(40):
                for device in devices:
                    outbox.put(make_score(device, window(index)))
            sender = Sender(outbox, uplink, settings=SenderSettings(max_batch_scores=16))
            assert sender.drain() is True
            assert len(outbox) == 0
        wait_for(lambda: len([m for m in subscriber.messages if run in m[0]]) >= 80, timeout=10)
        time.sleep(0.3)  # anything more (a duplicate) would arrive by now
    finally:
        uplink.close()
        subscriber.close()

    received = [(topic, json.loads(payload)) for topic, payload in subscriber.messages if run in topic]
    expected = [(index, device) for index in range(40) for device in sorted(devices)]
    assert [(d["window_start"], d["device_id"]) for _, d in received] == [
        (format_time(window(index)), device) for index, device in expected
    ]
    assert all(topic == f"scrm/devices/{doc['device_id']}/health" for topic, doc in received)


def test_mqtt_uplink_without_a_broker_is_unavailable() -> None:
    uplink = MqttUplink("127.0.0.1", port=free_port(), timeout=2)
    with pytest.raises(UplinkUnavailable, match="unreachable"):
        uplink.send([make_score().to_json()])
    uplink.close()


def test_mqtt_sensor_cuts_float32_chunks_into_windows(broker: Broker) -> None:
    topic = f"sensors/{uuid.uuid4().hex[:8]}/accel"
    arrival = [START + timedelta(seconds=10)]
    sensor = MqttSensor(
        topic,
        window_seconds=1,
        sample_rate_hz=1000,
        host=broker.host,
        port=broker.port,
        scale=2.0,
        now=lambda: arrival[0],
    )
    publisher = Subscriber(broker, f"{topic}/unused")
    stop = threading.Event()
    try:
        sensor.open()
        assert sensor.subscribed.wait(10)
        values = np.arange(2500, dtype=np.float32) / 100
        publisher.publish(topic, b"\x00\x01\x02")  # not a whole float32: skipped and counted
        for chunk in np.split(values, 10):  # 250 readings per message
            publisher.publish(topic, chunk.astype("<f4").tobytes())
        windows = []
        for item in sensor.windows(stop):
            windows.append(item)
            if len(windows) == 2:
                break
    finally:
        stop.set()
        sensor.close()
        publisher.close()
    # The first 250 readings (0.25 s) arrived at START+10 s: the stream began at START+9.75 s.
    assert [start for start, _ in windows] == [
        START + timedelta(seconds=9.75),
        START + timedelta(seconds=10.75),
    ]
    np.testing.assert_allclose(windows[0][1], values[:1000].astype(np.float64) * 2.0)
    np.testing.assert_allclose(windows[1][1], values[1000:2000].astype(np.float64) * 2.0)
    assert sensor.malformed_payloads == 1


def test_mqtt_sensor_reads_json_arrays_and_skips_other_payloads(broker: Broker) -> None:
    topic = f"sensors/{uuid.uuid4().hex[:8]}/accel"
    sensor = MqttSensor(
        topic,
        window_seconds=1,
        sample_rate_hz=1000,
        host=broker.host,
        port=broker.port,
        payload_format="json",
    )
    publisher = Subscriber(broker, f"{topic}/unused")
    stop = threading.Event()
    payloads: list[Any] = [list(range(600)), {"not": "an array"}, ["a", "b"], True, list(range(600, 1200))]
    try:
        sensor.open()
        assert sensor.subscribed.wait(10)
        publisher.publish(topic, b"not json")
        for payload in payloads:
            publisher.publish(topic, json.dumps(payload).encode())
        window_start, readings = next(sensor.windows(stop))
    finally:
        stop.set()
        sensor.close()
        publisher.close()
    np.testing.assert_array_equal(readings, np.arange(1000, dtype=np.float64))
    assert window_start.tzinfo is not None
    assert sensor.malformed_payloads == 4
