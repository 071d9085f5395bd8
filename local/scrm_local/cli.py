"""The `scrm` command. Subcommands are registered with @command(...) below; later work adds
its own (`scrm audit verify`, `scrm replay`, `scrm archive restore`) the same way, in its own
module imported at the bottom of this file."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import Clients
from .intrinsics import TemplateError
from .lambda_runtime import (
    EnvironmentConflict,
    HandlerNotFound,
    InvocationFailed,
    LambdaRuntime,
    error_payload,
)
from .schedules import scheduled_event
from .settings import Settings
from .stack import LocalStack, StackError, live_lookup
from .stack_state import running_stack
from .template import Template

log = logging.getLogger("scrm_local")


class CliError(Exception):
    """A clear message for the user; exit status 1."""


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("local", "run") is `scrm local run`
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: list[Command] = []


def command(
    *path: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] | None = None
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register a subcommand: `@command("archive", "restore", help=..., arguments=...)`."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS.append(Command(tuple(path), help, run, arguments))
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrm", description="Omnichannel SCRM sync: local tooling.")
    groups: dict[tuple[str, ...], Any] = {(): parser.add_subparsers(title="commands", metavar="COMMAND")}
    for cmd in COMMANDS:
        for depth in range(1, len(cmd.path)):
            prefix = cmd.path[:depth]
            if prefix not in groups:
                group = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                group.set_defaults(_group=group)
                groups[prefix] = group.add_subparsers(title="commands", metavar="COMMAND")
        sub = groups[cmd.path[:-1]].add_parser(cmd.path[-1], help=cmd.help, description=cmd.help)
        if cmd.arguments is not None:
            cmd.arguments(sub)
        sub.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("SCRM_LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group", None) or parser).print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except (CliError, TemplateError, StackError, EnvironmentConflict, HandlerNotFound) as exc:
        print(f"scrm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- against the running stack ------------------------------------------------------------------
def moto_reachable(endpoint_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=timeout):  # noqa: S310 - local URL
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def attach() -> LambdaRuntime:
    """A runtime for this process, against this project's running `scrm local run` (found by
    its state file, or by MOTO_PORT / SCRM_STACK_NAME when set). Function output goes to stderr."""
    settings = running_stack(Settings.from_env(), os.environ)
    if not moto_reachable(settings.endpoint_url):
        raise CliError(
            f"no local stack is running: nothing answers at {settings.endpoint_url} "
            "(start one with `scrm local run` in this project, or set MOTO_PORT to its moto port)"
        )
    template = Template.load(settings, live=live_lookup(Clients(settings.endpoint_url)))
    return LambdaRuntime(template, settings.endpoint_url, max_environments=1, output=sys.stderr)


@contextmanager
def in_running_stack(factory: str) -> Iterator[Any]:
    """The use case `scrm_sync.bootstrap.<factory>()` built with the running stack's resources
    (the union of its functions' variables, set in this process while the block runs)."""
    runtime = attach()
    runtime.activate()
    try:
        from scrm_sync import bootstrap

        yield getattr(bootstrap, factory)()
    finally:
        runtime.deactivate()


def run_handler(runtime: LambdaRuntime, function_id: str, event: Any) -> int:
    """Invoke in a fresh execution environment; the result goes to stdout as JSON, the
    function's logs to stderr."""
    runtime.template.function(function_id)  # a clear error for an unknown logical id
    try:
        result = runtime.invoke(function_id, event)
    except InvocationFailed as exc:
        print(json.dumps(error_payload(exc)), file=sys.stdout, flush=True)
        return 1
    finally:
        runtime.close()
    print(json.dumps(result), file=sys.stdout, flush=True)
    return 0


def _read_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"--event {source}: not valid JSON ({exc})") from exc


# --- commands -----------------------------------------------------------------------------------
@command("local", "run", help="Run the local stack in the foreground (moto, API, pollers, schedules).")
def local_run(_args: argparse.Namespace) -> int:
    return LocalStack(Settings.from_env()).run_forever(sys.stdout)


def _invoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logical_id", help="the function's logical id in template.yaml")
    parser.add_argument("--event", "-e", help="JSON event file, or - for stdin (default: {})")


@command("invoke", help="Invoke one function against the running local stack.", arguments=_invoke_arguments)
def invoke(args: argparse.Namespace) -> int:
    event = _read_event(args.event)
    return run_handler(attach(), args.logical_id, event)


def _schedule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logical_id", help="the function's logical id in template.yaml")
    parser.add_argument("--event-name", help="which Schedule event, when the function has several")


@command(
    "schedule",
    help="Fire a function's schedule event now against the running stack.",
    arguments=_schedule_arguments,
)
def schedule(args: argparse.Namespace) -> int:
    runtime = attach()
    fn = runtime.template.function(args.logical_id)
    schedules = [s for s in fn.schedules if args.event_name in (None, s.event_name)]
    if not schedules:
        raise CliError(
            f"{args.logical_id} has no Schedule event"
            + (f" named {args.event_name}" if args.event_name else "")
        )
    if len(schedules) > 1:
        names = ", ".join(s.event_name for s in schedules)
        raise CliError(f"{args.logical_id} has several schedules ({names}): pick one with --event-name")
    return run_handler(runtime, args.logical_id, scheduled_event(schedules[0]))


# Subcommands that live in their own modules register themselves on import.
from . import (  # noqa: E402, F401
    archive_commands,
    audit_commands,
    config_commands,
    outbound_commands,
    replay_commands,
    sidebar_commands,
)

if __name__ == "__main__":
    sys.exit(main())
