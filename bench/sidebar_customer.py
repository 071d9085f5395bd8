"""GET /sidebar/customer through the real SidebarApiFunction handler against moto (resources from
template.yaml): a customer with 1,000 timeline entries, the first page (profile header and 20
entries) and every following page walked with the cursor. Latency is wall time per request,
in-process, moto answering over loopback (one process: it bounds the figure, AWS would differ);
DynamoDB requests per page are counted by a botocore `before-send` hook on the handler's client.
Goals (issue 13): p95 < 200 ms per page, at most 3 DynamoDB requests per page."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from scrm_sync import bootstrap
from scrm_sync.domain.events import CanonicalEvent
from scrm_sync.domain.followers import follower_field

from tests.fake_wecom import CORP_ID, SECRET, running_fake_wecom
from tests.integration.conftest import ROOT, SIDEBAR_RESOURCES, load_function
from tests.lambda_context import LambdaContext

from .moto_stack import moto_stack

GOAL_P95_MS = 200.0
GOAL_REQUESTS = 3
EXTERNAL = "wmBENCH-360"
AGENT = "zhangsan"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class DynamoRequests:
    """Counts the handler's DynamoDB requests by operation (answers nothing)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        text = target.decode() if isinstance(target, bytes) else str(target)
        self.calls[text.rsplit(".", 1)[-1]] += 1


@contextmanager
def _stack() -> Iterator[tuple[Any, Any]]:
    with moto_stack(SIDEBAR_RESOURCES, "scrm-bench-sidebar") as resources, running_fake_wecom() as wecom:
        entry = {"corp_id": CORP_ID, "agent_id": "1000002", "secret": SECRET, "api_base": wecom.base_url}
        entry["session_key"] = "bench-only-session-key-0123456789abcdef"
        resources.clients("secretsmanager").put_secret_value(
            SecretId=resources.names["ChannelCredentialsSecret"],
            SecretString=json.dumps({"wecom_sidebar": entry}),
        )
        bootstrap.reset()
        yield load_function("sidebar_api"), wecom


def _seed(entries: int) -> None:
    contact = {"type": "wecom_external_userid", "value": EXTERNAL, "scope": CORP_ID}
    first = CanonicalEvent.model_validate(
        {
            "event_id": "bench-contact",
            "source": "wecom",
            "type": "profile.updated",
            "occurred_at": T0.isoformat(),
            "identifiers": [contact],
            "attributes": {"name": "韩梅梅", follower_field(AGENT): AGENT, "member_level": "gold"},
        }
    )
    bootstrap.sync().apply(first)
    orders = [
        CanonicalEvent.model_validate(
            {
                "event_id": f"bench-order-{n}",
                "source": ("tmall", "youzan", "pos")[n % 3],
                "type": "order.created",
                "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
                "identifiers": [contact],
                "order": {"order_id": f"O-{n}", "status": "paid", "total": "99.00", "currency": "CNY"},
            }
        )
        for n in range(1, entries + 1)
    ]
    for start in range(0, len(orders), 100):
        chunk = orders[start : start + 100]
        batch = bootstrap.sync().batch(chunk)
        for event in chunk:
            batch.apply(event)
        batch.finish()


def _event(token: str, cursor: str | None) -> dict[str, Any]:
    event = json.loads((ROOT / "events/sidebar_api/customer.json").read_text())
    query = {"external_userid": EXTERNAL, **({"cursor": cursor} if cursor else {})}
    event["queryStringParameters"], event["rawQueryString"] = query, urlencode(query)
    event["headers"]["authorization"] = f"Bearer {token}"
    return event


def run(entries: int = 1000, rounds: int = 5) -> dict[str, Any]:
    with _stack() as (function, wecom):
        _seed(entries)
        session = json.loads(
            function.lambda_handler(
                {
                    **json.loads((ROOT / "events/sidebar_api/session.json").read_text()),
                    "queryStringParameters": {"code": wecom.oauth_code(uuid.uuid4().hex, AGENT)},
                },
                LambdaContext(),
            )["body"]
        )
        token = session["token"]
        meter = DynamoRequests()
        bootstrap.client("dynamodb").meta.events.register("before-send.dynamodb", meter)
        first_ms: list[float] = []
        next_ms: list[float] = []
        first_requests: list[int] = []
        next_requests: list[int] = []
        pages = seen = 0
        for round_number in range(rounds + 1):  # the first walk warms the caches: not counted
            cursor: str | None = None
            walk: list[tuple[float, int]] = []
            seen = pages = 0
            while True:
                meter.calls.clear()
                started = time.perf_counter()
                response = function.lambda_handler(_event(token, cursor), LambdaContext())
                walk.append(((time.perf_counter() - started) * 1e3, sum(meter.calls.values())))
                body = json.loads(response["body"])
                if response["statusCode"] != 200:
                    raise RuntimeError(f"GET /sidebar/customer answered {response['statusCode']}: {body}")
                seen += len(body["timeline"])
                pages += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            if round_number == 0:
                continue
            first_ms.append(walk[0][0])
            first_requests.append(walk[0][1])
            next_ms += [ms for ms, _ in walk[1:]]
            next_requests += [n for _, n in walk[1:]]
        return {
            "entries": entries,
            "pages": pages,
            "entries_read": seen,
            "rounds": rounds,
            "first_page": _summary(first_ms, first_requests),
            "next_pages": _summary(next_ms, next_requests),
        }


def _summary(ms: list[float], requests: list[int]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "requests": statistics.median(requests),
        "samples": len(ordered),
    }


def render(result: dict[str, Any]) -> list[str]:
    lines = [
        f"GET /sidebar/customer for a customer with {result['entries']:,} timeline entries "
        f"({result['pages']} pages of 20, walked {result['rounds']} times with the cursor; the real "
        "SidebarApiFunction handler in-process, moto over loopback in one process: it bounds these "
        "figures, AWS would differ):",
        "",
        "| page | p50 ms | p95 ms (goal < 200) | DynamoDB requests (goal ≤ 3) |",
        "|---|---|---|---|",
    ]
    for name, key in (("first (profile + 20 entries)", "first_page"), ("next (20 entries)", "next_pages")):
        r = result[key]
        p95 = "✅" if r["p95_ms"] < GOAL_P95_MS else "❌"
        requests = "✅" if r["requests"] <= GOAL_REQUESTS else "❌"
        lines.append(
            f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} {p95} | {r['requests']:g} {requests} |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(render(run())))
