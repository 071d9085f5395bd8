"""Build the com.scrm.DeviceHealth artifact and its recipe.

    python greengrass/build_artifact.py --artifact-uri s3://my-bucket/com.scrm.DeviceHealth/1.0.0/scrm_edge.zip

writes build/greengrass/scrm_edge.zip (the scrm_edge package and requirements.txt) and
build/greengrass/recipe.yaml (greengrass/recipe.yaml with that URI, and --version if given). The
archive is reproducible: same sources, same bytes (fixed timestamps, sorted entries), so an
unchanged build uploads an identical object.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge" / "scrm_edge"
RECIPE = ROOT / "greengrass" / "recipe.yaml"
REQUIREMENTS = ROOT / "greengrass" / "requirements.txt"
ARTIFACT_NAME = "scrm_edge.zip"  # the recipe's paths follow it: the archive unpacks to .../scrm_edge/
ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_URI_LINE = re.compile(r"^(\s*- URI: )s3://\S+$", re.MULTILINE)
_VERSION_LINE = re.compile(r'^ComponentVersion: "[^"]*"$', re.MULTILINE)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def package_files(package: Path = PACKAGE) -> list[Path]:
    """The package's files to ship: sources and data, no caches."""
    return sorted(
        path
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )


def build_zip(destination: Path, package: Path = PACKAGE, requirements: Path = REQUIREMENTS) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    entries = [(f"scrm_edge/{path.relative_to(package).as_posix()}", path) for path in package_files(package)]
    entries.append(("requirements.txt", requirements))
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return destination


def render_recipe(artifact_uri: str, version: str | None = None, template: Path = RECIPE) -> str:
    if not artifact_uri.startswith("s3://") or not artifact_uri.endswith(f"/{ARTIFACT_NAME}"):
        raise ValueError(f"the artifact URI must be s3://BUCKET/.../{ARTIFACT_NAME} (got {artifact_uri!r})")
    text = template.read_text(encoding="utf-8")
    text, replaced = _URI_LINE.subn(lambda match: match.group(1) + artifact_uri, text)
    if replaced != 1:
        raise ValueError(f"{template} must have exactly one artifact URI line (found {replaced})")
    if version is not None:
        if not _SEMVER.match(version):
            raise ValueError(f"the component version must be MAJOR.MINOR.PATCH (got {version!r})")
        text = _VERSION_LINE.sub(f'ComponentVersion: "{version}"', text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--artifact-uri", required=True, help=f"s3://BUCKET/PREFIX/{ARTIFACT_NAME}")
    parser.add_argument("--version", help="the ComponentVersion to write into the recipe (MAJOR.MINOR.PATCH)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "greengrass", help="output folder")
    args = parser.parse_args(argv)
    try:
        recipe = render_recipe(args.artifact_uri, args.version)
    except ValueError as error:
        print(f"build_artifact: {error}", file=sys.stderr)
        return 2
    archive = build_zip(args.out / ARTIFACT_NAME)
    (args.out / "recipe.yaml").write_text(recipe, encoding="utf-8")
    print(f"{archive}\n{args.out / 'recipe.yaml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
