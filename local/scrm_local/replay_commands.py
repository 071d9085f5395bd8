"""`scrm replay`, `scrm mapping-failures` and `scrm drift`: re-run landed webhooks through the
current mappings, list the pushes the webhook could not map, and list the schema drift the
channels showed, against the running local stack."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager
from datetime import date

from scrm_sync.services.replay import ReplayReport, WebhookReplay

from .cli import CliError, command, in_running_stack

EXIT_REPLAYED = 0
EXIT_SKIPPED = 3  # the run finished, but some objects were skipped (1 is an error, 2 a usage error)

_REPLAY_EPILOG = (
    f"exit status: {EXIT_REPLAYED} every landed push was replayed; {EXIT_SKIPPED} the run finished "
    'but objects were skipped (each listed under "skipped" with its key and reason: unreadable, '
    "signature no longer verifies, or not mappable with the current rules); 1 an error"
)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def running_stack_replay() -> AbstractContextManager[WebhookReplay]:
    return in_running_stack("replay")  # its composition root finds the landing bucket


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _REPLAY_EPILOG
    parser.add_argument("--source", required=True, help="the channel whose landed webhooks to replay")
    parser.add_argument("--since", required=True, type=_day, help="first landing day (UTC), YYYY-MM-DD")
    parser.add_argument("--until", type=_day, help="last landing day (UTC), default today")
    parser.add_argument("--run-id", help="name of this replay; replaying a run id again changes nothing")
    parser.add_argument(
        "--request-id",
        help="only this push (a mapping-failure record names it): picked out of its batched landing object",
    )


@command(
    "replay",
    help="Re-run landed webhooks of a channel through the current rules (after a mapping fix).",
    arguments=_replay_arguments,
)
def replay(args: argparse.Namespace) -> int:
    with running_stack_replay() as service:
        try:
            report = service.replay(args.source, args.since, args.until, args.run_id, args.request_id)
        except (LookupError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    print(json.dumps(report.as_dict(), ensure_ascii=False), file=sys.stdout)
    return replay_exit_status(report)


def replay_exit_status(report: ReplayReport) -> int:
    if report.skipped:
        print(f'scrm replay: {len(report.skipped)} object(s) skipped, see "skipped"', file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_REPLAYED


def _mapping_failures_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="only this channel")
    parser.add_argument(
        "--since", type=_day, help="only pushes received on or after this day (UTC), YYYY-MM-DD"
    )


@command(
    "mapping-failures",
    help="List authentic webhook pushes that could not be mapped (landed and acked; replay after a fix).",
    arguments=_mapping_failures_arguments,
)
def mapping_failures(args: argparse.Namespace) -> int:
    with running_stack_replay() as service:
        records = service.mapping_failures(args.source, args.since)
    print(json.dumps(records, ensure_ascii=False, indent=2), file=sys.stdout)
    return 0


def _drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="only this channel or source")


@command("drift", help="List schema drift records with their suggested mappings.", arguments=_drift_arguments)
def drift(args: argparse.Namespace) -> int:
    with in_running_stack("schema_registry") as registry:
        if registry is None:
            raise CliError("the template declares no SchemaTable")
        records = registry.drift_records(args.source)
    print(json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=2), file=sys.stdout)
    return 0
