"""`scrm audit verify <profile_id>`: check a profile's audit chain in the running local stack."""

from __future__ import annotations

import argparse
import json
import sys

from .cli import attach, command


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile_id", help="the profile whose hash chain to verify")


@command(
    "audit", "verify", help="Verify a profile's tamper-evident audit chain.", arguments=_verify_arguments
)
def audit_verify(args: argparse.Namespace) -> int:
    runtime = attach()
    runtime.activate()  # the application's environment: its composition root finds the audit table
    try:
        from scrm_sync.bootstrap import container

        report = container().audit.verify(args.profile_id)
    finally:
        runtime.deactivate()
    result = {
        "profile_id": args.profile_id,
        "entries": report.entries,
        "ok": report.ok,
        "first_broken_seq": report.first_broken_seq,
        "problem": report.problem,
    }
    print(json.dumps(result), file=sys.stdout)
    return 0 if report.ok else 1
