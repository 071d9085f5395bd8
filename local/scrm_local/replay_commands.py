"""`scrm replay` and `scrm drift`: re-run landed webhooks through the current mappings, and list
the schema drift the channels showed, against the running local stack."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from .cli import CliError, attach, command


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="the channel whose landed webhooks to replay")
    parser.add_argument("--since", required=True, type=_day, help="first landing day (UTC), YYYY-MM-DD")
    parser.add_argument("--until", type=_day, help="last landing day (UTC), default today")
    parser.add_argument("--run-id", help="name of this replay; replaying a run id again changes nothing")


@command(
    "replay",
    help="Re-run landed webhooks of a channel through the current rules (after a mapping fix).",
    arguments=_replay_arguments,
)
def replay(args: argparse.Namespace) -> int:
    runtime = attach()
    runtime.activate()  # the application's environment: its composition root finds the bucket
    try:
        from scrm_sync.bootstrap import container

        try:
            report = container().replay.replay(args.source, args.since, args.until, args.run_id)
        except (LookupError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    finally:
        runtime.deactivate()
    print(json.dumps(report.as_dict(), ensure_ascii=False), file=sys.stdout)
    return 0


def _drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="only this channel or source")


@command("drift", help="List schema drift records with their suggested mappings.", arguments=_drift_arguments)
def drift(args: argparse.Namespace) -> int:
    runtime = attach()
    runtime.activate()
    try:
        from scrm_sync.adapters.dynamodb_schemas import DynamoSchemaRegistry
        from scrm_sync.bootstrap import client, container

        table = container().settings.schema_table
        if not table:
            raise CliError("the template declares no SchemaTable")
        records = DynamoSchemaRegistry(client("dynamodb"), table).drift_records(args.source)
    finally:
        runtime.deactivate()
    print(json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=2), file=sys.stdout)
    return 0
