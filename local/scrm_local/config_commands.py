"""`scrm rules check FILE` and `scrm channels check FILE`: validate a rules or channels document
offline, with the parser the functions use, before it is put into the parameter or secret
(no running stack needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scrm_sync.domain.config_documents import CHANNELS, RULES, ConfigDocument, InvalidDocument

from .cli import CliError, command

EXIT_VALID = 0
EXIT_INVALID = 1


def _file_argument(parser: argparse.ArgumentParser) -> None:
    parser.epilog = f"exit status: {EXIT_VALID} valid, {EXIT_INVALID} invalid (every problem is listed)"
    parser.add_argument("file", type=Path, help="the JSON document to check")


def check_file(document: ConfigDocument[Any], path: Path) -> int:
    """Print OK, or one line per problem (field path: message); return the exit status."""
    try:
        text = path.read_text(encoding="utf-8")  # as the local stack reads it; a parameter is text
    except UnicodeDecodeError as exc:
        print(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stdout)
        return EXIT_INVALID
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document.parse(text)
    except InvalidDocument as exc:
        print(f"{path}: invalid {document.name} document, {len(exc.problems)} problem(s):", file=sys.stdout)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stdout)
        return EXIT_INVALID
    print(f"{path}: OK, a valid {document.name} document", file=sys.stdout)
    return EXIT_VALID


@command("rules", "check", help="Validate a rules document (offline).", arguments=_file_argument)
def rules_check(args: argparse.Namespace) -> int:
    return check_file(RULES, args.file)


@command(
    "channels",
    "check",
    help="Validate a channels (credentials) document (offline).",
    arguments=_file_argument,
)
def channels_check(args: argparse.Namespace) -> int:
    return check_file(CHANNELS, args.file)
