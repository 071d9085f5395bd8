"""Environment variables, one small typed model per use case, composed from shared mixins.

A function's environment (template.yaml) lists only the variables of the use cases it runs;
the composition root (bootstrap.py) validates each model once, when the first use case that
needs it is built, and a missing or invalid variable fails with MissingSettings naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class MissingSettings(RuntimeError):
    """The environment lacks a variable a use case needs (or holds an invalid value)."""


class EnvSettings(BaseModel):
    """Base of every settings model: read from environment variables by their names (aliases)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        values = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise MissingSettings(cls._explain(exc, values)) from None

    @classmethod
    def required_variables(cls) -> frozenset[str]:
        """The variables this model cannot do without (the others have defaults)."""
        return frozenset(str(f.alias) for f in cls.model_fields.values() if f.is_required())

    @classmethod
    def variables(cls) -> frozenset[str]:
        return frozenset(str(f.alias) for f in cls.model_fields.values())

    @classmethod
    def _explain(cls, exc: ValidationError, values: Mapping[str, str]) -> str:
        missing = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing")
        invalid = [f"{e['loc'][0]}: {e['msg']}" for e in exc.errors() if e["type"] != "missing"]
        where = values.get("AWS_LAMBDA_FUNCTION_NAME") or "this process"
        parts = []
        if missing:
            parts.append(f"missing environment variable(s) {', '.join(missing)}")
        if invalid:
            parts.append(f"invalid environment variable(s) {'; '.join(invalid)}")
        return (
            f"{cls.__name__} of {where}: {' and '.join(parts)} "
            "(add them to the function's Environment in template.yaml)"
        )


# --- mixins: one group of variables each ----------------------------------------------------------
class ConfigCache(EnvSettings):
    """How long the rules parameter and the channels secret are cached."""

    rules_cache_seconds: int = Field(60, alias="RULES_CACHE_SECONDS", ge=0)


class ProfileTables(EnvSettings):
    """The profile, identity and timeline tables (reads, unlinks, sync)."""

    profiles_table: str = Field(alias="PROFILES_TABLE", min_length=1)
    identity_table: str = Field(alias="IDENTITY_TABLE", min_length=1)
    timeline_table: str = Field(alias="TIMELINE_TABLE", min_length=1)


class OptionalOrdersTable(EnvSettings):
    """The hot orders table, when the function has one (order events, archived-order lookups)."""

    orders_table: str = Field("", alias="ORDERS_TABLE")  # empty: order events update no orders table


class OrdersTable(EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=1)


class CheckpointsTable(EnvSettings):
    checkpoints_table: str = Field(alias="CHECKPOINTS_TABLE", min_length=1)


class IngestQueue(EnvSettings):
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)


class InventoryQueueSettings(EnvSettings):
    """The priority lane: inventory events, apart from the profile sync's ingest queue."""

    inventory_queue_url: str = Field(alias="INVENTORY_QUEUE_URL", min_length=1)


class PromotionSettings(EnvSettings):
    """Both lanes' event sources and their normal / promotion settings (the template's)."""

    inventory_function_name: str = Field(alias="INVENTORY_FUNCTION_NAME", min_length=1)
    inventory_queue_arn: str = Field(alias="INVENTORY_QUEUE_ARN", min_length=1)
    inventory_batch_size: int = Field(alias="INVENTORY_BATCH_SIZE", ge=1, le=10000)
    inventory_maximum_concurrency: int = Field(alias="INVENTORY_MAXIMUM_CONCURRENCY", ge=2, le=1000)
    inventory_promotion_batch_size: int = Field(alias="INVENTORY_PROMOTION_BATCH_SIZE", ge=1, le=10000)
    inventory_promotion_concurrency: int = Field(alias="INVENTORY_PROMOTION_CONCURRENCY", ge=2, le=1000)
    sync_function_name: str = Field(alias="SYNC_FUNCTION_NAME", min_length=1)
    ingest_queue_arn: str = Field(alias="INGEST_QUEUE_ARN", min_length=1)
    sync_batching_window_seconds: int = Field(alias="SYNC_BATCHING_WINDOW_SECONDS", ge=0, le=300)


class InventoryTableSettings(EnvSettings):
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=1)


class LandingBucket(EnvSettings):
    landing_bucket: str = Field(alias="LANDING_BUCKET", min_length=1)


class ArchiveBucket(EnvSettings):
    archive_bucket: str = Field(alias="ARCHIVE_BUCKET", min_length=1)


# --- the models the composition root validates ----------------------------------------------------
class ChannelsSettings(ConfigCache):
    """The channels secret (platform credentials, API keys, the alarm robot)."""

    channels_secret_arn: str = Field(alias="CHANNELS_SECRET_ARN", min_length=1)


class RulesSettings(ConfigCache):
    """The sync rules parameter."""

    rules_parameter_name: str = Field(alias="RULES_PARAMETER_NAME", min_length=1)


class PrivacySalt(EnvSettings):
    """The secret holding the suppression list's salt (domain/privacy.py)."""

    privacy_salt_secret_arn: str = Field(alias="PRIVACY_SALT_SECRET_ARN", min_length=1)


class SyncSettings(PrivacySalt):
    """How long interactions stay on the timeline (the sync core's own setting), and the salt of
    the suppression list it checks."""

    interaction_retention_days: int = Field(180, alias="INTERACTION_RETENTION_DAYS", ge=1)


class AccessLogSettings(EnvSettings):
    """Where every profile read is recorded (caller, profile, time, purpose), and for how long."""

    access_log_table: str = Field(alias="ACCESS_LOG_TABLE", min_length=1)
    access_log_retention_days: int = Field(1095, alias="ACCESS_LOG_RETENTION_DAYS", ge=1)


class PrivacyTable(EnvSettings):
    """Erasures, and the days of landed requests holding events of erased people."""

    privacy_table: str = Field(alias="PRIVACY_TABLE", min_length=1)


class PrivacySettings(
    ProfileTables, OrdersTable, LandingBucket, ArchiveBucket, PrivacySalt, PrivacyTable, CheckpointsTable
):
    """Erasure: the privacy table, the suppression salt, and every store a person is in."""


class WebhookExtrasSettings(EnvSettings):
    """Optional webhook features: empty = off."""

    schema_table: str = Field("", alias="SCHEMA_TABLE")


class WebhookStreamSettings(EnvSettings):
    """The webhook ingest stream: one record per push (landed by Firehose, synced by its consumer)."""

    webhook_stream_name: str = Field(alias="WEBHOOK_STREAM_NAME", min_length=1)


class EnrichmentQueueSettings(EnvSettings):
    enrichment_queue_url: str = Field(alias="ENRICHMENT_QUEUE_URL", min_length=1)


class AuditSettings(EnvSettings):
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)


class AuditRetentionSettings(AuditSettings):
    """How long audit entries keep their content (0: for the profile's life)."""

    audit_retention_days: int = Field(0, alias="AUDIT_RETENTION_DAYS", ge=0)


class CdcSettings(EnvSettings):
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)


class IncrementalPullSettings(CheckpointsTable, ConfigCache):
    cdc_stream_name: str = Field(alias="CDC_STREAM_NAME", min_length=1)
    mysql_source_secret_arn: str = Field(alias="MYSQL_SOURCE_SECRET_ARN", min_length=1)


class ArchiveSettings(OrdersTable, ArchiveBucket, CheckpointsTable):
    archive_after_days: int = Field(90, alias="ARCHIVE_AFTER_DAYS", ge=1)
    archive_retention_days: int = Field(1825, alias="ARCHIVE_RETENTION_DAYS", ge=1)
    archive_batch_orders: int = Field(5000, alias="ARCHIVE_BATCH_ORDERS", ge=1, le=100_000)


class RestoreSettings(OrdersTable, ArchiveBucket):
    archive_restore_hold_days: int = Field(30, alias="ARCHIVE_RESTORE_HOLD_DAYS", ge=0)


class AlarmSettings(CheckpointsTable):
    """The alarm robot's send budget lives in the checkpoints table."""


class SidebarSettings(CheckpointsTable):
    """The sidebar's WeCom tokens and JS-SDK tickets are shared in the checkpoints table."""


class StockPushSettings(CheckpointsTable):
    """Youzan's shared token and the claims of pushes it cannot dedupe live in the checkpoints
    table."""


class ChangeFeedSettings(EnvSettings):
    """The destination queues the change feed fans out to (empty: that destination is off)."""

    wecom_tag_queue_url: str = Field("", alias="WECOM_TAG_QUEUE_URL")
    webhook_delivery_queue_url: str = Field("", alias="WEBHOOK_DELIVERY_QUEUE_URL")
    event_bus_queue_url: str = Field("", alias="EVENT_BUS_QUEUE_URL")


class WeComTagSettings(CheckpointsTable):
    """Tag state, tag ids and the corp's send budget live in the checkpoints table."""

    wecom_api_calls_per_minute: int = Field(9000, alias="WECOM_API_CALLS_PER_MINUTE", ge=1, le=10_000)
    wecom_api_calls_per_hour: int = Field(140_000, alias="WECOM_API_CALLS_PER_HOUR", ge=1, le=150_000)


class EventBusSettings(EnvSettings):
    profile_event_bus_name: str = Field(alias="PROFILE_EVENT_BUS_NAME", min_length=1)


class DeviceHealthStreamSettings(EnvSettings):
    """The stream edge gateways' health scores arrive on (IoT Core's rule, POST /devices/health)."""

    device_health_stream_name: str = Field(alias="DEVICE_HEALTH_STREAM_NAME", min_length=1)


class DeviceHealthSettings(IngestQueue):
    """Device histories and states, and how a zone change is believed (domain/device_health.py)."""

    device_health_table: str = Field(alias="DEVICE_HEALTH_TABLE", min_length=1)
    device_health_retention_days: int = Field(395, alias="DEVICE_HEALTH_RETENTION_DAYS", ge=1)
    device_zone_confirm_windows: int = Field(3, alias="DEVICE_ZONE_CONFIRM_WINDOWS", ge=1, le=100)
    device_service_cooldown_hours: int = Field(24, alias="DEVICE_SERVICE_COOLDOWN_HOURS", ge=0)


class RetrySettings(EnvSettings):
    """The first wait of a message whose destination is down; it doubles per attempt (domain/retry.py)."""

    retry_backoff_base_seconds: int = Field(10, alias="RETRY_BACKOFF_BASE_SECONDS", ge=1, le=900)
