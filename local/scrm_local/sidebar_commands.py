"""`scrm sidebar publish`: put the sidebar page into a deployed stack's SidebarBucket under
`sidebar/`, with a config.json naming the corp and agent of the `wecom_sidebar` entry of the
stack's channels secret (the page calls its API on the same origin, so `api_base` is empty).
Run it after `sam deploy` (`make deploy` does) and whenever the page or the sidebar app changes."""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

import boto3

from .cli import CliError, command

PAGE_DIR = Path(__file__).resolve().parents[2] / "sidebar"
PREFIX = "sidebar/"
# the page's files are not fingerprinted: the HTML and the settings are revalidated on every open,
# scripts and styles after five minutes
NO_CACHE = "no-cache"
SHORT_CACHE = "max-age=300"


def page_files(root: Path = PAGE_DIR) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name != "config.json" and not p.name.startswith(".")
    )


def page_config(secret_text: str) -> dict[str, str]:
    try:
        document = json.loads(secret_text or "{}")
    except ValueError as exc:
        raise CliError("the channels secret is not JSON") from exc
    entry = document.get("wecom_sidebar") if isinstance(document, dict) else None
    if not isinstance(entry, dict) or not entry.get("corp_id") or not entry.get("agent_id"):
        raise CliError(
            "the channels secret has no 'wecom_sidebar' entry with corp_id and agent_id: put it first "
            "(README: WeCom sidebar)"
        )
    return {"api_base": "", "corp_id": str(entry["corp_id"]), "agent_id": str(entry["agent_id"])}


def publish(s3: Any, bucket: str, config: dict[str, str], root: Path = PAGE_DIR) -> list[str]:
    keys = []
    for path in page_files(root):
        key = PREFIX + path.relative_to(root).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        cache = NO_CACHE if path.suffix in (".html", ".json") else SHORT_CACHE
        s3.put_object(
            Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type, CacheControl=cache
        )
        keys.append(key)
    s3.put_object(
        Bucket=bucket,
        Key=PREFIX + "config.json",
        Body=json.dumps(config, ensure_ascii=False).encode(),
        ContentType="application/json; charset=utf-8",
        CacheControl=NO_CACHE,
    )
    return [*keys, PREFIX + "config.json"]


def _stack_outputs(stack_name: str, region: str | None) -> dict[str, str]:
    stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)[
        "Stacks"
    ]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack-name", help="the deployed stack (its outputs name the bucket and the secret)"
    )
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    parser.add_argument("--bucket", help="SidebarBucketName, instead of reading the stack's outputs")
    parser.add_argument(
        "--secret-arn", help="ChannelCredentialsSecretArn, instead of reading the stack's outputs"
    )


@command(
    "sidebar",
    "publish",
    help="Upload the sidebar page and its config.json to a deployed stack.",
    arguments=_arguments,
)
def sidebar_publish(args: argparse.Namespace) -> int:
    bucket, secret_arn = args.bucket, args.secret_arn
    if not (bucket and secret_arn):
        if not args.stack_name:
            raise CliError("give --stack-name (or both --bucket and --secret-arn)")
        outputs = _stack_outputs(args.stack_name, args.region)
        bucket = bucket or outputs.get("SidebarBucketName")
        secret_arn = secret_arn or outputs.get("ChannelCredentialsSecretArn")
        if not bucket or not secret_arn:
            raise CliError(
                f"stack {args.stack_name} has no SidebarBucketName / ChannelCredentialsSecretArn output"
            )
    secret = boto3.client("secretsmanager", region_name=args.region).get_secret_value(SecretId=secret_arn)
    keys = publish(
        boto3.client("s3", region_name=args.region), bucket, page_config(secret.get("SecretString", ""))
    )
    print(json.dumps({"bucket": bucket, "uploaded": keys}, ensure_ascii=False), file=sys.stdout)
    return 0
