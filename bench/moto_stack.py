"""template.yaml's resources on a moto server of the benchmark's own, and a function's environment
pointing at them: how the benchmarks run real handlers in-process."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from scrm_local.moto_server import SerializedMotoServer
from scrm_sync import bootstrap

from tests.integration.conftest import AppResources, build_resources


@contextmanager
def moto_stack(variables: dict[str, str], service: str) -> Iterator[AppResources]:
    """Every resource of the template on a fresh moto server; while the block runs, os.environ
    holds `variables` (name -> logical id, as a function's Environment would), the endpoint,
    dummy credentials and quiet Powertools settings. The composition root is reset on both ends."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = SerializedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    resources = build_resources(endpoint)
    environment = {variable: resources.names[logical_id] for variable, logical_id in variables.items()}
    environment |= {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RULES_CACHE_SECONDS": "300",
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ScrmSync",
    }
    try:
        with mock.patch.dict(os.environ, environment):
            bootstrap.reset()
            yield resources
    finally:
        bootstrap.reset()
        server.stop()
