"""WeCom contact enrichment: the API client (token cache, refresh, outages, rejections) against a
local fake WeCom, the event it produces, and the webhook flow that queues the request."""

import json
from datetime import UTC, datetime

import pytest
from scrm_sync.adapters import wecom_api
from scrm_sync.adapters.credential_cache import ProcessCredentialCache
from scrm_sync.adapters.memory import InMemoryQueue
from scrm_sync.adapters.wecom_api import WeComApi, WeComRejected, WeComUnavailable
from scrm_sync.channels.wecom_contact import ContactEnrichmentRequest, contact_event
from scrm_sync.domain.credentials import load_credentials
from scrm_sync.domain.followers import follower_field
from scrm_sync.services.enrichment import ContactEnrichment, EnrichmentNotConfigured

from tests.fake_wecom import CORP_ID, SECRET, running_fake_wecom

REQUEST = ContactEnrichmentRequest(
    corp_id=CORP_ID,
    external_userid="wmEXT-1",
    follow_user="zhangsan",
    event_id="zhangsan:1764000000:add_external_contact:wmEXT-1:zhangsan",
    occurred_at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
)


@pytest.fixture(autouse=True)
def fresh_token_cache(monkeypatch):
    monkeypatch.setattr(wecom_api, "_process_cache", ProcessCredentialCache())


@pytest.fixture
def fake():
    with running_fake_wecom() as server:
        yield server


def api(fake) -> WeComApi:
    return WeComApi(CORP_ID, SECRET, fake.base_url, timeout=2)


def test_the_token_is_cached_and_refreshed_once_when_wecom_expires_it(fake):
    fake.contact("wmEXT-1", "李雷")
    client = api(fake)
    assert client.external_contact("wmEXT-1")["external_contact"]["name"] == "李雷"
    assert client.external_contact("wmEXT-1")["errcode"] == 0
    assert fake.tokens_issued == 1  # the second call reused the cached token
    fake.expire_next_token = True
    assert client.external_contact("wmEXT-1")["errcode"] == 0
    assert fake.tokens_issued == 2


def test_outages_are_transient_and_unknown_contacts_are_rejections(fake):
    client = api(fake)
    with pytest.raises(WeComRejected) as rejected:
        client.external_contact("wmUNKNOWN")
    assert rejected.value.errcode == 84061
    fake.down = True
    with pytest.raises(WeComUnavailable):
        client.external_contact("wmEXT-1")
    with pytest.raises(WeComUnavailable):  # nothing listens there
        WeComApi(CORP_ID, SECRET, "http://127.0.0.1:9", timeout=0.5).external_contact("wmEXT-1")
    with pytest.raises(WeComUnavailable):  # a wrong secret is an operator's fix away: retried
        WeComApi(CORP_ID, "wrong", fake.base_url).external_contact("wmEXT-1")


def test_the_contact_event_carries_unionid_tags_remark_and_mobiles():
    answer = {
        "errcode": 0,
        "external_contact": {
            "external_userid": "wmEXT-1",
            "name": "韩梅梅",
            "type": 1,
            "gender": 2,
            "unionid": "oU-1",
        },
        "follow_user": [
            {"userid": "lisi", "createtime": 1, "tags": [{"tag_name": "old"}]},
            {
                "userid": "zhangsan",
                "createtime": 2,
                "remark": "VIP",
                "remark_mobiles": ["13800138000", " "],
                "tags": [{"tag_name": "高净值"}, {"tag_name": "母婴"}, {"group_name": "no name"}],
            },
        ],
    }
    event = contact_event(REQUEST, answer)
    assert event.event_id == REQUEST.event_id + ":contact"
    assert event.occurred_at == REQUEST.occurred_at and event.type == "profile.updated"
    assert [(i.type, i.value) for i in event.identifiers] == [
        ("wecom_external_userid", "wmEXT-1"),
        ("wechat_unionid", "oU-1"),
        ("phone", "13800138000"),
    ]
    assert event.attributes == {
        "name": "韩梅梅",
        "gender": "female",
        "wecom_contact_type": "wechat",
        "wecom_follow_user": "zhangsan",
        follower_field("lisi"): "lisi",  # every member who follows the contact now
        follower_field("zhangsan"): "zhangsan",
        "wecom_remark": "VIP",
        "wecom_tags": "母婴,高净值",
    }
    with pytest.raises(ValueError):
        contact_event(REQUEST, {"errcode": 0})


def test_the_service_enqueues_the_enriched_event_and_needs_the_secret(fake):
    fake.contact("wmEXT-1", "李雷", unionid="oU-2")
    queue = InMemoryQueue()
    credentials = load_credentials(
        {"wecom": {"corp_id": CORP_ID, "secret": SECRET, "api_base": fake.base_url}}
    )
    enrichment = ContactEnrichment(
        lambda: credentials, lambda c: WeComApi(c["corp_id"], c["secret"], c["api_base"]), queue
    )
    enrichment.enrich(REQUEST)
    (message,) = [json.loads(m) for m in queue.messages]
    assert message["attributes"]["name"] == "李雷"
    without_secret = load_credentials({"wecom": {"corp_id": CORP_ID}})
    with pytest.raises(EnrichmentNotConfigured):
        ContactEnrichment(lambda: without_secret, lambda c: None, queue).enrich(REQUEST)


def test_the_webhook_sends_enrichment_for_new_and_edited_contacts_only_in_the_push_record():
    from scrm_sync.adapters.memory import InMemoryLanding, InMemoryPushStream
    from scrm_sync.channels.wecom import ADAPTER
    from scrm_sync.services.webhooks import WebhookIngest

    from tests.unit.channels.test_wecom import DEV_WECOM, EXTERNAL, contact_event, signed_push

    class EnrichmentsOf:
        """The enrichment requests the pushes' records carry (the stream's consumer queues them)."""

        def __init__(self, stream: InMemoryPushStream) -> None:
            self.stream = stream

        @property
        def messages(self) -> list[str]:
            return [json.dumps(r) for d in self.stream.documents for r in d["enrichments"]]

    def flow(credentials):
        queue = InMemoryPushStream()
        loaded = load_credentials({"wecom": credentials})
        ingest = WebhookIngest({"wecom": ADAPTER}, lambda: loaded, InMemoryLanding(), queue)
        return ingest, queue, EnrichmentsOf(queue)

    ingest, queue, enrichment_queue = flow({**DEV_WECOM, "secret": SECRET})
    assert ingest.handle(signed_push(contact_event("add_external_contact"))).status == 200
    assert ingest.handle(signed_push(contact_event("del_follow_user"))).status == 200
    (request,) = [ContactEnrichmentRequest.model_validate_json(m) for m in enrichment_queue.messages]
    assert (request.external_userid, request.follow_user) == (EXTERNAL, "zhangsan")
    assert request.event_id == json.loads(queue.messages[0])["event_id"]
    assert "name" not in enrichment_queue.messages[0]  # ids only: no personal data on the queue

    no_secret = {k: v for k, v in DEV_WECOM.items() if k != "secret"}
    ingest, _, enrichment_queue = flow(no_secret)  # no 客户联系 secret: no API access, no request
    assert ingest.handle(signed_push(contact_event("add_external_contact"))).status == 200
    assert enrichment_queue.messages == []
