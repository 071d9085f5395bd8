"""`scrm sidebar publish` against moto's S3 and Secrets Manager: every page file under sidebar/
with its content type and caching, and a config.json naming the sidebar app from the secret."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from scrm_local.cli import main
from scrm_local.sidebar_commands import PAGE_DIR, page_files


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="sidebar-bucket")
        yield s3, boto3.client("secretsmanager")


def secret(client, document) -> str:
    return client.create_secret(Name="channels", SecretString=json.dumps(document))["ARN"]


def test_the_page_and_its_config_are_published(aws, capsys):
    s3, secrets = aws
    arn = secret(secrets, {"wecom_sidebar": {"corp_id": "wwCORP", "agent_id": 1000002, "secret": "x"}})
    assert main(["sidebar", "publish", "--bucket", "sidebar-bucket", "--secret-arn", arn]) == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="sidebar-bucket")["Contents"]}
    expected = {"sidebar/" + p.relative_to(PAGE_DIR).as_posix() for p in page_files()} | {
        "sidebar/config.json"
    }
    assert keys == expected and "sidebar/index.html" in keys
    config = s3.get_object(Bucket="sidebar-bucket", Key="sidebar/config.json")
    # the app's secret never reaches the page
    assert json.loads(config["Body"].read()) == {"api_base": "", "corp_id": "wwCORP", "agent_id": "1000002"}
    index = s3.head_object(Bucket="sidebar-bucket", Key="sidebar/index.html")
    assert index["ContentType"] == "text/html; charset=utf-8" and index["CacheControl"] == "no-cache"
    script = next(k for k in keys if k.endswith(".js"))
    assert s3.head_object(Bucket="sidebar-bucket", Key=script)["ContentType"].endswith(
        "javascript; charset=utf-8"
    )
    assert (
        "secret" not in config["ResponseMetadata"]
        and "x"
        not in json.loads(
            s3.get_object(Bucket="sidebar-bucket", Key="sidebar/config.json")["Body"].read()
        ).values()
    )  # the app secret never reaches the page
    assert json.loads(capsys.readouterr().out)["bucket"] == "sidebar-bucket"


def test_without_a_sidebar_entry_nothing_is_published_and_the_reason_is_given(aws, capsys):
    s3, secrets = aws
    arn = secret(secrets, {"wecom": {"corp_id": "wwCORP"}})
    assert main(["sidebar", "publish", "--bucket", "sidebar-bucket", "--secret-arn", arn]) == 1
    assert "wecom_sidebar" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket="sidebar-bucket")
