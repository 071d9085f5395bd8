"""Wire the local stack together: moto, resources, config files, handlers, HTTP gateway,
pollers and schedules; /healthz; a clean stop."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
import uuid
from dataclasses import replace
from types import FrameType
from typing import Any, TextIO

from botocore.exceptions import ClientError

from .aws import Clients
from .binlog import BinlogBridge, bridge_for_stack
from .config_files import BINDINGS, LOCAL_API_PLACEHOLDER, ConfigFiles, InvalidConfigFile, with_local_cache
from .firehose_poller import FirehosePoller
from .gateway import GatewayServer, RouteTable
from .intrinsics import LiveLookup
from .iot_rules import IotRuleBridge, rules_of
from .lambda_runtime import LambdaRuntime
from .moto_server import MotoProcess
from .naming import ResourceName
from .pollers import Poller
from .resources import create_resources
from .schedules import ScheduleRunner
from .settings import HOST, Settings
from .sidebar_dev import SidebarDev
from .sqs_poller import SqsPoller
from .stack_state import remove_state, write_state
from .stream_poller import StreamPoller
from .template import Template

log = logging.getLogger(__name__)

POLLER_START_TIMEOUT = 15.0


class StackError(RuntimeError):
    pass


def live_lookup(clients: Clients) -> LiveLookup:
    """Attributes only the running stack knows (a table's StreamArn has a creation timestamp)."""

    def lookup(res: ResourceName, attr: str) -> Any:
        if attr == "StreamArn" and res.type in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            try:
                return clients("dynamodb").describe_table(TableName=res.name)["Table"].get("LatestStreamArn")
            except ClientError:
                return None
        return None

    return lookup


def check_port_free(port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise StackError(
                f"{what} port {port} on {HOST} is in use ({exc.strerror}); is a stack already running?"
            ) from exc


MYSQL_SOURCE_SECRET = "MysqlSourceSecret"  # noqa: S105 - a logical id, not a password


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.moto: MotoProcess | None = None
        self.gateway: GatewayServer | None = None
        self.clients: Clients | None = None
        self.template: Template | None = None
        self.runtime: LambdaRuntime | None = None
        self.config: ConfigFiles | None = None
        self.pollers: list[Poller] = []
        self.schedules: ScheduleRunner | None = None
        self.binlog_bridge: BinlogBridge | None = None
        self.iot_rules: IotRuleBridge | None = None
        self.sidebar_dev: SidebarDev | None = None
        self._stopped = threading.Event()

    def _share_cdc_source(self, template: Template, clients: Clients) -> None:
        """The MySQL server the binlog bridge reads is also the incremental pull's source: put its
        URL into the template's MysqlSourceSecret (a mysql:// URL is a valid secret value)."""
        url = self.settings.cdc_mysql_url
        if not url or template.resource_type(MYSQL_SOURCE_SECRET) != "AWS::SecretsManager::Secret":
            return
        name = template.resolver.resource(MYSQL_SOURCE_SECRET).name
        clients("secretsmanager").put_secret_value(SecretId=name, SecretString=url)

    # --- start ------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.start_servers()
        self.provision()
        return self

    def start_servers(self) -> None:
        """moto and the HTTP gateway (which answers 503 until provision() is done)."""
        check_port_free(self.settings.moto_port, "MOTO_PORT")
        check_port_free(self.settings.http_port, "PORT")
        self.moto = MotoProcess(HOST, self.settings.moto_port)
        self.moto.start()
        moto_port = self.moto.get_host_and_port()[1]
        self.gateway = GatewayServer((HOST, self.settings.http_port), None, self.invoke, self.health)
        self.settings = replace(self.settings, moto_port=moto_port, http_port=self.gateway.port)
        channels = next(b for b in BINDINGS if b.logical_id == "ChannelCredentialsSecret")
        self.sidebar_dev = SidebarDev(
            page_root=self.settings.project_root / "sidebar",
            channels_file=channels.path(self.settings.file_env, self.settings.project_root),
            dev_userid=self.settings.sidebar_dev_userid,
            dev_external_userid=self.settings.sidebar_dev_external_userid,
        )
        self.gateway.dev_pages = self.sidebar_dev.respond
        self.gateway.start()
        self.clients = Clients(self.settings.endpoint_url)
        template = Template.load(self.settings, live=live_lookup(self.clients))
        self.settings = with_local_cache(self.settings, template.document)  # config edits apply in seconds
        self.template = Template(template.document, self.settings, live=live_lookup(self.clients))

    def provision(self) -> None:
        """Resources, config files, handler environment, routes, pollers, schedules; then ready."""
        assert self.template is not None and self.clients is not None and self.gateway is not None
        template, clients = self.template, self.clients
        create_resources(template, clients)
        self.config = ConfigFiles(
            template,
            clients,
            self.settings.file_env,
            self.settings.project_root,
            self.settings.watch_interval,
            substitutions={LOCAL_API_PLACEHOLDER: self.api_url},
        )
        try:
            self.config.load_all()
        except InvalidConfigFile as exc:
            raise StackError(str(exc)) from None
        self.config.start()
        self._share_cdc_source(template, clients)
        self.runtime = LambdaRuntime(
            template, self.settings.endpoint_url, max_environments=self.settings.max_environments
        )
        self.gateway.table = RouteTable(template.routes)
        for fn in template.functions.values():
            for sqs in fn.sqs_sources:
                if sqs.enabled:
                    # never more batches in flight than the function may have environments
                    limit = fn.reserved_concurrency or self.settings.max_environments
                    self.pollers.append(SqsPoller(sqs, self.invoke, clients, limit))
            for stream in fn.stream_sources:
                if stream.enabled:
                    self.pollers.append(StreamPoller(stream, self.invoke, clients, fn.arn))
        for delivery in template.delivery_streams:  # a second consumer of its source stream
            self.pollers.append(FirehosePoller(delivery, clients))
        for poller in self.pollers:
            poller.start()
        for poller in self.pollers:
            if not poller.ready.wait(POLLER_START_TIMEOUT):
                raise StackError(f"poller {poller.name} did not start (see the log above)")
        # After the pollers: a LATEST iterator would miss records written before it exists.
        try:
            self.binlog_bridge = bridge_for_stack(self.settings, template, clients)
        except ValueError as exc:
            raise StackError(f"SCRM_CDC_MYSQL_URL: {exc}") from exc
        if self.binlog_bridge is not None:
            self.binlog_bridge.start()
        if self.settings.mqtt_url:
            client_id = f"scrm-local-{self.settings.stack_name}-{uuid.uuid4().hex[:6]}"
            try:
                self.iot_rules = IotRuleBridge(self.settings.mqtt_url, rules_of(template), clients, client_id)
                self.iot_rules.start()
            except (ValueError, OSError) as exc:
                raise StackError(f"SCRM_LOCAL_MQTT_URL: {exc}") from exc
        self.schedules = ScheduleRunner(
            template.schedules if self.settings.run_schedules else [], self.invoke
        )
        self.schedules.start()
        self.ready = True

    # --- running ----------------------------------------------------------------------------------
    def invoke(self, function_id: str, event: Any) -> Any:
        if self.runtime is None:
            raise StackError("the stack is not provisioned yet")
        return self.runtime.invoke(function_id, event)

    def backlog(self) -> int:
        return sum(p.backlog() for p in self.pollers)

    def health(self) -> tuple[int, dict[str, Any]]:
        if not self.ready:
            return 503, {"status": "starting"}
        try:
            return 200, {"status": "ok", "backlog": self.backlog()}
        except Exception as exc:
            log.exception("healthz: could not compute the backlog")
            return 503, {"status": "error", "error": str(exc)}

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.settings.http_port}"

    def describe(self) -> str:
        """The ready message: URLs of the API, each route, healthz and moto."""
        assert self.template is not None
        lines = [f'scrm local stack "{self.settings.stack_name}" is ready ({self.settings.template_path})']
        lines.append(f"  API     {self.api_url}")
        for route in self.template.routes:
            guard = f"  (authorizer {route.authorizer.name})" if route.authorizer else ""
            target = f"{self.api_url}{route.path}  -> {route.function_id}{guard}"
            lines.append(f"          {route.method:<6} {target}")
        lines.append(f"  health  {self.api_url}/healthz")
        if self.sidebar_dev is not None:
            lines.append(
                f"  sidebar {self.api_url}/sidebar/  (stub WeCom JS-SDK; fake WeCom API and OAuth at "
                f"{self.api_url}/__local/wecom, member {self.sidebar_dev.dev_userid})"
            )
        lines.append(
            f"  moto    {self.settings.endpoint_url}  (AWS_ENDPOINT_URL for boto3 / aws --endpoint-url)"
        )
        for poller in self.pollers:
            lines.append(f"  poller  {poller.name}")
        if self.binlog_bridge is not None:
            bridge = self.binlog_bridge
            lines.append(f"  binlog  {bridge.source.label} -> Kinesis {bridge.stream_name}")
        if self.iot_rules is not None:
            for rule in self.iot_rules.rules:
                lines.append(f"  iot     {self.iot_rules.url} '{rule.topic_filter}' -> {rule.name}")
        for schedule in self.template.schedules:
            mode = "on its rate" if self.settings.run_schedules else "on demand"
            lines.append(
                f"  schedule {schedule.function_id}.{schedule.event_name} {schedule.expression} ({mode})"
            )
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)

    # --- stop -------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.ready = False
        if self.schedules is not None:
            self.schedules.stop()
        if self.binlog_bridge is not None:
            self.binlog_bridge.stop()
        if self.iot_rules is not None:
            self.iot_rules.stop()
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(timeout=10)
        if self.config is not None:
            self.config.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.runtime is not None:
            self.runtime.close()
        if self.moto is not None:
            self.moto.stop()

    def run_forever(self, out: TextIO) -> int:
        """Start, print the ready message, serve until SIGINT/SIGTERM, stop; returns 0."""
        stop_requested: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # no locks here (not even Event.set): the interrupted main thread may hold them
            stop_requested.append(signum)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            write_state(self.settings)
            print(self.describe(), file=out, flush=True)
            while not stop_requested:
                time.sleep(0.2)
            log.info("received %s, stopping", signal.Signals(stop_requested[0]).name)
        finally:
            remove_state(self.settings)
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0
