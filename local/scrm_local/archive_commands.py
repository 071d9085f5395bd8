"""`scrm archive restore`: bring archived orders back into the orders table of the running local
stack (`--order-id`, optionally `--source`; or every order of a `--date`). The archive keeps its
copy; a restored order stays hot for ARCHIVE_RESTORE_HOLD_DAYS before it is archived again."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from .cli import CliError, attach, command


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order-id", help="the order to restore (found by id through its archive stub)")
    parser.add_argument("--source", help="only orders of this source (channel)")
    parser.add_argument(
        "--date",
        type=_day,
        help="order day YYYY-MM-DD: with --order-id, search that day's manifests; alone, restore the day",
    )


@command(
    "archive",
    "restore",
    help="Restore archived orders into the hot orders table (the archive keeps its copy).",
    arguments=_restore_arguments,
)
def archive_restore(args: argparse.Namespace) -> int:
    if not args.order_id and not args.date:
        raise CliError("give --order-id and/or --date")
    runtime = attach()
    runtime.activate()  # the application's environment: its composition root finds table and bucket
    try:
        from scrm_sync.bootstrap import restore as restore_orders

        restore = restore_orders()
        if args.order_id:
            report = restore.by_order(args.order_id, args.source, args.date)
        else:
            report = restore.by_date(args.date, args.source)
    finally:
        runtime.deactivate()
    print(json.dumps(report.as_dict(), ensure_ascii=False), file=sys.stdout)
    return 1 if report.unreadable else 0
