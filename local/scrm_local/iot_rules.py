"""AWS IoT Core's rules engine, for the local stack: moto has none. With SCRM_LOCAL_MQTT_URL
(`mqtt://host:port`, e.g. a Mosquitto on 127.0.0.1:1883) the stack subscribes to the broker with
the topic filter of every enabled AWS::IoT::TopicRule in the template and does what the rule says
with each message, as IoT Core does with what devices publish to it:

- `Sql` must be `SELECT * FROM '<topic filter>'` (the form the template uses; a rule in another
  form is logged and left out): the message's payload passes unchanged;
- `Kinesis` actions: PutRecord to the stream, the partition key from the rule's substitution
  template; `${topic()}`, `${topic(N)}` (1-based topic levels), `${newuuid()}`, `${timestamp()}`
  are understood, as in IoT SQL;
- when an action fails, the rule's `S3` ErrorAction puts the payload at its key template.

Subscriptions are QoS 1 on a clean session: what devices publish while the stack is stopped is not
kept for it (the local stack keeps nothing across restarts anyway), and no stale session stays
subscribed on a shared broker.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .aws import Clients
from .template import Template

log = logging.getLogger(__name__)

_SELECT_ALL = re.compile(r"^\s*SELECT\s+\*\s+FROM\s+'([^']+)'\s*$", re.IGNORECASE)
_SUBSTITUTION = re.compile(r"\$\{([^}]*)\}")
_TOPIC_LEVEL = re.compile(r"^topic\((\d*)\)$")
CONNECT_TIMEOUT = 10.0


class UnsupportedRule(ValueError):
    """A topic rule this stand-in cannot run (its SQL or actions)."""


def substitute(template: str, topic: str, now_ms: int | None = None) -> str:
    """A rule's substitution template (`${topic(3)}`, `${newuuid()}` ...) for one message."""
    levels = topic.split("/")

    def value(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        level = _TOPIC_LEVEL.match(expression)
        if level is not None:
            if not level.group(1):
                return topic
            index = int(level.group(1))
            return levels[index - 1] if 1 <= index <= len(levels) else ""
        if expression == "newuuid()":
            return str(uuid.uuid4())
        if expression == "timestamp()":
            return str(now_ms if now_ms is not None else int(time.time() * 1000))
        raise UnsupportedRule(f"substitution ${{{expression}}} is not supported locally")

    return _SUBSTITUTION.sub(value, template)


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (`+` one level, `#` the rest)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(wanted) == len(levels)


@dataclass(frozen=True)
class TopicRule:
    name: str
    topic_filter: str
    kinesis: tuple[tuple[str, str], ...]  # (stream name, partition key template)
    error_s3: tuple[str, str] | None  # (bucket, key template)

    @classmethod
    def from_properties(cls, name: str, properties: dict[str, Any]) -> TopicRule:
        payload = properties.get("TopicRulePayload") or {}
        select = _SELECT_ALL.match(str(payload.get("Sql", "")))
        if select is None:
            raise UnsupportedRule(f"{name}: only rules passing whole messages of one topic run locally")
        kinesis = []
        for action in payload.get("Actions") or []:
            if set(action) != {"Kinesis"}:
                raise UnsupportedRule(f"{name}: only Kinesis actions run locally (got {sorted(action)})")
            spec = action["Kinesis"]
            kinesis.append((str(spec["StreamName"]), str(spec.get("PartitionKey") or "${newuuid()}")))
        error = (payload.get("ErrorAction") or {}).get("S3")
        error_s3 = (str(error["BucketName"]), str(error["Key"])) if error else None
        return cls(name, select.group(1), tuple(kinesis), error_s3)


def rules_of(template: Template) -> list[TopicRule]:
    rules = []
    for lid in template.logical_ids("AWS::IoT::TopicRule"):
        properties = template.resolver.properties(lid)
        if (properties.get("TopicRulePayload") or {}).get("RuleDisabled") is True:
            continue
        try:
            rules.append(TopicRule.from_properties(lid, properties))
        except UnsupportedRule as exc:
            log.warning("IoT rule left out of the local stack: %s", exc)
    return rules


class IotRuleBridge:
    """Runs the template's topic rules on the messages of an MQTT broker."""

    def __init__(self, url: str, rules: list[TopicRule], clients: Clients, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        parsed = urlparse(url)
        if parsed.scheme != "mqtt" or not parsed.hostname:
            raise ValueError(f"expected mqtt://host:port, got {url!r}")
        self.url = url
        self.rules = rules
        self._kinesis = clients("kinesis")
        self._s3 = clients("s3")
        self._host, self._port = parsed.hostname, parsed.port or 1883
        self._connected = threading.Event()
        self.delivered = 0
        self.failed = 0
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT):
            self._client.loop_stop()
            raise ConnectionError(f"no MQTT broker answered at {self.url}")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker %s refused the connection: %s", self.url, reason)
            return
        for rule in self.rules:  # (re)subscribe on every connect: a broker restart forgets nothing then
            client.subscribe(rule.topic_filter, qos=1)
        self._connected.set()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        for rule in self.rules:
            if matches(rule.topic_filter, message.topic):
                self.apply(rule, message.topic, bytes(message.payload))

    def apply(self, rule: TopicRule, topic: str, payload: bytes) -> None:
        now_ms = int(time.time() * 1000)
        for stream, key_template in rule.kinesis:
            try:
                key = substitute(key_template, topic, now_ms) or "-"
                self._kinesis.put_record(StreamName=stream, Data=payload, PartitionKey=key[:256])
                self.delivered += 1
            except Exception as exc:
                self.failed += 1
                log.warning("IoT rule %s: Kinesis action failed on %s: %s", rule.name, topic, exc)
                self._error_action(rule, topic, payload, now_ms)

    def _error_action(self, rule: TopicRule, topic: str, payload: bytes, now_ms: int) -> None:
        if rule.error_s3 is None:
            return
        bucket, key_template = rule.error_s3
        try:
            self._s3.put_object(Bucket=bucket, Key=substitute(key_template, topic, now_ms), Body=payload)
        except Exception:
            log.exception("IoT rule %s: the S3 error action failed too; the message is lost", rule.name)
