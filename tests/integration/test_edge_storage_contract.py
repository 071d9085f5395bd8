"""The ingest contract is the storage contract, through the real handlers: EventsApiFunction and
ProfileApiFunction take API Gateway payload v2 in process, on the application's queue, bucket
and tables in moto (created from template.yaml). What POST /events refuses is answered 422 with
the field named and never queued; an unreadable body is a 400; no body gives a 5xx. What it
accepts, at the very edge of the contract, goes through the real ProfileSyncFunction into
DynamoDB without a failed record and reads back unchanged."""

from __future__ import annotations

import copy
import importlib.util
import json
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrm_sync.adapters.dynamodb import DynamoProfileRepository
from scrm_sync.adapters.dynamodb_orders import DynamoOrderStore
from scrm_sync.adapters.messaging import S3RawLanding, SqsEventQueue
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.orders import order_key
from scrm_sync.domain.rules import load_rules
from scrm_sync.domain.storable import MAX_ATTRIBUTES_PER_EVENT, MAX_JSON_DEPTH
from scrm_sync.services.ingest import EventIngest
from scrm_sync.services.profiles import ProfileQueries
from scrm_sync.services.sync import ProfileSync
from scrm_sync.services.unlink import IdentityUnlink

from tests.integration.conftest import AppResources, build_resources
from tests.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = load_credentials(json.loads((ROOT / "config" / "channels.dev.json").read_text()))
RULES = load_rules({})
POST_EVENTS = json.loads((ROOT / "events/events_api/post_events.json").read_text())
GET_PROFILE = json.loads((ROOT / "events/profile_api/get_profile.json").read_text())
DYNAMODB_EXPRESSION_LIMIT = 4096
PHONE = "13800138000"
OTHER_PHONE = "13900139000"
GOOD: dict[str, Any] = {
    "event_id": "pos-1",
    "source": "pos",
    "type": "profile.updated",
    "occurred_at": "2026-11-01T09:30:00+08:00",
    "identifiers": [{"type": "phone", "value": PHONE}],
    "attributes": {"name": "王小明"},
}
ORDER = {"order_id": "o-1", "status": "paid", "total": "359.00"}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def load_handler(path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"app_under_test_{uuid.uuid4().hex}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Edge:
    """The three handlers wired to one stack's queue, bucket and tables."""

    resources: AppResources
    events_app: types.ModuleType
    profile_app: types.ModuleType
    sync_app: types.ModuleType
    repository: DynamoProfileRepository
    orders: DynamoOrderStore
    known_profile: str = ""  # the fuzzed unlink requests' profile

    @classmethod
    def build(cls, resources: AppResources) -> Edge:
        clients = resources.clients
        repository = DynamoProfileRepository(
            clients("dynamodb"),
            resources.table("ProfilesTable"),
            resources.table("IdentityTable"),
            resources.table("TimelineTable"),
        )
        orders = DynamoOrderStore(clients("dynamodb"), resources.table("OrdersTable"))
        ingest = EventIngest(
            SqsEventQueue(clients("sqs"), resources.names["IngestQueue"]),
            S3RawLanding(clients("s3"), resources.names["LandingBucket"]),
            lambda: RULES,
        )
        queries, unlink = ProfileQueries(repository), IdentityUnlink(repository)
        sync = ProfileSync(repository, lambda: RULES, orders=orders)
        factories: dict[str, Any] = {
            "credentials": lambda: CREDENTIALS,
            "rules": lambda: RULES,
            "ingest": lambda: ingest,
            "queries": lambda: queries,
            "unlink": lambda: unlink,
            "sync": lambda: sync,
        }
        apps = [
            load_handler(f"functions/{name}/app.py") for name in ("events_api", "profile_api", "profile_sync")
        ]
        for app in apps:  # each handler's bootstrap factories, built from the pieces above
            for name, build in factories.items():
                if hasattr(app, name):
                    setattr(app, name, build)
        return cls(resources, *apps, repository, orders)

    def post_events(self, body: str | bytes) -> tuple[int, dict[str, Any]]:
        request = copy.deepcopy(POST_EVENTS)
        request["body"] = body if isinstance(body, str) else body.decode("utf-8", "surrogateescape")
        return answer(self.events_app, request)

    def unlink(self, profile_id: str, body: str) -> tuple[int, dict[str, Any]]:
        request = copy.deepcopy(GET_PROFILE)
        path = f"/profiles/{profile_id}/unlink"
        request["routeKey"] = "POST /profiles/{profile_id}/unlink"
        request["rawPath"] = request["requestContext"]["http"]["path"] = path
        request["requestContext"]["http"]["method"] = "POST"
        request["pathParameters"] = {"profile_id": profile_id}
        request["body"] = body
        return answer(self.profile_app, request)

    def queued(self) -> list[str]:
        """Every message on the ingest queue (received, so each is returned once)."""
        sqs, url, bodies = self.resources.clients("sqs"), self.resources.names["IngestQueue"], []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies.extend(message["Body"] for message in batch)
        return bodies

    def sync(self, bodies: list[str]) -> dict[str, Any]:
        records = [
            {
                "messageId": f"m-{i}",
                "receiptHandle": "r",
                "body": body,
                "attributes": {},
                "eventSource": "aws:sqs",
            }
            for i, body in enumerate(bodies)
        ]
        return dict(self.sync_app.lambda_handler({"Records": records}, LambdaContext()))


def answer(app: types.ModuleType, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(request, LambdaContext())
    status, body = response["statusCode"], response["body"]
    assert status < 500, (status, body[:300])
    body.encode("utf-8")  # the Lambda runtime must be able to send it
    return status, json.loads(body)


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Iterator[Edge]:
    """One stack for the module (building one from the template takes seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScrmSyncTest")
        patch.setenv("POWERTOOLS_SERVICE_NAME", f"scrm-sync-{uuid.uuid4().hex[:8]}")
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        patch.setenv("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        edge = Edge.build(build_resources(moto_endpoint))
        identifiers = [*GOOD["identifiers"], {"type": "email", "value": "a@b.cn"}]
        edge.sync([json.dumps({**GOOD, "event_id": "pos-0", "identifiers": identifiers})])
        profile = ProfileQueries(edge.repository).find(RULES, "phone", PHONE, None)
        assert profile is not None
        edge.known_profile = profile["profile_id"]  # for the unlink requests to find
        yield edge


@pytest.fixture
def edge(stack: Edge) -> Edge:
    stack.queued()  # an empty queue: what a test finds there, it enqueued
    return stack


def event_with(**changes: Any) -> str:
    return json.dumps({**GOOD, **changes}, ensure_ascii=False)


# -- each value class DynamoDB cannot store: 422 naming the field, nothing queued ---------------------
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (event_with(attributes={"points": 10**39}), "attributes.points", "more than 38 significant digits"),
        (event_with(attributes={"points": -1e308}), "attributes.points", "out of range"),
        (event_with().replace('"王小明"', "1e400"), "attributes.name", "out of range"),
        (event_with().replace('"王小明"', "NaN"), "attributes.name", "not finite"),
        (event_with().replace('"王小明"', "-Infinity"), "attributes.name", "not finite"),
        (
            event_with().replace('"王小明"', "3.14159265358979323846"),
            "attributes.name",
            "send it as a string",
        ),
        (event_with(attributes={"points": 1e-200}), "attributes.points", "out of range"),
        (event_with(attributes={f"a{i}": i for i in range(2000)}), "attributes", "at most 64 items"),
        (
            event_with(attributes={f"a{i}": "x" * 400 for i in range(MAX_ATTRIBUTES_PER_EVENT)}),
            "(event)",
            "bytes",
        ),
        (event_with(attributes={"note": "x" * 5000}), "attributes.note", "longer than 4096"),
        (event_with(occurred_at=1700000000), "occurred_at", "RFC 3339"),
        (
            event_with(type="order.created", order={**ORDER, "total": 10**40}),
            "order.total",
            "more than 38 significant digits",
        ),
        (
            event_with(type="order.created", order={**ORDER, "lines": [{"price": "-1E+126"}]}),
            "order.lines.0.price",
            "out of range",
        ),
        (
            event_with(type="interaction", interaction={"kind": "like", "metrics": {"likes": 1e300}}),
            "interaction.metrics.likes",
            "out of range",
        ),
    ],
)
def test_an_unstorable_value_is_refused_with_its_field_and_never_queued(edge, body, field, message):
    status, report = edge.post_events(body)
    assert status == 422
    (errors,) = [result["errors"] for result in report["results"]]
    assert any(error["field"] == field and message in error["message"] for error in errors), errors
    assert edge.queued() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 1000 + "]" * 1000, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (event_with(attributes={"deep": "X"}).replace('"X"', "[" * 1000 + "]" * 1000), "nested deeper"),
    ],
)
def test_an_unreadable_body_is_a_400_not_a_500(edge, body, message):
    status, answer_body = edge.post_events(body)
    assert status == 400 and message in answer_body["message"]
    assert edge.queued() == []


def test_a_refused_event_never_blocks_a_storable_one(edge):
    bad = {**GOOD, "event_id": "pos-2", "attributes": {"points": 10**39}}
    status, report = edge.post_events(json.dumps({"events": [GOOD, bad]}))
    assert status == 207 and report["accepted"] == 1
    assert [json.loads(body)["event_id"] for body in edge.queued()] == ["pos-1"]


def test_deep_nesting_and_nan_in_an_unlink_body_are_a_400(edge):
    for body in ("[" * 1000 + "]" * 1000, '{"identifier": {"type": "phone", "value": NaN}, "reason": "x"}'):
        status, answer_body = edge.unlink("p_0123456789abcdef0123456789abcdef", body)
        assert status == 400, answer_body


# -- what is accepted is stored: the extremes through the real write path -----------------------------
def capture_expressions(edge: Edge) -> list[str]:
    expressions: list[str] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        expressions.extend(params.get(k, "") for k in ("UpdateExpression", "ConditionExpression"))

    edge.resources.clients("dynamodb").meta.events.register("provide-client-params.dynamodb.UpdateItem", keep)
    return expressions


def test_the_accepted_extremes_are_queued_synced_and_read_back_unchanged(edge):
    extremes = {
        "big": int("9" * 38),
        "negative": -int("9" * 38),
        "tiny": 1e-130,
        "negative_tiny": -1e-130,
        "almost_tiny": 1.5e-129,  # a float boto3 could not take with 38 digits
        "tenth": 0.1,
        "small": 1e-5,
        "huge": 9.999999999999998e125,
        "zero": 0,
        "text": "字" * 4096,
    }
    # the longest names, so the conditional update is as long as it can get
    padding = {f"f{i:02d}".ljust(64, "x"): i for i in range(MAX_ATTRIBUTES_PER_EVENT - len(extremes))}
    identifiers = [{"type": "phone", "value": OTHER_PHONE}]
    profile_event = {**GOOD, "identifiers": identifiers, "attributes": {**extremes, **padding}}
    order_event = {
        **GOOD,
        "identifiers": identifiers,
        "event_id": "pos-2",
        "type": "order.created",
        "attributes": {},
        "order": {
            **ORDER,
            "total": "9.9999999999999999999999999999999999999E+125",
            "created_at": "2026-11-01T09:00:00Z",
            "lines": [{"sku": "s", "quantity": "1E-130", "price": "-12345678901234567890123456789012345678"}],
        },
    }
    expressions = capture_expressions(edge)
    status, report = edge.post_events(json.dumps({"events": [profile_event, order_event]}))
    assert status == 202, report

    assert edge.sync(edge.queued()) == {"batchItemFailures": []}  # nothing would reach the DLQ

    profile = ProfileQueries(edge.repository).find(RULES, "phone", OTHER_PHONE, None)
    assert profile is not None
    read = {name: profile["attributes"][name] for name in extremes}
    # a float reads back as the number it was written as (an integral one as an int)
    assert {n: float(v) if isinstance(extremes[n], float) else v for n, v in read.items()} == extremes
    assert max(map(len, expressions)) <= DYNAMODB_EXPRESSION_LIMIT
    stored = edge.orders.load([order_key("pos", "o-1")])[order_key("pos", "o-1")].state
    assert stored is not None and stored.total == Decimal("9.9999999999999999999999999999999999999E+125")
    assert stored.lines[0]["price"] == Decimal("-12345678901234567890123456789012345678")
    timeline = ProfileQueries(edge.repository).timeline(profile["profile_id"], 10)
    assert timeline is not None
    (entry,) = timeline["entries"]
    assert entry["data"]["total"] == "9.9999999999999999999999999999999999999E+125"


# -- fuzz: hostile bodies never give a 5xx ------------------------------------------------------------
hostile_numbers = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60).map(str),
    st.sampled_from(
        ["1e400", "-1e400", "-1e308", "1e-400", "NaN", "Infinity", "-Infinity", "1" * 4400, "0e-999"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
leaf_texts = st.one_of(
    hostile_numbers,
    st.text(max_size=20).map(json.dumps),
    st.sampled_from(
        ['"\\ud800"', "null", "true", '"138 0013 8000"', '"2026-11-01T09:30:00+08:00"', "1700000000"]
    ),
)


@st.composite
def nested_texts(draw: st.DrawFn) -> str:
    leaf = draw(leaf_texts)
    depth = draw(st.one_of(st.integers(0, 40), st.integers(900, 3000)))
    opener = draw(st.sampled_from(["[", '{"a":']))
    closer = "]" if opener == "[" else "}"
    return opener * depth + leaf + closer * depth


@st.composite
def event_bodies(draw: st.DrawFn) -> str:
    value = draw(st.one_of(leaf_texts, nested_texts()))
    slot = draw(st.sampled_from(["attribute", "occurred_at", "total", "metric", "identifier", "event_id"]))
    count = draw(st.one_of(st.integers(0, 3), st.integers(60, 70), st.integers(1000, 3000)))
    attributes = ",".join(f'"a{i}":{i}' for i in range(count))
    placed = {
        "attribute": f'"attributes":{{"x":{value}{"," + attributes if attributes else ""}}}',
        "occurred_at": f'"occurred_at":{value},"attributes":{{{attributes}}}',
        "total": f'"type":"order.created","order":{{"order_id":"o","status":"paid","total":{value}}}',
        "metric": f'"type":"interaction","interaction":{{"kind":"k","metrics":{{"m":{value}}}}}',
        "identifier": f'"identifiers":[{{"type":"phone","value":{value}}}]',
        "event_id": f'"event_id":{value}',
    }[slot]
    base = {k: v for k, v in GOOD.items() if k not in {"attributes"}}
    body = json.dumps(base)[:-1] + "," + placed + "}"
    return draw(st.sampled_from([body, f'{{"events":[{body},{body}]}}', value]))


@FUZZ
@given(body=event_bodies())
def test_post_events_never_answers_5xx(stack, body):
    status, _ = stack.post_events(body)
    assert status in {202, 207, 400, 422}
    stack.queued()  # keep the queue short


@st.composite
def unlink_bodies(draw: st.DrawFn) -> str:
    value = draw(st.one_of(leaf_texts, nested_texts()))
    slot = draw(st.sampled_from(["type", "value", "scope", "reason", "identifier", "body"]))
    fields = {"type": '"phone"', "value": json.dumps(PHONE), "scope": "null"}
    if slot in fields:
        fields[slot] = value
    identifier = (
        value if slot == "identifier" else "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    )
    reason = value if slot == "reason" else '"wrong merge"'
    return value if slot == "body" else f'{{"identifier":{identifier},"reason":{reason}}}'


@FUZZ
@given(body=unlink_bodies(), known_profile=st.booleans())
@example(  # an unpaired surrogate in the reason was a moto 500 (DynamoDB refuses it as invalid UTF-8)
    body='{"identifier":{"type":"phone","value":"13800138000","scope":null},"reason":"\\ud800"}',
    known_profile=True,
)
def test_unlink_never_answers_5xx(stack, body, known_profile):
    profile_id = stack.known_profile if known_profile else "p_0123456789abcdef0123456789abcdef"
    status, _ = stack.unlink(profile_id, body)
    assert status in {200, 400, 404, 409}
