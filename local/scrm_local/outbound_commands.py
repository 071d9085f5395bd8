"""`scrm outbound replay`: move dead-lettered outbound deliveries (WeCom tags, webhooks, the event
bus) back onto their destination's queue, against the running local stack, or a deployed stack
with --stack-name (its destination queues are found through the stack's functions)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager
from typing import Any

from scrm_sync.services.outbound_replay import OutboundReplay

from .cli import CliError, command, in_running_stack

DESTINATIONS = ("wecom_tags", "webhooks", "event_bus")
QUEUE_VARIABLES = {
    "wecom_tags": "WECOM_TAG_QUEUE_URL",
    "webhooks": "WEBHOOK_DELIVERY_QUEUE_URL",
    "event_bus": "EVENT_BUS_QUEUE_URL",
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "prints {destination: {moved, kept}} as JSON; exit status 0, or 1 on an error"
    parser.add_argument("--destination", choices=DESTINATIONS, help="only this destination (default: all)")
    parser.add_argument("--subscription", help="only the webhook deliveries of this subscription")
    parser.add_argument("--limit", type=_positive, help="move at most this many per destination")
    parser.add_argument("--dry-run", action="store_true", help="count what waits, move nothing")
    parser.add_argument("--stack-name", help="a deployed stack (AWS credentials from the environment)")


def local_replay() -> AbstractContextManager[OutboundReplay]:
    return in_running_stack("outbound_replay")  # its composition root finds the queues


def deployed_replay(stack_name: str) -> OutboundReplay:
    """The deployed stack's queues: ChangeFeedFunction's environment names all three."""
    import boto3
    from scrm_sync.adapters.outbound_queues import SqsDeadLetters

    try:
        function = boto3.client("cloudformation").describe_stack_resource(
            StackName=stack_name, LogicalResourceId="ChangeFeedFunction"
        )["StackResourceDetail"]["PhysicalResourceId"]
        variables = boto3.client("lambda").get_function_configuration(FunctionName=function)["Environment"][
            "Variables"
        ]
    except Exception as exc:
        raise CliError(f"cannot read the stack {stack_name!r}: {exc}") from exc
    urls = {name: variables[var] for name, var in QUEUE_VARIABLES.items() if variables.get(var)}
    return OutboundReplay(SqsDeadLetters(boto3.client("sqs"), urls))


def _report(counts: dict[str, Any]) -> dict[str, Any]:
    return {name: {"moved": count.moved, "kept": count.kept} for name, count in counts.items()}


@command(
    "outbound",
    "replay",
    help="Move dead-lettered outbound deliveries back onto their destination's queue.",
    arguments=_arguments,
)
def outbound_replay(args: argparse.Namespace) -> int:
    options = {
        "destination": args.destination,
        "subscription": args.subscription,
        "limit": args.limit,
        "dry_run": args.dry_run,
    }
    try:
        if args.stack_name:
            counts = deployed_replay(args.stack_name).replay(**options)
        else:
            with local_replay() as service:
                counts = service.replay(**options)
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(_report(counts)), file=sys.stdout)
    return 0
