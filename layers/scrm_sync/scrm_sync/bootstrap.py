"""Composition root: builds adapters and use cases once per cold start (the only place that
reads the environment and creates boto3 clients)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, cached_property
from typing import Any

import boto3
from botocore.config import Config

from .adapters.archive_store import S3ArchiveStore
from .adapters.config import CredentialsFromSecret, RulesFromParameter
from .adapters.dynamodb import DynamoProfileRepository
from .adapters.dynamodb_audit import DynamoAuditRepository
from .adapters.dynamodb_ledger import DynamoChangeLedger
from .adapters.dynamodb_orders import DynamoArchiveCheckpoints, DynamoOrderStore
from .adapters.dynamodb_schemas import DynamoSchemaRegistry
from .adapters.messaging import KinesisChangeStream, S3RawLanding, SqsEventQueue
from .adapters.mysql_source import MySqlRowSource, MySqlSourceSecret
from .adapters.send_counts import DynamoSendCounts
from .adapters.watermarks import DynamoWatermarkStore
from .adapters.wecom_api import DEFAULT_API_BASE, WeComApi
from .adapters.wecom_robot import WeComRobot
from .channels import ADAPTERS
from .services.alarms import AlarmForwarder, SendBudget
from .services.archive import ArchivedOrders, ArchiveOrders, RestoreOrders
from .services.audit import AuditTrail
from .services.cdc import CdcSync
from .services.enrichment import ContactEnrichment
from .services.incremental_pull import IncrementalPull
from .services.ingest import EventIngest
from .services.profiles import ProfileQueries
from .services.replay import WebhookReplay
from .services.schema_watch import SchemaWatch
from .services.sync import ProfileSync
from .services.unlink import IdentityUnlink
from .services.webhooks import WebhookIngest
from .settings import Settings

_BOTO_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=32,
    parameter_validation=False,  # the models are validated by pydantic first; saves ~10% CPU per call
)


@dataclass(frozen=True)
class Container:
    settings: Settings
    rules: RulesFromParameter
    credentials: CredentialsFromSecret
    repository: DynamoProfileRepository
    sync: ProfileSync
    ingest: EventIngest
    queries: ProfileQueries
    webhooks: WebhookIngest
    unlink: IdentityUnlink
    audit: AuditTrail
    replay: WebhookReplay
    enrichment: ContactEnrichment
    cdc: CdcSync

    @cached_property
    def incremental_pull(self) -> IncrementalPull:
        """Built on first use: only IncrementalPullFunction has the stream and the source secret."""
        s = self.settings
        if not (s.checkpoints_table and s.cdc_stream_name and s.mysql_source_secret_arn):
            raise RuntimeError(
                "the incremental pull needs CHECKPOINTS_TABLE, CDC_STREAM_NAME and MYSQL_SOURCE_SECRET_ARN"
            )
        return IncrementalPull(
            MySqlRowSource(MySqlSourceSecret(s.mysql_source_secret_arn, s.rules_cache_seconds)),
            KinesisChangeStream(client("kinesis"), s.cdc_stream_name),
            DynamoWatermarkStore(client("dynamodb"), s.checkpoints_table),
        )

    @cached_property
    def archive(self) -> ArchiveOrders:
        """Built on first use: only ArchiveOrdersFunction has the bucket and the checkpoints table."""
        s = self.settings
        if not (s.orders_table and s.archive_bucket and s.checkpoints_table):
            raise RuntimeError("archiving needs ORDERS_TABLE, ARCHIVE_BUCKET and CHECKPOINTS_TABLE")
        dynamodb = client("dynamodb")
        return ArchiveOrders(
            DynamoOrderStore(dynamodb, s.orders_table),
            S3ArchiveStore(client("s3"), s.archive_bucket),
            DynamoArchiveCheckpoints(dynamodb, s.checkpoints_table),
            batch_orders=s.archive_batch_orders,
        )

    @cached_property
    def restore(self) -> RestoreOrders:
        """`scrm archive restore`: the orders table and the archive bucket."""
        s = self.settings
        if not (s.orders_table and s.archive_bucket):
            raise RuntimeError("restoring orders needs ORDERS_TABLE and ARCHIVE_BUCKET")
        return RestoreOrders(
            DynamoOrderStore(client("dynamodb"), s.orders_table),
            S3ArchiveStore(client("s3"), s.archive_bucket),
            timedelta(days=s.archive_restore_hold_days),
        )

    @cached_property
    def alarms(self) -> AlarmForwarder:
        """Built on first use: only AlarmForwarderFunction posts to the WeCom group robot."""
        if not self.settings.checkpoints_table:
            raise RuntimeError("the alarm forwarder needs CHECKPOINTS_TABLE (the robot's send budget)")
        return AlarmForwarder(
            self.credentials,
            WeComRobot,
            SendBudget(DynamoSendCounts(client("dynamodb"), self.settings.checkpoints_table)),
        )


def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_BOTO_CONFIG)  # type: ignore[call-overload]


@cache
def container() -> Container:
    settings = Settings.from_env()
    rules = RulesFromParameter(settings.rules_parameter_name, settings.rules_cache_seconds)
    credentials = CredentialsFromSecret(settings.channels_secret_arn, settings.rules_cache_seconds)
    dynamodb = client("dynamodb")
    repository = DynamoProfileRepository(
        dynamodb, settings.profiles_table, settings.identity_table, settings.timeline_table
    )
    orders = DynamoOrderStore(dynamodb, settings.orders_table) if settings.orders_table else None
    sync = ProfileSync(repository, rules, timedelta(days=settings.interaction_retention_days), orders)
    queue = SqsEventQueue(client("sqs"), settings.ingest_queue_url)
    landing = S3RawLanding(client("s3"), settings.landing_bucket)
    enrichment_queue = (
        SqsEventQueue(client("sqs"), settings.enrichment_queue_url) if settings.enrichment_queue_url else None
    )
    schema_watch = (
        SchemaWatch(DynamoSchemaRegistry(dynamodb, settings.schema_table), rules)
        if settings.schema_table
        else None
    )
    return Container(
        settings=settings,
        rules=rules,
        credentials=credentials,
        repository=repository,
        sync=sync,
        ingest=EventIngest(queue, landing, rules),
        queries=ProfileQueries(repository, ArchivedOrders(orders) if orders else None),
        webhooks=WebhookIngest(ADAPTERS, credentials, landing, queue, rules, schema_watch, enrichment_queue),
        unlink=IdentityUnlink(repository),
        audit=AuditTrail(DynamoAuditRepository(dynamodb, settings.audit_table)),
        replay=WebhookReplay(ADAPTERS, credentials, landing, queue, rules),
        enrichment=ContactEnrichment(credentials, _wecom_directory, queue),
        cdc=CdcSync(sync, rules, DynamoChangeLedger(dynamodb, settings.idempotency_table)),
    )


def _wecom_directory(credentials: Mapping[str, Any]) -> WeComApi:
    return WeComApi(
        str(credentials["corp_id"]),
        str(credentials["secret"]),
        str(credentials.get("api_base") or DEFAULT_API_BASE),
    )
