"""`make lint`'s security scan: checkov over template.yaml with the justified baseline.

lint/checkov-baseline.yaml lists the checks this design does not follow, each with a one-line
reason. The gate refuses a baseline entry without a reason, then runs checkov skipping exactly
those checks: any other failed check (a new finding) fails the lint. checkov lives in a virtual
environment of its own (.venv-checkov, pinned by lint/checkov-requirements.txt): its dependencies
do not fit the project's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "lint" / "checkov-baseline.yaml"
CHECK_ID = "CKV_"


class UnjustifiedSkip(ValueError):
    """A baseline entry without its reason (or not a checkov check id)."""


def justified_skips(path: Path = BASELINE) -> dict[str, str]:
    """Check id -> reason, every one of them with a reason."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise UnjustifiedSkip(f"{path.name}: must map check ids to reasons")
    problems = [
        f"{path.name}: {check} needs a one-line reason"
        for check, reason in document.items()
        if not isinstance(reason, str) or len(reason.strip()) < 20
    ]
    problems += [
        f"{path.name}: {check} is not a checkov check id"
        for check in document
        if not str(check).startswith(CHECK_ID)
    ]
    if problems:
        raise UnjustifiedSkip("; ".join(problems))
    return {str(check): str(reason) for check, reason in document.items()}


def command(checkov: str, skips: dict[str, str], template: Path = ROOT / "template.yaml") -> list[str]:
    return [
        checkov,
        "--file",
        str(template),
        "--framework",
        "cloudformation",
        "--compact",
        "--quiet",
        "--skip-download",  # no calls to Prisma Cloud: lint runs offline
        "--skip-check",
        ",".join(sorted(skips)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checkov", default=str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parser.parse_args(argv)
    try:
        skips = justified_skips(args.baseline)
    except UnjustifiedSkip as exc:
        print(f"checkov baseline refused: {exc}", file=sys.stderr)
        return 1
    result = subprocess.run(command(args.checkov, skips), check=False)  # noqa: S603 - our own argv
    if result.returncode:
        print(
            "checkov found what the baseline does not justify: fix the template, or add the check to "
            f"{args.baseline.relative_to(ROOT) if args.baseline.is_relative_to(ROOT) else args.baseline} "
            "with its reason",
            file=sys.stderr,
        )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
