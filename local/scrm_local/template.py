"""Read template.yaml: functions (Globals merged), HttpApi routes and their Lambda authorizers,
event sources, schedules.

All values come out resolved against the local stack's deterministic names (see intrinsics.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from . import cfn_yaml
from .intrinsics import LiveLookup, Resolver, TemplateError, is_intrinsic
from .naming import resource_arn
from .settings import ACCOUNT_ID, REGION, Settings

log = logging.getLogger(__name__)

FUNCTION_TYPES = ("AWS::Serverless::Function",)
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
IMPLICIT_HTTP_API = "ServerlessHttpApi"  # the HttpApi SAM creates for routes without an ApiId
NO_AUTHORIZER = "NONE"  # a route's `Auth: {Authorizer: NONE}` opts out of the DefaultAuthorizer
IAM_AUTHORIZER = "AWS_IAM"
DEFAULT_AUTHORIZER_TTL = 300  # API Gateway's AuthorizerResultTtlInSeconds when ReauthorizeEvery is unset

__all__ = [
    "DeliveryStreamSpec",
    "FunctionSpec",
    "HttpAuthorizer",
    "HttpRoute",
    "ScheduleSpec",
    "SqsSource",
    "StreamSource",
    "Template",
    "TemplateError",
    "merge_globals",
]


@dataclass(frozen=True)
class HttpAuthorizer:
    """A Lambda authorizer of an HttpApi (an entry of its `Auth.Authorizers`), as the gateway runs it."""

    api_id: str  # logical id of the HttpApi (ServerlessHttpApi for the implicit one)
    name: str
    function_id: str
    identity_headers: tuple[str, ...] = ()
    identity_query_strings: tuple[str, ...] = ()
    ttl: int = DEFAULT_AUTHORIZER_TTL  # Identity.ReauthorizeEvery; 0 = no caching
    simple_responses: bool = False  # EnableSimpleResponses: {"isAuthorized", "context"} answers

    @property
    def identity_source(self) -> tuple[str, ...]:
        return tuple(f"$request.header.{h}" for h in self.identity_headers) + tuple(
            f"$request.querystring.{q}" for q in self.identity_query_strings
        )


@dataclass(frozen=True)
class HttpRoute:
    function_id: str
    event_name: str
    method: str  # upper case, or ANY
    path: str  # /webhooks/{channel}, or $default
    authorizer: HttpAuthorizer | None = None  # None: the route is open (no or NONE authorizer)

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    function_id: str
    event_name: str
    queue_arn: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_failures: bool = False
    enabled: bool = True
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class StreamSource:
    kind: Literal["kinesis", "dynamodb"]
    function_id: str
    event_name: str
    stream_arn: str
    starting_position: str = "LATEST"
    starting_timestamp: float | None = None
    batch_size: int = 100
    batching_window: float = 0.0
    report_failures: bool = False
    bisect: bool = False
    max_retry_attempts: int = -1
    on_failure_arn: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class DeliveryStreamSpec:
    """An AWS::KinesisFirehose::DeliveryStream with a Kinesis stream source and an S3 destination."""

    logical_id: str
    name: str
    stream_arn: str
    bucket: str
    prefix: str
    error_prefix: str
    interval_seconds: float
    size_bytes: int
    compression: str = "UNCOMPRESSED"


@dataclass(frozen=True)
class ScheduleSpec:
    function_id: str
    event_name: str
    kind: str  # Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler)
    expression: str
    rule_arn: str
    input: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...] = ()  # local folders of its AWS::Serverless::LayerVersion layers
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions
    routes: tuple[HttpRoute, ...] = ()
    sqs_sources: tuple[SqsSource, ...] = ()
    stream_sources: tuple[StreamSource, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = field(default=())


def merge_globals(global_props: dict[str, Any], local_props: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (function wins), lists add up, scalars are overridden."""
    out = dict(global_props)
    for key, value in local_props.items():
        current = out.get(key)
        if (
            isinstance(current, dict)
            and isinstance(value, dict)
            and not is_intrinsic(current)
            and not is_intrinsic(value)
        ):
            out[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            out[key] = current + value
        else:
            out[key] = value
    return out


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    return value is True or str(value).lower() == "true"


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Template:
    def __init__(self, document: dict[str, Any], settings: Settings, live: LiveLookup | None = None) -> None:
        self.document = document
        self.settings = settings
        self._api_auth: dict[str, tuple[dict[str, HttpAuthorizer | None], str | None]] = {}
        self.resolver = Resolver(
            document,
            stack_name=settings.stack_name,
            endpoint_url=settings.endpoint_url,
            parameter_overrides=settings.parameter_overrides,
            live=live,
        )

    @classmethod
    def load(cls, settings: Settings, live: LiveLookup | None = None) -> Template:
        if not settings.template_path.is_file():
            raise TemplateError(f"template not found: {settings.template_path}")
        return cls(cfn_yaml.load(settings.template_path), settings, live)

    # --- resources ------------------------------------------------------------------------------
    @property
    def raw_resources(self) -> dict[str, Any]:
        return dict(self.document.get("Resources") or {})

    def logical_ids(self, *types: str) -> list[str]:
        return [
            lid
            for lid, spec in self.raw_resources.items()
            if (not types or spec.get("Type") in types) and self.resolver.resource_enabled(lid)
        ]

    def resource_type(self, logical_id: str) -> str | None:
        spec = self.raw_resources.get(logical_id)
        return None if spec is None else str(spec.get("Type"))

    # --- functions ------------------------------------------------------------------------------
    @cached_property
    def functions(self) -> dict[str, FunctionSpec]:
        functions: dict[str, FunctionSpec] = {}
        for lid in self.logical_ids(*FUNCTION_TYPES):
            spec = self._function(lid)
            if spec is not None:
                functions[lid] = spec
        return functions

    def function(self, logical_id: str) -> FunctionSpec:
        if logical_id not in self.functions:
            known = ", ".join(sorted(self.functions)) or "none"
            raise TemplateError(f"{logical_id} is not a function in the template (functions: {known})")
        return self.functions[logical_id]

    @property
    def routes(self) -> list[HttpRoute]:
        return [route for fn in self.functions.values() for route in fn.routes]

    @property
    def sqs_sources(self) -> list[SqsSource]:
        return [src for fn in self.functions.values() for src in fn.sqs_sources]

    @property
    def stream_sources(self) -> list[StreamSource]:
        return [src for fn in self.functions.values() for src in fn.stream_sources]

    @cached_property
    def delivery_streams(self) -> list[DeliveryStreamSpec]:
        """Firehose delivery streams that read a Kinesis stream of this template into S3."""
        found = []
        for lid in self.logical_ids("AWS::KinesisFirehose::DeliveryStream"):
            props = self.resolver.properties(lid)
            source = props.get("KinesisStreamSourceConfiguration") or {}
            s3 = props.get("ExtendedS3DestinationConfiguration") or props.get("S3DestinationConfiguration")
            if props.get("DeliveryStreamType") != "KinesisStreamAsSource" or not source or not s3:
                log.warning("%s: only Kinesis-to-S3 delivery streams run locally; skipped", lid)
                continue
            hints = s3.get("BufferingHints") or {}
            found.append(
                DeliveryStreamSpec(
                    logical_id=lid,
                    name=self.resolver.resource(lid).name,
                    stream_arn=str(source["KinesisStreamARN"]),
                    bucket=str(s3["BucketARN"]).rsplit(":", 1)[-1],
                    prefix=str(s3.get("Prefix", "")),
                    error_prefix=str(s3.get("ErrorOutputPrefix", "")),
                    interval_seconds=float(hints.get("IntervalInSeconds", 300)),
                    size_bytes=int(float(hints.get("SizeInMBs", 5)) * 1024 * 1024),
                    compression=str(s3.get("CompressionFormat", "UNCOMPRESSED")),
                )
            )
        return found

    @property
    def schedules(self) -> list[ScheduleSpec]:
        return [s for fn in self.functions.values() for s in fn.schedules]

    def _function(self, lid: str) -> FunctionSpec | None:
        globals_fn = (self.document.get("Globals") or {}).get("Function") or {}
        raw = self.raw_resources[lid].get("Properties") or {}
        props = self.resolver.resolve(merge_globals(globals_fn, raw))
        runtime = str(props.get("Runtime", ""))
        if props.get("PackageType") == "Image" or not runtime.startswith("python"):
            log.warning("%s: only zip-packaged python functions run locally; skipped", lid)
            return None
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            log.warning("%s: CodeUri must be a local folder to run locally; skipped", lid)
            return None
        res = self.resolver.resource(lid)
        variables = (props.get("Environment") or {}).get("Variables") or {}
        events = props.get("Events") or {}
        routes: list[HttpRoute] = []
        sqs: list[SqsSource] = []
        streams: list[StreamSource] = []
        schedules: list[ScheduleSpec] = []
        for event_name, event in events.items():
            etype = event.get("Type")
            ep = event.get("Properties") or {}
            if etype == "HttpApi":
                path = ep.get("Path")
                method = str(ep.get("Method") or "ANY").upper()
                if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                    method = "ANY"
                raw_event = (raw.get("Events") or {}).get(event_name) or {}
                api_id = self._api_id(lid, event_name, (raw_event.get("Properties") or {}).get("ApiId"))
                authorizer = self._route_authorizer(api_id, f"{lid}.{event_name}", ep.get("Auth"))
                routes.append(HttpRoute(lid, event_name, method, path or "$default", authorizer))
            elif etype == "SQS":
                sqs.append(
                    SqsSource(
                        function_id=lid,
                        event_name=event_name,
                        queue_arn=str(ep["Queue"]),
                        batch_size=int(ep.get("BatchSize", 10)),
                        batching_window=float(ep.get("MaximumBatchingWindowInSeconds", 0)),
                        report_failures="ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                        enabled=_bool(ep.get("Enabled"), True),
                        maximum_concurrency=(
                            int(scaling["MaximumConcurrency"])
                            if isinstance(scaling := ep.get("ScalingConfig"), dict)
                            and scaling.get("MaximumConcurrency") is not None
                            else None
                        ),
                    )
                )
            elif etype in ("Kinesis", "DynamoDB"):
                on_failure = ((ep.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                timestamp = ep.get("StartingPositionTimestamp")
                streams.append(
                    StreamSource(
                        kind="kinesis" if etype == "Kinesis" else "dynamodb",
                        function_id=lid,
                        event_name=event_name,
                        stream_arn=str(ep["Stream"]),
                        starting_position=str(ep.get("StartingPosition", "LATEST")),
                        starting_timestamp=float(timestamp) if timestamp is not None else None,
                        batch_size=int(ep.get("BatchSize", 100)),
                        batching_window=float(ep.get("MaximumBatchingWindowInSeconds", 0)),
                        report_failures="ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                        bisect=_bool(ep.get("BisectBatchOnFunctionError")),
                        max_retry_attempts=int(ep.get("MaximumRetryAttempts", -1)),
                        on_failure_arn=str(on_failure) if on_failure else None,
                        enabled=_bool(ep.get("Enabled"), True),
                    )
                )
            elif etype in ("Schedule", "ScheduleV2"):
                schedules.append(self._schedule(lid, event_name, str(etype), ep))
            else:
                log.info("%s.%s: event type %s is not run locally", lid, event_name, etype)
        return FunctionSpec(
            logical_id=lid,
            name=res.name,
            arn=resource_arn(res),
            code_dir=(self.settings.project_root / code_uri).resolve(),
            handler=str(props.get("Handler", "app.lambda_handler")),
            runtime=runtime,
            timeout=int(props.get("Timeout", DEFAULT_TIMEOUT)),
            memory_size=int(props.get("MemorySize", DEFAULT_MEMORY)),
            environment={str(k): _env_string(v) for k, v in variables.items()},
            layer_dirs=self._layer_dirs(lid, merge_globals(globals_fn, raw).get("Layers") or []),
            reserved_concurrency=(
                int(props["ReservedConcurrentExecutions"])
                if props.get("ReservedConcurrentExecutions") is not None
                else None
            ),
            routes=tuple(routes),
            sqs_sources=tuple(sqs),
            stream_sources=tuple(streams),
            schedules=tuple(schedules),
        )

    def _layer_dirs(self, lid: str, layers: list[Any]) -> tuple[Path, ...]:
        """Each `!Ref` to a layer of this template with a local ContentUri, as the folder the
        Python runtime would find at /opt/python (SAM builds a `python` layer into python/)."""
        folders: list[Path] = []
        for layer in layers:
            ref = layer.get("Ref") if isinstance(layer, dict) else None
            spec = self.raw_resources.get(ref) if isinstance(ref, str) else None
            content = ((spec or {}).get("Properties") or {}).get("ContentUri")
            if not isinstance(content, str):
                log.info("%s: layer %r is not a local layer of this template; not on its path", lid, layer)
                continue
            folder = (self.settings.project_root / content).resolve()
            folders.append(folder / "python" if (folder / "python").is_dir() else folder)
        return tuple(folders)

    # --- HttpApi authorizers (SAM's Auth of the API and of each route) ---------------------------------
    def _api_id(self, lid: str, event_name: str, raw_api_id: Any) -> str:
        if raw_api_id is None:
            return IMPLICIT_HTTP_API
        if isinstance(raw_api_id, dict) and isinstance(raw_api_id.get("Ref"), str):
            return str(raw_api_id["Ref"])
        raise TemplateError(f"{lid}.{event_name}: ApiId must be !Ref of an AWS::Serverless::HttpApi")

    def _route_authorizer(self, api_id: str, where: str, auth: Any) -> HttpAuthorizer | None:
        """SAM's rule: a route without Auth.Authorizer uses the API's DefaultAuthorizer; NONE opts out."""
        authorizers, default = self._authorizers(api_id)
        name = (auth or {}).get("Authorizer") if isinstance(auth, dict) else None
        name = default if name is None else str(name)
        if name is None or name == NO_AUTHORIZER:
            return None
        if name == IAM_AUTHORIZER:
            log.warning("%s: IAM authorization is not checked locally; the route is open", where)
            return None
        if name not in authorizers:
            known = ", ".join(sorted(authorizers)) or "none"
            raise TemplateError(f"{where}: authorizer {name} is not on {api_id} (its authorizers: {known})")
        return authorizers[name]

    def _authorizers(self, api_id: str) -> tuple[dict[str, HttpAuthorizer | None], str | None]:
        """The API's authorizers by name (None: declared but not run locally) and its default."""
        if api_id not in self._api_auth:
            globals_api = (self.document.get("Globals") or {}).get("HttpApi") or {}
            if api_id == IMPLICIT_HTTP_API:
                raw_props: dict[str, Any] = {}
            else:
                spec = self.raw_resources.get(api_id)
                if spec is None or spec.get("Type") != "AWS::Serverless::HttpApi":
                    raise TemplateError(f"ApiId {api_id} is not an AWS::Serverless::HttpApi in the template")
                raw_props = spec.get("Properties") or {}
            auth = merge_globals(globals_api, raw_props).get("Auth") or {}
            authorizers = {
                str(name): self._authorizer(api_id, str(name), config)
                for name, config in (auth.get("Authorizers") or {}).items()
            }
            default = self.resolver.resolve(auth.get("DefaultAuthorizer"))
            self._api_auth[api_id] = (authorizers, None if default is None else str(default))
        return self._api_auth[api_id]

    def _authorizer(self, api_id: str, name: str, config: dict[str, Any]) -> HttpAuthorizer | None:
        where = f"{api_id} authorizer {name}"
        if "JwtConfiguration" in config:
            log.warning("%s: JWT authorizers are not checked locally; its routes are open", where)
            return None
        if "FunctionArn" not in config:
            raise TemplateError(f"{where}: needs FunctionArn (a Lambda authorizer) or JwtConfiguration")
        version = str(self.resolver.resolve(config.get("AuthorizerPayloadFormatVersion", "")))
        if version != "2.0":
            raise TemplateError(
                f"{where}: only AuthorizerPayloadFormatVersion 2.0 runs locally (found {version or 'none'})"
            )
        function_arn = self.resolver.resolve(config["FunctionArn"])
        function_id = next(
            (
                lid
                for lid in self.logical_ids(*FUNCTION_TYPES)
                if resource_arn(self.resolver.resource(lid)) == function_arn
            ),
            None,
        )
        if function_id is None:
            raise TemplateError(f"{where}: FunctionArn {function_arn} is not a function of this template")
        identity = self.resolver.resolve(config.get("Identity") or {})
        for kind in ("Context", "StageVariables"):
            if identity.get(kind):
                log.warning("%s: %s identity sources are not checked locally", where, kind)
        ttl = int(identity.get("ReauthorizeEvery", DEFAULT_AUTHORIZER_TTL))
        return HttpAuthorizer(
            api_id=api_id,
            name=name,
            function_id=function_id,
            identity_headers=tuple(str(h) for h in identity.get("Headers") or ()),
            identity_query_strings=tuple(str(q) for q in identity.get("QueryStrings") or ()),
            ttl=max(ttl, 0),
            simple_responses=_bool(self.resolver.resolve(config.get("EnableSimpleResponses"))),
        )

    def _schedule(self, lid: str, event_name: str, kind: str, ep: dict[str, Any]) -> ScheduleSpec:
        stack = self.settings.stack_name
        if kind == "Schedule":
            expression = str(ep.get("Schedule", ""))
            name = str(ep.get("Name") or f"{stack}-{lid}{event_name}")
            rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"
            enabled = _bool(ep.get("Enabled"), True) and str(ep.get("State", "ENABLED")) == "ENABLED"
        else:
            expression = str(ep.get("ScheduleExpression", ""))
            name = str(ep.get("Name") or f"{stack}-{lid}{event_name}")
            group = str(ep.get("GroupName") or "default")
            rule_arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/{group}/{name}"
            enabled = str(ep.get("State", "ENABLED")) == "ENABLED"
        raw_input = ep.get("Input")
        return ScheduleSpec(
            function_id=lid,
            event_name=event_name,
            kind=kind,
            expression=expression,
            rule_arn=rule_arn,
            input=None if raw_input is None else str(raw_input),
            enabled=enabled,
        )
