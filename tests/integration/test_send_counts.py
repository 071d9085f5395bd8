"""One contract for the robot's send counters, run against the in-memory fake and the DynamoDB
adapter (moto): the fake used by the unit tests cannot drift from what AWS does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from scrm_sync.adapters.memory import InMemorySendCounts
from scrm_sync.adapters.send_counts import DynamoSendCounts
from scrm_sync.services.alarms import robot_scope
from scrm_sync.services.send_budget import BudgetUnavailable, SendBudget, SendCounts

from tests.alarm_factories import create_checkpoints_table

TABLE = "scrm-test-CheckpointsTable"
SCOPE = robot_scope("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=contract")
T0 = datetime(2026, 11, 25, 2, 0, 5, tzinfo=UTC)


@pytest.fixture
def aws(in_process_aws: None) -> None:
    """The in-process moto mock (tests/integration/conftest.py)."""


@pytest.fixture(params=["memory", "dynamodb"])
def counts(request: pytest.FixtureRequest) -> SendCounts:
    if request.param == "memory":
        return InMemorySendCounts()
    request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    create_checkpoints_table(client, TABLE)
    return DynamoSendCounts(client, TABLE)


def test_increments_only_below_the_ceiling(counts: SendCounts):
    assert [counts.increment_below("k", 3, 100) for _ in range(4)] == [1, 2, 3, None]
    assert counts.counts(["k", "missing"]) == {"k": 3}
    assert counts.increment_below("k", 5, 100) == 4  # a higher ceiling lets more through


def test_a_ceiling_of_zero_or_less_never_creates_a_counter(counts: SendCounts):
    assert counts.increment_below("k", 0, 100) is None
    assert counts.increment_below("k", -3, 100) is None
    assert counts.counts(["k"]) == {}


def test_fill_raises_a_counter_to_the_limit_but_never_lowers_it(counts: SendCounts):
    counts.fill("a", 20, 100)
    for _ in range(5):
        counts.increment_below("b", 30, 100)
    counts.fill("b", 3, 100)
    assert counts.counts(["a", "b"]) == {"a": 20, "b": 5}
    assert counts.increment_below("a", 20, 100) is None


def test_counts_reads_many_keys(counts: SendCounts):
    keys = [f"k{i}" for i in range(130)]  # more than one BatchGetItem
    for key in keys[::2]:
        counts.increment_below(key, 5, 100)
    assert counts.counts(keys) == {key: 1 for key in keys[::2]}


def test_a_budget_over_the_store_hands_out_exactly_the_limit(counts: SendCounts):
    budget = SendBudget(counts)
    claims = [budget.claim(SCOPE, T0 + timedelta(seconds=i)) for i in range(25)]
    assert claims[:20] == list(range(19, -1, -1)) and claims[20:] == [None] * 5
    assert budget.claim(SCOPE, T0 + timedelta(seconds=50)) is None  # 20 in the last 60 s
    assert budget.claim(SCOPE, T0 + timedelta(seconds=75)) is not None  # the first bucket slid out


def test_exhaust_blocks_every_claim_until_the_window_slides(counts: SendCounts):
    budget = SendBudget(counts)
    assert budget.claim(SCOPE, T0) == 19
    budget.exhaust(SCOPE, T0)
    assert budget.claim(SCOPE, T0 + timedelta(seconds=30)) is None
    assert budget.claim(SCOPE, T0 + timedelta(seconds=70)) == 19


def test_dynamodb_items_expire_and_hold_no_robot_key(aws: None):
    client = boto3.client("dynamodb")
    create_checkpoints_table(client, TABLE)
    budget = SendBudget(DynamoSendCounts(client, TABLE))
    budget.claim(SCOPE, T0)
    (item,) = client.scan(TableName=TABLE)["Items"]
    assert item["pk"]["S"] == f"{SCOPE}#2026-11-25T02:00:00Z" and "contract" not in item["pk"]["S"]
    assert int(item["sent"]["N"]) == 1
    assert int(item["expires_at"]["N"]) >= int((T0 + timedelta(seconds=60)).timestamp())


def test_a_missing_table_is_reported_as_budget_unavailable(aws: None):
    counts = DynamoSendCounts(boto3.client("dynamodb"), "no-such-table")
    with pytest.raises(BudgetUnavailable, match="ResourceNotFound"):
        counts.counts(["k"])
    with pytest.raises(BudgetUnavailable, match="ResourceNotFound"):
        counts.increment_below("k", 5, 100)
    with pytest.raises(BudgetUnavailable, match="ResourceNotFound"):
        counts.fill("k", 5, 100)
