"""Composition root: builds adapters and use cases once per cold start (the only place that
reads the environment and creates boto3 clients)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from .adapters.config import CredentialsFromSecret, RulesFromParameter
from .adapters.dynamodb import DynamoProfileRepository
from .adapters.dynamodb_audit import DynamoAuditRepository
from .adapters.dynamodb_schemas import DynamoSchemaRegistry
from .adapters.messaging import S3RawLanding, SqsEventQueue
from .channels import ADAPTERS
from .services.audit import AuditTrail
from .services.ingest import EventIngest
from .services.profiles import ProfileQueries
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
    sync = ProfileSync(repository, rules, timedelta(days=settings.interaction_retention_days))
    queue = SqsEventQueue(client("sqs"), settings.ingest_queue_url)
    landing = S3RawLanding(client("s3"), settings.landing_bucket)
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
        queries=ProfileQueries(repository),
        webhooks=WebhookIngest(ADAPTERS, credentials, landing, queue, rules, schema_watch),
        unlink=IdentityUnlink(repository),
        audit=AuditTrail(DynamoAuditRepository(dynamodb, settings.audit_table)),
    )
