"""Composition root: one cached factory per use case (and per shared client or adapter), each
building only what its use case needs, once per cold start. The only place that reads the
environment and creates boto3 clients.

A function calls the factories of the use cases it runs, so it needs only their variables
(settings.py): the API authorizer reads the channels secret and builds no table, queue or
bucket. A variable a use case needs but the function lacks fails that use case's first build
with MissingSettings naming the variable.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
import botocore
from botocore.config import Config

from .adapters.archive_store import S3ArchiveStore
from .adapters.config import (
    CredentialsFromSecret,
    RulesFromParameter,
    SaltFromSecret,
    forget_parameter_clients,
)
from .adapters.credential_cache import DynamoCredentialCache
from .adapters.dynamodb import DynamoProfileRepository
from .adapters.dynamodb_access_log import DynamoAccessLog
from .adapters.dynamodb_audit import DynamoAuditRepository
from .adapters.dynamodb_inventory import DynamoInventoryStore, DynamoTransferStore
from .adapters.dynamodb_ledger import DynamoChangeLedger
from .adapters.dynamodb_orders import DynamoArchiveCheckpoints, DynamoOrderStore
from .adapters.dynamodb_privacy import DynamoErasureStore, DynamoLateArrivals, DynamoPersonalData
from .adapters.dynamodb_push_attempts import DynamoPushAttempts
from .adapters.dynamodb_schemas import DynamoSchemaRegistry
from .adapters.dynamodb_tag_state import DynamoTagStateStore
from .adapters.event_sources import LambdaEventSources
from .adapters.marketplace_stock import DoudianStockApi, TmallStockApi, YouzanStockApi
from .adapters.messaging import KinesisChangeStream, KinesisPushStream, S3RawLanding, SqsEventQueue
from .adapters.mysql_source import MySqlRowSource, MySqlSourceSecret
from .adapters.outbound_queues import TRANSFER_DETAIL_TYPE, EventBusPublisher, SqsDeadLetters, SqsOutbox
from .adapters.send_counts import DynamoSendCounts
from .adapters.watermarks import DynamoWatermarkStore
from .adapters.webhook_sender import HttpWebhookSender
from .adapters.wecom_api import DEFAULT_API_BASE, WeComApi
from .adapters.wecom_robot import WeComRobot
from .channels import ADAPTERS
from .domain.credentials import ChannelCredentials
from .domain.identifiers import identifier_key_of
from .domain.privacy import consents
from .domain.promotion import LaneSettings, PromotionPlan
from .domain.retry import Backoff
from .domain.rules import Rules
from .domain.send_window import SendWindow
from .services.alarms import AlarmForwarder
from .services.archive import ArchivedOrders, ArchiveObjects, ArchiveOrders, RestoreOrders
from .services.audit import AuditTrail
from .services.cdc import CdcSync
from .services.change_feed import EVENT_BUS, WEBHOOKS, WECOM_TAGS, ChangeFeed
from .services.enrichment import ContactEnrichment
from .services.erasure import ErasureRequests, ErasureRun, LandingScrub
from .services.fulfilment import Fulfilment
from .services.incremental_pull import IncrementalPull
from .services.ingest import EventIngest
from .services.inventory import Inventory
from .services.outbound_replay import OutboundReplay
from .services.outbound_webhooks import WebhookDelivery
from .services.ports import MarketplaceStock
from .services.profiles import ProfileQueries
from .services.promotion import PromotionMode
from .services.reconciliation import StockReconciliation
from .services.replay import WebhookReplay
from .services.schema_watch import SchemaWatch
from .services.send_budget import BlockAllowance, SendBudget
from .services.sidebar import Sidebar, SidebarCustomers
from .services.stock_push import StockPush
from .services.sync import ProfileSync
from .services.unlink import IdentityUnlink
from .services.webhooks import WebhookIngest
from .services.wecom_tags import WeComTagSync
from .settings import (
    AccessLogSettings,
    AlarmSettings,
    ArchiveSettings,
    AuditSettings,
    CdcSettings,
    ChangeFeedSettings,
    ChannelsSettings,
    DeviceHealthSettings,
    DeviceHealthStreamSettings,
    EnrichmentQueueSettings,
    EnvSettings,
    EventBusSettings,
    IncrementalPullSettings,
    IngestQueue,
    InventoryQueueSettings,
    InventoryTableSettings,
    LandingBucket,
    OptionalOrdersTable,
    PrivacySalt,
    PrivacySettings,
    PrivacyTable,
    ProfileTables,
    PromotionSettings,
    RestoreSettings,
    RetrySettings,
    RulesSettings,
    SidebarSettings,
    StockPushSettings,
    SyncSettings,
    WebhookExtrasSettings,
    WebhookStreamSettings,
    WeComTagSettings,
)

if TYPE_CHECKING:  # imported where built: only the device health functions have the scrm_edge layer
    from scrm_edge.zones import ZoneTable

    from .services.device_health import DeviceHealthIntake, DeviceHealthSync

# botocore otherwise rebuilds its User-Agent for every request, twice (SDK, OS, feature and
# config metadata, each part sanitized): about a fifth of a signed call's CPU. A fixed one is
# botocore's own `user_agent` setting; AWS reads the header only for its SDK statistics.
USER_AGENT = f"scrm-sync botocore/{botocore.__version__} Python/{platform.python_version()}"

_BOTO_CONFIG = Config(
    user_agent=USER_AGENT,
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,
    parameter_validation=False,  # the models are validated by pydantic first; saves ~10% CPU per call
)

# The webhook's one AWS call is on the platform's ack deadline (WeCom: 5 s): a few quick attempts,
# then a 503 and the platform's own retry, rather than botocore's long adaptive backoff.
_ACK_PATH_CONFIG = _BOTO_CONFIG.merge(
    Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=1, read_timeout=2)
)

T = TypeVar("T")
S = TypeVar("S", bound=EnvSettings)
FACTORIES: dict[str, Callable[[], Any]] = {}  # name -> cached factory (for reset() and the tests)


def factory(build: Callable[[], T]) -> Callable[[], T]:
    """Build once per cold start (per process), on first use."""
    cached = cache(build)
    FACTORIES[build.__name__] = cached
    return cached


def reset() -> None:
    """Forget every client, settings model, adapter and use case built so far (tests, tools)."""
    for cached in FACTORIES.values():
        cached.cache_clear()  # type: ignore[attr-defined]
    _settings.cache_clear()
    client.cache_clear()
    ack_path_client.cache_clear()
    forget_parameter_clients()


# --- environment and clients ----------------------------------------------------------------------
def settings(model: type[S]) -> S:
    """`model` validated from the environment, once per process."""
    return cast(S, _settings(model))


@cache
def _settings(model: type[EnvSettings]) -> EnvSettings:
    return model.from_env()


@cache
def client(service: str) -> Any:
    """One boto3 client per service (boto3 clients are thread-safe; sessions are not)."""
    return boto3.session.Session().client(service, config=_BOTO_CONFIG)  # type: ignore[call-overload]


@cache
def ack_path_client(service: str) -> Any:
    """A client for a call the platform's ack waits on: short timeouts and few retries."""
    return boto3.session.Session().client(service, config=_ACK_PATH_CONFIG)  # type: ignore[call-overload]


# --- configuration documents ----------------------------------------------------------------------
@factory
def rules_document() -> RulesFromParameter:
    s = settings(RulesSettings)
    return RulesFromParameter(s.rules_parameter_name, s.rules_cache_seconds)


def rules() -> Rules:
    """The sync rules now (the last valid document, re-read after RULES_CACHE_SECONDS)."""
    return rules_document()()


@factory
def credentials_document() -> CredentialsFromSecret:
    s = settings(ChannelsSettings)
    return CredentialsFromSecret(s.channels_secret_arn, s.rules_cache_seconds)


def credentials() -> ChannelCredentials:
    """The channel credentials now (the last valid channels secret)."""
    return credentials_document()()


# --- shared adapters ------------------------------------------------------------------------------
@factory
def profile_repository() -> DynamoProfileRepository:
    s = settings(ProfileTables)
    return DynamoProfileRepository(client("dynamodb"), s.profiles_table, s.identity_table, s.timeline_table)


@factory
def order_store() -> DynamoOrderStore | None:
    """The hot orders table, or None when the function has no ORDERS_TABLE."""
    table = settings(OptionalOrdersTable).orders_table
    return DynamoOrderStore(client("dynamodb"), table) if table else None


@factory
def ingest_queue() -> SqsEventQueue:
    return SqsEventQueue(client("sqs"), settings(IngestQueue).ingest_queue_url)


@factory
def enrichment_queue() -> SqsEventQueue:
    return SqsEventQueue(client("sqs"), settings(EnrichmentQueueSettings).enrichment_queue_url)


@factory
def landing() -> S3RawLanding:
    return S3RawLanding(client("s3"), settings(LandingBucket).landing_bucket)


@factory
def push_stream() -> KinesisPushStream:
    return KinesisPushStream(ack_path_client("kinesis"), settings(WebhookStreamSettings).webhook_stream_name)


@factory
def schema_registry() -> DynamoSchemaRegistry | None:
    """Where webhooks record the source schemas they saw, or None (SCHEMA_TABLE unset)."""
    table = settings(WebhookExtrasSettings).schema_table
    return DynamoSchemaRegistry(client("dynamodb"), table) if table else None


# --- use cases ------------------------------------------------------------------------------------
@factory
def privacy_salt() -> SaltFromSecret:
    return SaltFromSecret(settings(PrivacySalt).privacy_salt_secret_arn)


@factory
def sync() -> ProfileSync:
    retention = timedelta(days=settings(SyncSettings).interaction_retention_days)
    return ProfileSync(profile_repository(), rules_document(), retention, order_store(), privacy_salt())


@factory
def personal_data() -> DynamoPersonalData:
    orders_table = settings(PrivacySettings).orders_table
    return DynamoPersonalData(client("dynamodb"), profile_repository(), orders_table)


@factory
def erasure_store() -> DynamoErasureStore:
    s = settings(PrivacySettings)
    return DynamoErasureStore(client("dynamodb"), s.privacy_table, s.identity_table)


@factory
def erasure_requests() -> ErasureRequests:
    return ErasureRequests(personal_data(), erasure_store(), privacy_salt())


@factory
def erasure_run() -> ErasureRun:
    s = settings(PrivacySettings)
    rules = rules_document()
    landing = LandingScrub(
        S3RawLanding(client("s3"), s.landing_bucket),
        lambda raw: identifier_key_of(raw, rules().default_phone_region),
    )
    archived = ArchiveObjects(S3ArchiveStore(client("s3"), s.archive_bucket))
    return ErasureRun(
        personal_data(),
        erasure_store(),
        archived,
        landing,
        audit(),
        late_arrivals(),
        profile_repository(),
        privacy_salt(),
        DynamoWatermarkStore(client("dynamodb"), s.checkpoints_table),
    )


@factory
def access_log() -> DynamoAccessLog:
    s = settings(AccessLogSettings)
    return DynamoAccessLog(client("dynamodb"), s.access_log_table, s.access_log_retention_days)


@factory
def late_arrivals() -> DynamoLateArrivals:
    return DynamoLateArrivals(client("dynamodb"), settings(PrivacyTable).privacy_table)


@factory
def inventory_queue() -> SqsEventQueue:
    return SqsEventQueue(client("sqs"), settings(InventoryQueueSettings).inventory_queue_url)


@factory
def ingest() -> EventIngest:
    return EventIngest(ingest_queue(), landing(), rules_document(), inventory_queue())


@factory
def inventory() -> Inventory:
    rules = rules_document()
    store = DynamoInventoryStore(client("dynamodb"), settings(InventoryTableSettings).inventory_table)
    return Inventory(store, lambda: rules().inventory)


@factory
def promotion_mode() -> PromotionMode:
    s = settings(PromotionSettings)
    plan = PromotionPlan(
        inventory={
            "normal": LaneSettings(
                batch_size=s.inventory_batch_size, maximum_concurrency=s.inventory_maximum_concurrency
            ),
            "promotion": LaneSettings(
                batch_size=s.inventory_promotion_batch_size,
                maximum_concurrency=s.inventory_promotion_concurrency,
            ),
        },
        profiles={
            "normal": LaneSettings(batching_window_seconds=s.sync_batching_window_seconds),
            "promotion": LaneSettings(batching_window_seconds=0),
        },
    )
    lanes = {
        "inventory": (s.inventory_function_name, s.inventory_queue_arn),
        "profiles": (s.sync_function_name, s.ingest_queue_arn),
    }
    return PromotionMode(LambdaEventSources(client("lambda")), plan, lanes)


@factory
def stock_push() -> StockPush:
    rules, channels = rules_document(), credentials_document()
    dynamodb, table = client("dynamodb"), settings(StockPushSettings).checkpoints_table
    tokens = DynamoCredentialCache(dynamodb, table)

    def marketplace(channel: str) -> MarketplaceStock | None:
        account = channels().marketplace_stock.account(channel)
        if account is None:
            return None
        if channel == "youzan":
            return YouzanStockApi(account, tokens)
        return TmallStockApi(account) if channel == "tmall" else DoudianStockApi(account, tokens)

    return StockPush(lambda: rules().inventory, marketplace, DynamoPushAttempts(dynamodb, table))


@factory
def reconciliation() -> StockReconciliation:
    rules = rules_document()
    store = DynamoInventoryStore(client("dynamodb"), settings(InventoryTableSettings).inventory_table)
    return StockReconciliation(inventory(), store, lambda: rules().inventory)


@factory
def fulfilment() -> Fulfilment:
    rules = rules_document()
    transfers = DynamoTransferStore(client("dynamodb"), settings(InventoryTableSettings).inventory_table)
    bus = settings(EventBusSettings).profile_event_bus_name
    events = EventBusPublisher(client("events"), bus, TRANSFER_DETAIL_TYPE)
    return Fulfilment(inventory(), transfers, events, lambda: rules().inventory)


@factory
def queries() -> ProfileQueries:
    orders = order_store()
    return ProfileQueries(profile_repository(), ArchivedOrders(orders) if orders else None)


@factory
def unlink() -> IdentityUnlink:
    return IdentityUnlink(profile_repository())


@factory
def webhooks() -> WebhookIngest:
    registry = schema_registry()
    return WebhookIngest(
        ADAPTERS,
        credentials_document(),
        landing(),
        push_stream(),
        rules_document(),
        SchemaWatch(registry, rules_document()) if registry else None,
    )


@factory
def replay() -> WebhookReplay:
    return WebhookReplay(ADAPTERS, credentials_document(), landing(), ingest_queue(), rules_document())


@factory
def enrichment() -> ContactEnrichment:
    return ContactEnrichment(credentials_document(), _wecom_directory, ingest_queue())


@factory
def sidebar() -> Sidebar:
    cache = DynamoCredentialCache(client("dynamodb"), settings(SidebarSettings).checkpoints_table)
    return Sidebar(
        credentials_document(), lambda app: _wecom_api(app.corp_id, app.secret, app.api_base, cache)
    )


@factory
def sidebar_customers() -> SidebarCustomers:
    orders = order_store()
    return SidebarCustomers(sidebar(), profile_repository(), ArchivedOrders(orders) if orders else None)


@cache
def _wecom_api(corp_id: str, secret: str, api_base: str, cache: DynamoCredentialCache) -> WeComApi:
    """One client per WeCom app, its tokens shared by every Lambda through the checkpoints table."""
    return WeComApi(corp_id, secret, api_base, credentials=cache)


@factory
def audit() -> AuditTrail:
    return AuditTrail(DynamoAuditRepository(client("dynamodb"), settings(AuditSettings).audit_table))


@factory
def cdc() -> CdcSync:
    ledger = DynamoChangeLedger(client("dynamodb"), settings(CdcSettings).idempotency_table)
    return CdcSync(sync(), rules_document(), ledger, inventory_queue(), reconciliation())


@factory
def incremental_pull() -> IncrementalPull:
    s = settings(IncrementalPullSettings)
    return IncrementalPull(
        MySqlRowSource(MySqlSourceSecret(s.mysql_source_secret_arn, s.rules_cache_seconds)),
        KinesisChangeStream(client("kinesis"), s.cdc_stream_name),
        DynamoWatermarkStore(client("dynamodb"), s.checkpoints_table),
    )


@factory
def archive() -> ArchiveOrders:
    s = settings(ArchiveSettings)
    dynamodb = client("dynamodb")
    return ArchiveOrders(
        DynamoOrderStore(dynamodb, s.orders_table, archive_retention_days=s.archive_retention_days),
        S3ArchiveStore(client("s3"), s.archive_bucket),
        DynamoArchiveCheckpoints(dynamodb, s.checkpoints_table),
        batch_orders=s.archive_batch_orders,
    )


@factory
def restore() -> RestoreOrders:
    """`scrm archive restore`: the orders table and the archive bucket."""
    s = settings(RestoreSettings)
    return RestoreOrders(
        DynamoOrderStore(client("dynamodb"), s.orders_table),
        S3ArchiveStore(client("s3"), s.archive_bucket),
        timedelta(days=s.archive_restore_hold_days),
    )


@factory
def alarms() -> AlarmForwarder:
    budget = SendBudget(DynamoSendCounts(client("dynamodb"), settings(AlarmSettings).checkpoints_table))
    return AlarmForwarder(credentials_document(), WeComRobot, budget)


# --- the change feed and its destinations ------------------------------------------------------------
def _destination_queues() -> dict[str, str]:
    """The destination queues this function knows (the feed: all of them; a destination: its own)."""
    s = settings(ChangeFeedSettings)
    urls = {
        WECOM_TAGS: s.wecom_tag_queue_url,
        WEBHOOKS: s.webhook_delivery_queue_url,
        EVENT_BUS: s.event_bus_queue_url,
    }
    return {name: url for name, url in urls.items() if url}


@factory
def outbox() -> SqsOutbox:
    return SqsOutbox(client("sqs"), _destination_queues())


@factory
def change_feed() -> ChangeFeed:
    """Fans out to the destinations whose queue the function has (no queue: that destination is off)."""
    repository = profile_repository()

    def consent_of(profile_id: str) -> dict[str, bool]:
        item = repository.profile_item(profile_id) or {}
        return consents({name[2:]: value for name, value in item.items() if name.startswith("v:")})

    destinations = frozenset(_destination_queues())
    return ChangeFeed(rules_document(), credentials_document(), outbox(), destinations, consent_of)


@factory
def outbound_replay() -> OutboundReplay:
    return OutboundReplay(SqsDeadLetters(client("sqs"), _destination_queues()))


@factory
def wecom_tag_sync() -> WeComTagSync:
    s = settings(WeComTagSettings)
    dynamodb = client("dynamodb")
    counts = DynamoSendCounts(dynamodb, s.checkpoints_table)
    per_minute = SendWindow(limit=s.wecom_api_calls_per_minute, seconds=60, bucket_seconds=10)
    per_hour = SendWindow(limit=s.wecom_api_calls_per_hour, seconds=3600, bucket_seconds=300)
    cache = DynamoCredentialCache(dynamodb, s.checkpoints_table)
    repository = profile_repository()
    return WeComTagSync(
        repository.load,
        rules_document(),
        credentials_document(),
        lambda entry: _wecom_api(
            str(entry["corp_id"]), str(entry["secret"]), str(entry.get("api_base") or DEFAULT_API_BASE), cache
        ),
        DynamoTagStateStore(dynamodb, s.checkpoints_table),
        [
            BlockAllowance(SendBudget(counts, per_minute)),
            BlockAllowance(SendBudget(counts, per_hour), block=50),
        ],
        lambda: datetime.now(UTC),
    )


@factory
def webhook_delivery() -> WebhookDelivery:
    channels = credentials_document()
    return WebhookDelivery(
        lambda: channels().outbound_webhooks, HttpWebhookSender(), lambda: datetime.now(UTC)
    )


@factory
def event_bus() -> EventBusPublisher:
    return EventBusPublisher(client("events"), settings(EventBusSettings).profile_event_bus_name)


def _wecom_directory(credentials: Mapping[str, Any]) -> WeComApi:
    return WeComApi(
        str(credentials["corp_id"]),
        str(credentials["secret"]),
        str(credentials.get("api_base") or DEFAULT_API_BASE),
    )


@factory
def retry_backoff() -> Backoff:
    """How long a message waits after its destination failed (RETRY_BACKOFF_BASE_SECONDS, doubling)."""
    return Backoff(settings(RetrySettings).retry_backoff_base_seconds)


# --- device health: these need the scrm_edge layer, which only the device health functions have ----
@factory
def zone_table() -> ZoneTable:
    """The ISO zone table the cloud judges scores by (scrm_edge's packaged configuration)."""
    from scrm_edge.zones import ZoneTable

    return ZoneTable.load()


@factory
def device_health_intake() -> DeviceHealthIntake:
    from .services.device_health import DeviceHealthIntake

    stream = KinesisChangeStream(
        client("kinesis"), settings(DeviceHealthStreamSettings).device_health_stream_name
    )
    return DeviceHealthIntake(stream, landing(), zone_table)


@factory
def device_health() -> DeviceHealthSync:
    from .adapters.dynamodb_device_health import DynamoDeviceHealthStore
    from .domain.device_health import ZonePolicy
    from .services.device_health import DeviceHealthSync

    s = settings(DeviceHealthSettings)
    return DeviceHealthSync(
        DynamoDeviceHealthStore(client("dynamodb"), s.device_health_table),
        ingest_queue(),
        zone_table,
        timedelta(days=s.device_health_retention_days),
        ZonePolicy(s.device_zone_confirm_windows, timedelta(hours=s.device_service_cooldown_hours)),
    )
