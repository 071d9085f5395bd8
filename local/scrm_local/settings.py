"""Every environment variable the local stack reads, in one place."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
URL_SUFFIX = "amazonaws.com"
PARTITION = "aws"
HOST = "127.0.0.1"

DEFAULT_STACK_NAME = "scrm-local"
DEFAULT_MOTO_PORT = 5000
DEFAULT_HTTP_PORT = 3000
DEFAULT_CDC_CHECKPOINT = Path(".local-state/cdc-checkpoint.json")  # under the project root
DEFAULT_MAX_ENVIRONMENTS = 10
DEFAULT_SIDEBAR_DEV_USERID = "zhangsan"


def parse_overrides(text: str) -> dict[str, str]:
    """`"K=V K2='a b'"` -> {"K": "V", "K2": "a b"} (the `sam deploy --parameter-overrides` form)."""
    overrides: dict[str, str] = {}
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError(f"SCRM_PARAMETER_OVERRIDES: expected KEY=VALUE, got {token!r}")
        overrides[key] = value
    return overrides


def find_template(start: Path) -> Path:
    """template.yaml in `start` or its parents, else next to the package (repo root)."""
    for folder in (start, *start.parents):
        candidate = folder / "template.yaml"
        if candidate.is_file():
            return candidate
    return Path(__file__).resolve().parents[2] / "template.yaml"


@dataclass(frozen=True)
class Settings:
    template_path: Path
    project_root: Path
    stack_name: str = DEFAULT_STACK_NAME
    moto_port: int = DEFAULT_MOTO_PORT
    http_port: int = DEFAULT_HTTP_PORT
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    run_schedules: bool = False
    watch_interval: float = 1.0
    file_env: Mapping[str, str] = field(default_factory=dict)
    """The raw environment, for the config-file bindings (see config_files.BINDINGS)."""
    cdc_mysql_url: str | None = None
    """A MySQL/MariaDB schema whose binlog the stack streams into CdcStream (the binlog package)."""
    cdc_tables: tuple[str, ...] = ()
    cdc_checkpoint: Path = DEFAULT_CDC_CHECKPOINT  # relative: to project_root
    max_environments: int = DEFAULT_MAX_ENVIRONMENTS
    """Execution environments per function when the template reserves no concurrency."""
    sidebar_dev_userid: str = DEFAULT_SIDEBAR_DEV_USERID
    """The WeCom member the fake OAuth page signs in to the sidebar page (sidebar_dev)."""
    sidebar_dev_external_userid: str = ""
    """The stub JS-SDK's current external contact unless the page URL names one."""
    mqtt_url: str | None = None
    """An MQTT broker (mqtt://host:port) whose messages the template's IoT topic rules run on."""

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        """SCRM_TEMPLATE, SCRM_PROJECT_ROOT, SCRM_STACK_NAME, MOTO_PORT, PORT,
        SCRM_PARAMETER_OVERRIDES, SCRM_RUN_SCHEDULES, SCRM_CDC_MYSQL_URL, SCRM_CDC_TABLES,
        SCRM_CDC_CHECKPOINT, SCRM_MAX_ENVIRONMENTS, SCRM_SIDEBAR_DEV_USERID,
        SCRM_SIDEBAR_DEV_EXTERNAL_USERID, SCRM_LOCAL_MQTT_URL (+ the config_files bindings)."""
        env = os.environ if env is None else env
        template = (
            Path(env["SCRM_TEMPLATE"]).resolve()
            if env.get("SCRM_TEMPLATE")
            else find_template((cwd or Path.cwd()).resolve())
        )
        root = Path(env["SCRM_PROJECT_ROOT"]).resolve() if env.get("SCRM_PROJECT_ROOT") else template.parent
        return cls(
            template_path=template,
            project_root=root,
            stack_name=env.get("SCRM_STACK_NAME") or DEFAULT_STACK_NAME,
            moto_port=int(env.get("MOTO_PORT") or DEFAULT_MOTO_PORT),
            http_port=int(env.get("PORT") or DEFAULT_HTTP_PORT),
            parameter_overrides=parse_overrides(env.get("SCRM_PARAMETER_OVERRIDES", "")),
            run_schedules=env.get("SCRM_RUN_SCHEDULES", "") in {"1", "true", "yes"},
            watch_interval=float(env.get("SCRM_WATCH_INTERVAL") or 1.0),
            file_env=dict(env),
            cdc_mysql_url=env.get("SCRM_CDC_MYSQL_URL") or None,
            cdc_tables=tuple(t.strip() for t in env.get("SCRM_CDC_TABLES", "").split(",") if t.strip()),
            cdc_checkpoint=(
                Path(env["SCRM_CDC_CHECKPOINT"]).resolve()
                if env.get("SCRM_CDC_CHECKPOINT")
                else DEFAULT_CDC_CHECKPOINT
            ),
            max_environments=int(env.get("SCRM_MAX_ENVIRONMENTS") or DEFAULT_MAX_ENVIRONMENTS),
            sidebar_dev_userid=env.get("SCRM_SIDEBAR_DEV_USERID") or DEFAULT_SIDEBAR_DEV_USERID,
            sidebar_dev_external_userid=env.get("SCRM_SIDEBAR_DEV_EXTERNAL_USERID", ""),
            mqtt_url=env.get("SCRM_LOCAL_MQTT_URL") or None,
        )
