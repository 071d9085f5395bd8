"""`scrm audit verify <profile_id>`: check a profile's audit chain in the running local stack;
`scrm audit migrate`: rewrite every chain still in format 1 in the current format (the one an
erasure can remove content from without breaking the chain; domain/audit.py)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager

from scrm_sync.domain.audit import ChainStatus
from scrm_sync.services.audit import AuditTrail

from .cli import command, in_running_stack

EXIT_INTACT = 0
EXIT_BROKEN = 1  # an entry altered, removed, reordered, or disagreeing with HEAD
EXIT_NO_CHAIN = 3  # nothing chained for this id (2 is argparse's usage error)

_EPILOG = (
    f"exit status: {EXIT_INTACT} intact, {EXIT_BROKEN} broken (an entry altered, removed or "
    f"reordered, or the entries disagree with the chain's HEAD), {EXIT_NO_CHAIN} no audit chain "
    "for that id"
)


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = _EPILOG
    parser.add_argument("profile_id", help="the profile whose hash chain to verify")


def running_stack_audit_trail() -> AbstractContextManager[AuditTrail]:
    return in_running_stack("audit")  # its composition root finds the audit table


@command(
    "audit", "verify", help="Verify a profile's tamper-evident audit chain.", arguments=_verify_arguments
)
def audit_verify(args: argparse.Namespace) -> int:
    with running_stack_audit_trail() as trail:
        return verify_and_report(trail, args.profile_id)


def verify_and_report(trail: AuditTrail, profile_id: str) -> int:
    """Print the report as JSON on stdout, a one-line verdict on stderr; return the exit status."""
    report = trail.verify(profile_id)
    result = {
        "profile_id": profile_id,
        "status": report.status.value,
        "entries": report.entries,
        "ok": report.ok,
        "first_broken_seq": report.first_broken_seq,
        "problem": report.problem,
    }
    print(json.dumps(result), file=sys.stdout)
    if report.status is ChainStatus.MISSING:
        print(f"scrm: no audit chain for {profile_id}", file=sys.stderr)
        return EXIT_NO_CHAIN
    if not report.ok:
        print(f"scrm: the audit chain of {profile_id} is broken: {report.problem}", file=sys.stderr)
        return EXIT_BROKEN
    return EXIT_INTACT


@command(
    "audit",
    "migrate",
    help="Rewrite every verified audit chain still in format 1 in the current format.",
)
def audit_migrate(_args: argparse.Namespace) -> int:
    """Prints the counts per outcome; exit 1 when a chain was broken (left as it is)."""
    with running_stack_audit_trail() as trail:
        counts = trail.migrate_all()
    print(json.dumps(counts, sort_keys=True), file=sys.stdout)
    return EXIT_BROKEN if counts.get("broken") else EXIT_INTACT
