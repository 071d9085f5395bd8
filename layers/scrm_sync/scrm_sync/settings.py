"""Environment variables, validated once per cold start into a typed model."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    profiles_table: str = Field(alias="PROFILES_TABLE")
    identity_table: str = Field(alias="IDENTITY_TABLE")
    timeline_table: str = Field(alias="TIMELINE_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    audit_table: str = Field(alias="AUDIT_TABLE")
    landing_bucket: str = Field(alias="LANDING_BUCKET")
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL")
    channels_secret_arn: str = Field(alias="CHANNELS_SECRET_ARN")
    rules_parameter_name: str = Field(alias="RULES_PARAMETER_NAME")
    rules_cache_seconds: int = Field(60, alias="RULES_CACHE_SECONDS", ge=0)
    interaction_retention_days: int = Field(180, alias="INTERACTION_RETENTION_DAYS", ge=1)
    # optional features: empty = off (a function only gets the variables of what it uses)
    schema_table: str = Field("", alias="SCHEMA_TABLE")
    enrichment_queue_url: str = Field("", alias="ENRICHMENT_QUEUE_URL")
    checkpoints_table: str = Field("", alias="CHECKPOINTS_TABLE")
    cdc_stream_name: str = Field("", alias="CDC_STREAM_NAME")
    mysql_source_secret_arn: str = Field("", alias="MYSQL_SOURCE_SECRET_ARN")
    orders_table: str = Field("", alias="ORDERS_TABLE")  # empty: order events update no orders table
    archive_bucket: str = Field("", alias="ARCHIVE_BUCKET")
    archive_after_days: int = Field(90, alias="ARCHIVE_AFTER_DAYS", ge=1)
    archive_batch_orders: int = Field(5000, alias="ARCHIVE_BATCH_ORDERS", ge=1, le=100_000)
    archive_restore_hold_days: int = Field(30, alias="ARCHIVE_RESTORE_HOLD_DAYS", ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.model_validate(dict(os.environ if environ is None else environ))
