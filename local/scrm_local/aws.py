"""boto3 clients pointed at the local moto server (the only place the local stack builds them)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from scrm_sync.bootstrap import USER_AGENT

from .settings import REGION

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class Clients:
    """One cached client per service; creation is locked (boto3 sessions are not thread-safe)."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, validate_parameters: bool = True) -> Any:
        """The client of `service`; without `validate_parameters` (a hot path whose requests are
        checked by its own code, such as the binlog bridge's PutRecords) a client of its own."""
        key = service if validate_parameters else f"{service} (unvalidated)"
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        user_agent=USER_AGENT,  # built once, not per request (see bootstrap)
                        retries={"max_attempts": 3, "mode": "standard"},
                        connect_timeout=3,
                        max_pool_connections=64,  # pollers, gateway and config watcher share them
                        parameter_validation=validate_parameters,
                    ),
                )
            return self._clients[key]
