"""The shared WeCom credential cache on the checkpoints table (moto server built from
template.yaml) against the local WeCom stand-in: many execution environments at once make one
WeCom call per credential, an expired ticket is refreshed once, a token WeCom refuses is replaced
once, and a refresher that dies does not block the others for longer than its lease."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from scrm_sync.adapters.credential_cache import CredentialUnavailable, DynamoCredentialCache
from scrm_sync.adapters.wecom_api import WeComApi, WeComUnavailable
from scrm_sync.domain.shared_credentials import REFRESH_MARGIN_SECONDS

from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, running_fake_wecom
from tests.integration.conftest import AppResources

ENVIRONMENTS = 20


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with running_fake_wecom() as server:
        server.latency_seconds = 0.2  # long enough for every caller to arrive while one refreshes
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def environments(app_resources: AppResources, fake: FakeWeCom, clock: Clock) -> list[WeComApi]:
    """One WeComApi per simulated execution environment: own client, own in-process memo, one table."""
    table = app_resources.table("CheckpointsTable")

    def environment() -> WeComApi:
        cache = DynamoCredentialCache(
            app_resources.clients("dynamodb"), table, clock=clock, poll_seconds=0.02
        )
        return WeComApi(CORP_ID, SECRET, fake.base_url, timeout=5, credentials=cache)

    return [environment() for _ in range(ENVIRONMENTS)]


def all_at_once(environments: list[WeComApi], call: Callable[[WeComApi], Any]) -> list[Any]:
    start = threading.Barrier(len(environments))

    def run(api: WeComApi) -> Any:
        start.wait()
        return call(api)

    with ThreadPoolExecutor(len(environments)) as pool:
        return list(pool.map(run, environments))


def test_twenty_concurrent_requests_make_one_wecom_call_per_credential(environments, fake):
    tickets = all_at_once(environments, WeComApi.agent_jsapi_ticket)
    assert set(tickets) == {"agent-ticket-1"}
    assert fake.count("/cgi-bin/gettoken") == 1
    assert fake.count("/cgi-bin/ticket/get") == 1

    corp = all_at_once(environments, WeComApi.corp_jsapi_ticket)
    assert set(corp) == {"corp-ticket-2"}
    assert fake.count("/cgi-bin/get_jsapi_ticket") == 1
    assert fake.count("/cgi-bin/gettoken") == 1  # the token is shared by both tickets


def test_an_expired_ticket_is_refreshed_once(environments, fake, clock):
    all_at_once(environments, WeComApi.agent_jsapi_ticket)
    clock.now += 7200 - REFRESH_MARGIN_SECONDS - 1  # still fresh: nobody calls WeCom
    assert set(all_at_once(environments, WeComApi.agent_jsapi_ticket)) == {"agent-ticket-1"}
    assert fake.count("/cgi-bin/ticket/get") == 1

    clock.now += 7200  # long expired, token and ticket both
    assert set(all_at_once(environments, WeComApi.agent_jsapi_ticket)) == {"agent-ticket-2"}
    assert fake.count("/cgi-bin/ticket/get") == 2
    assert fake.count("/cgi-bin/gettoken") == 2


def test_inside_the_refresh_margin_the_others_keep_the_old_ticket_while_one_refreshes(
    environments, fake, clock
):
    all_at_once(environments, WeComApi.agent_jsapi_ticket)
    clock.now += 7200 - REFRESH_MARGIN_SECONDS + 1  # due, but with minutes of life left
    tickets = all_at_once(environments, WeComApi.agent_jsapi_ticket)
    assert set(tickets) <= {"agent-ticket-1", "agent-ticket-2"}
    assert "agent-ticket-2" in tickets  # the refresher got the new one
    assert fake.count("/cgi-bin/ticket/get") == 2  # and only one refresher


def test_a_token_wecom_refuses_is_replaced_once_for_everybody(environments, fake):
    all_at_once(environments, WeComApi.agent_jsapi_ticket)
    fake.tokens_issued += 1  # WeCom invalidated token-1 early (the fake now expects token-2)
    clock_free_tickets = all_at_once(environments, WeComApi.corp_jsapi_ticket)
    assert len(set(clock_free_tickets)) == 1
    assert fake.count("/cgi-bin/gettoken") == 2  # one replacement, not one per environment


def test_a_refresher_that_dies_blocks_the_others_only_for_its_lease(app_resources, fake, clock):
    table = app_resources.table("CheckpointsTable")
    dying = DynamoCredentialCache(app_resources.clients("dynamodb"), table, clock=clock, lease_seconds=10)

    def die() -> tuple[str, Any]:
        raise SystemExit("the execution environment was frozen mid-refresh")

    dying._take_lease("probe", None, clock.now)  # what a refresher does first; then it is gone
    waiting = DynamoCredentialCache(
        app_resources.clients("dynamodb"), table, clock=clock, sleep=lambda _: None, max_wait_seconds=5
    )
    with pytest.raises(CredentialUnavailable, match="did not finish"):
        waiting.get("probe", lambda: ("value-1", 7200))
    clock.now += 11  # the lease ran out
    assert waiting.get("probe", lambda: ("value-1", 7200)) == "value-1"

    with pytest.raises(SystemExit):  # a failed fetch releases its lease at once
        dying.get("other", die)
    assert waiting.get("other", lambda: ("value-2", 7200)) == "value-2"


def test_wecom_down_is_transient_and_leaves_no_lease(environments, fake):
    fake.down = True
    with pytest.raises(WeComUnavailable):
        environments[0].agent_jsapi_ticket()
    fake.down = False
    assert environments[1].agent_jsapi_ticket() == "agent-ticket-1"
