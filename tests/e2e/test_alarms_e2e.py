"""Alarms to the WeCom group through `scrm local run`: `scrm invoke` of a sample posts the right
markdown to the robot named in the channels file (a local fake robot), and 50 alarms published
to AlarmTopic in a burst become at most 20 posts that minute, naming every alarm."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.alarm_factories import alarm_message
from tests.e2e.conftest import RunningStack, start_local_stack
from tests.fake_robot import FakeRobot, running_fake_robot

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def robot() -> Iterator[FakeRobot]:
    with running_fake_robot() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(robot: FakeRobot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    channels = json.loads((ROOT / "config" / "channels.dev.json").read_text())
    channels["wecom_robot"] = {"webhook_url": robot.url}
    path = tmp_path_factory.mktemp("channels") / "channels.json"
    path.write_text(json.dumps(channels))
    with start_local_stack({"SCRM_CHANNELS_FILE": str(path)}) as running:
        yield running


def test_invoking_the_forwarder_with_a_sample_posts_the_markdown(stack, robot):
    result = stack.scrm(
        "invoke",
        "AlarmForwarderFunction",
        "--event",
        str(ROOT / "events/alarms/sync_success_rate_alarm.json"),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    (posted,) = robot.delivered
    assert "SyncSuccessRate" in posted and "ALARM" in posted
    assert "Asia/Shanghai" in posted or "+08:00" in posted or "CST" in posted
    assert "console.aws.amazon.com" in posted or "console.amazonaws.cn" in posted
    assert len(posted.encode()) <= 4096
    assert "dev-robot-key" not in result.stderr  # the robot's key is never logged


def test_a_burst_of_50_alarms_becomes_at_most_20_posts_naming_every_alarm(stack, robot):
    endpoint = f"http://127.0.0.1:{stack.env['MOTO_PORT']}"
    sns = boto3.client(
        "sns",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if "AlarmTopic" in t["TopicArn"]]
    before = len(robot.delivered)
    names = [f"burst-alarm-{i:02d}" for i in range(50)]
    started = time.monotonic()
    for name in names:
        sns.publish(TopicArn=topic, Message=alarm_message(name))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = "\n".join(robot.delivered[before:])
        if all(name in text for name in names):
            break
        time.sleep(0.5)
    posts = robot.delivered[before:]
    missing = [name for name in names if name not in "\n".join(posts)]
    assert missing == []
    assert len(posts) <= 20
    sent = sorted(a.at for a in robot.attempts if a.errcode == 0)  # the robot's limit: 20 in any minute
    assert all(sum(1 for t in sent if first <= t < first + 60) <= 20 for first in sent)
    assert time.monotonic() - started < 90
