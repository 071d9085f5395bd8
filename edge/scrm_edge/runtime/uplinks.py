"""Uplinks: how a batch of score documents (the wire JSON, oldest first) reaches the cloud.

Every uplink has `send(batch)` with one contract, which the sender relies on:
  * it returns: every score of the batch is stored by the cloud;
  * it raises `UplinkRejected`: every score is stored except those it names, which the cloud
    refuses for good (they go to the outbox's `rejected` table, never retried);
  * it raises `UplinkUnavailable`: the first `delivered` scores are stored, the rest may or may not
    be (network down, timeout, 5xx, throttled): send them again later. The cloud keeps one score
    per (device_id, window_start), so a score sent twice after a lost acknowledgement is harmless.

paho-mqtt and the AWS IoT Device SDK (Greengrass IPC) are imported only by the uplinks that use them.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

HEALTH_TOPIC = "scrm/devices/{device_id}/health"  # the recipe's IPC permission: scrm/devices/+/health
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 900.0


class UplinkUnavailable(Exception):
    """Transient: send again later. `delivered` leading scores of the batch are already stored."""

    def __init__(self, message: str, *, delivered: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.retry_after = retry_after


class UplinkRejected(Exception):
    """Permanent, for the named scores only (batch index -> reason); the others are stored."""

    def __init__(self, reasons: dict[int, str]) -> None:
        super().__init__(
            f"{len(reasons)} score(s) rejected: " + "; ".join(f"#{i}: {r}" for i, r in reasons.items())
        )
        self.reasons = reasons


class Uplink(Protocol):
    def send(self, batch: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str:
        """For logs: where scores go, without secrets."""
        ...


def device_topic(document: bytes, template: str = HEALTH_TOPIC) -> str:
    """The MQTT topic of a score document: its device_id in the topic template."""
    device_id = json.loads(document)["device_id"]
    if not isinstance(device_id, str) or not device_id or any(c in device_id for c in "/+#"):
        raise ValueError("device_id is not usable in an MQTT topic")
    return template.format(device_id=device_id)


class HttpUplink:
    """POST {"scores": [...]} to the cloud's device health API with an `x-api-key` header.

    The API answers 2xx (202 all stored, 207 some refused) or 422 (all refused) with
    {"accepted": n, "rejected": [{"index": i, "field": ..., "message": ...}, ...]} (one entry per
    error; "duplicates": n may be given too). A refusal that names no score (400, 413) is narrowed
    down by sending the batch one score at a time, so a bad score cannot hold back the good ones.
    401/403/404 and other 4xx are configuration problems, not the scores' fault: they count as
    unavailable, so the scores wait (and the logs say why) until the configuration is fixed.
    """

    MAX_SCORES_PER_REQUEST = 500  # the API's limit (scrm_sync.domain.device_health)

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = 10.0, ca_file: str | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an http:// or https:// URL")
        self.url = url
        self.timeout = timeout
        self._api_key = api_key
        context = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        self._context = context

    def describe(self) -> str:
        return f"HTTP POST {self.url}" + (" (with x-api-key)" if self._api_key else "")

    def __repr__(self) -> str:  # never the key
        return f"HttpUplink({self.url!r})"

    def send(self, batch: Sequence[bytes]) -> None:
        if not batch:
            return
        status, body, retry_after = self._post(batch)
        if 200 <= status < 300:
            reasons = self._rejections(body, len(batch))
            _check_counts(body, len(batch), len(reasons))
            if reasons:
                raise UplinkRejected(reasons)
            return
        if status in TRANSIENT_HTTP_STATUSES:
            raise UplinkUnavailable(f"HTTP {status} from {self.url}", retry_after=retry_after)
        if status in (400, 413, 422):
            self._narrow_down(batch, status, body)
            return
        raise UplinkUnavailable(f"HTTP {status} from {self.url}: check the uplink's URL and API key")

    def close(self) -> None:
        return None

    def _narrow_down(self, batch: Sequence[bytes], status: int, body: Any) -> None:
        """A 4xx for the request as a whole: find which scores are refused, store the others."""
        named = self._rejections(body, len(batch))
        if len(batch) == 1:
            raise UplinkRejected(named or {0: f"HTTP {status}: {_message(body)}"})
        if named:
            # The request was refused as a whole, so nothing was stored: send the others again.
            others = [i for i in range(len(batch)) if i not in named]
            reasons = dict(named)
        else:
            others, reasons = list(range(len(batch))), {}
        for index in others:
            try:
                self.send([batch[index]])
            except UplinkRejected as refusal:
                reasons[index] = refusal.reasons.get(0, str(refusal))
            except UplinkUnavailable as error:
                # Scores before `index` are stored unless refused: report the stored prefix.
                delivered = min([index, *reasons])
                raise UplinkUnavailable(
                    str(error), delivered=delivered, retry_after=error.retry_after
                ) from error
        if reasons:
            raise UplinkRejected(dict(sorted(reasons.items())))

    def _post(self, batch: Sequence[bytes]) -> tuple[int, Any, float | None]:
        body = b'{"scores":[' + b",".join(batch) + b"]}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:  # noqa: S310
                return response.status, _json_or_none(response.read()), None
        except urllib.error.HTTPError as error:
            retry_after = _retry_after(error.headers.get("Retry-After") if error.headers else None)
            try:
                payload = _json_or_none(error.read())
            except (OSError, http.client.HTTPException):
                payload = None
            return error.code, payload, retry_after
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise UplinkUnavailable(f"{self.url} unreachable: {reason}") from error

    @staticmethod
    def _rejections(body: Any, size: int) -> dict[int, str]:
        if not isinstance(body, dict) or not isinstance(body.get("rejected"), list):
            return {}
        reasons: dict[int, str] = {}
        for item in body["rejected"]:
            if not isinstance(item, dict):
                continue
            index = item.get("index")
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < size:
                field, message = item.get("field"), item.get("message")
                reason = f"{field}: {message}" if field else str(message)
                # The API lists one entry per error: a score may have several.
                reasons[index] = f"{reasons[index]}; {reason}" if index in reasons else reason
        return reasons


def _check_counts(body: Any, size: int, rejected: int) -> None:
    if isinstance(body, dict) and isinstance(body.get("accepted"), int):
        counted = body["accepted"] + int(body.get("duplicates") or 0) + rejected
        if counted != size:
            log.warning("the API accounted for %d of %d scores sent", counted, size)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return "refused"


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored), capped at 15 minutes."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class MqttUplink:
    """Publish each score at QoS 1 to scrm/devices/{device_id}/health and wait for its PUBACK.

    For AWS IoT Core: port 8883 with the device certificate, key and the Amazon root CA. A score
    counts as delivered only once its PUBACK arrived; on any failure the connection is dropped and
    rebuilt on the next send, so paho's own queue never resends a score behind the sender's back
    (which could reorder scores or send them after a newer one).
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 8883,
        client_id: str = "",
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
        topic_template: str = HEALTH_TOPIC,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.username = username
        self._password = password
        self.topic_template = topic_template
        self.timeout = timeout
        self._client: Any = None

    def describe(self) -> str:
        tls = f" TLS (ca={self.ca_file}, cert={self.cert_file})" if self.ca_file or self.cert_file else ""
        return f"MQTT {self.host}:{self.port}{tls} topic {self.topic_template}"

    def send(self, batch: Sequence[bytes]) -> None:
        topics: list[str | None] = []
        reasons: dict[int, str] = {}
        for index, document in enumerate(batch):
            try:
                topics.append(device_topic(document, self.topic_template))
            except (ValueError, KeyError, TypeError) as error:
                topics.append(None)
                reasons[index] = f"no topic for this document: {error}"
        client = self._connected_client()
        for index, (document, topic) in enumerate(zip(batch, topics, strict=True)):
            if topic is None:
                continue
            try:
                info = client.publish(topic, document, qos=1)
                info.wait_for_publish(timeout=self.timeout)
                published = info.is_published()
            except (RuntimeError, ValueError, OSError) as error:
                published, detail = False, str(error)
            else:
                detail = "no PUBACK in time"
            if not published:
                self._drop_client()
                # Earlier scores got their PUBACK; a refused one ends the stored prefix.
                delivered = min([index, *reasons])
                raise UplinkUnavailable(f"MQTT publish to {topic} failed: {detail}", delivered=delivered)
        if reasons:
            raise UplinkRejected(reasons)

    def _connected_client(self) -> Any:
        import paho.mqtt.client as mqtt  # only for this uplink

        if self._client is not None and self._client.is_connected():
            return self._client
        self._drop_client()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        if self.username is not None:
            client.username_pw_set(self.username, self._password)
        if self.ca_file or self.cert_file:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        connected = _Flag()

        def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
            connected.set(not reason_code.is_failure, str(reason_code))

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=60)
        except (OSError, ValueError) as error:
            raise UplinkUnavailable(f"MQTT {self.host}:{self.port} unreachable: {error}") from error
        client.loop_start()
        if not connected.wait(self.timeout) or not connected.ok:
            client.loop_stop()
            client.disconnect()
            raise UplinkUnavailable(
                f"MQTT {self.host}:{self.port} did not accept the connection: {connected.detail}"
            )
        self._client = client
        return client

    def _drop_client(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.disconnect()
            client.loop_stop()

    def close(self) -> None:
        self._drop_client()


class _Flag:
    """The outcome of a connection attempt, set by paho's network thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.ok = False
        self.detail = "no answer in time"

    def set(self, ok: bool, detail: str) -> None:
        self.ok, self.detail = ok, detail
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class GreengrassIpcUplink:
    """Publish through the Greengrass nucleus (IPC PublishToIoTCore, QoS 1) on a core device.

    Needs the recipe's accessControl for aws.greengrass.ipc.mqttproxy on scrm/devices/+/health.
    A publish that returns is accepted by the nucleus, which delivers it with the core device's
    own connection and spooler. `client` is a GreengrassCoreIPCClientV2 (made on first use).
    """

    AT_LEAST_ONCE = "1"  # awsiot.greengrasscoreipc.model.QOS.AT_LEAST_ONCE

    def __init__(self, *, client: Any = None, topic_template: str = HEALTH_TOPIC) -> None:
        self._client = client
        self._owns_client = client is None
        self.topic_template = topic_template

    def describe(self) -> str:
        return f"Greengrass IPC PublishToIoTCore topic {self.topic_template}"

    def _ipc(self) -> Any:
        if self._client is None:
            from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2  # only on a core device

            self._client = GreengrassCoreIPCClientV2()
        return self._client

    def send(self, batch: Sequence[bytes]) -> None:
        reasons: dict[int, str] = {}
        for index, document in enumerate(batch):
            try:
                topic = device_topic(document, self.topic_template)
            except (ValueError, KeyError, TypeError) as error:
                reasons[index] = f"no topic for this document: {error}"
                continue
            try:
                self._ipc().publish_to_iot_core(topic_name=topic, qos=self.AT_LEAST_ONCE, payload=document)
            except Exception as error:  # the SDK's errors are not importable off a core device
                kind = type(error).__name__
                if kind == "InvalidArgumentsError":  # this message is refused, not the connection
                    reasons[index] = f"{kind}: {error}"
                    continue
                if kind == "UnauthorizedError":
                    log.error(
                        "Greengrass refused PublishToIoTCore on %s: check the recipe's accessControl", topic
                    )
                elif self._owns_client:
                    self._reset_client()  # a broken IPC connection: connect again next time
                delivered = min([index, *reasons])  # a refused score ends the stored prefix
                raise UplinkUnavailable(
                    f"IPC publish to {topic} failed: {kind}: {error}", delivered=delivered
                ) from error
        if reasons:
            raise UplinkRejected(reasons)

    def _reset_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection may fail too
                log.debug("closing the IPC client failed", exc_info=True)

    def close(self) -> None:
        if self._owns_client:
            self._reset_client()
