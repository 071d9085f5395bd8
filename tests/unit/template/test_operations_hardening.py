"""Operations hardening in template.yaml (as CloudFormation receives it): every function logs into
a log group of its own with LogRetentionDays, the HTTP API writes an access log without query
strings, bodies or keys, concurrency ceilings are parameters, and every table has PITR; and
`make lint`'s checkov gate refuses a skipped check without its reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from scrm_local import checkov_gate

from tests.unit.template.sam import ROOT, TEMPLATE

RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def test_every_function_logs_into_its_own_group_with_the_retention_parameter(deployed):
    functions = {n: r for n, r in deployed["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) >= 17
    groups = set()
    for name, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        resource = deployed["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup", name
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == len(functions)  # one each


def test_the_http_api_access_log_names_the_caller_but_no_query_string_body_or_key(deployed):
    [stage] = [r for r in deployed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    record = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", settings["Format"]))
    variables = re.findall(r"\$context\.([A-Za-z.]+)", settings["Format"])
    assert {"requestId", "requestTime", "path", "status", "authorizer.caller"} <= set(variables)
    assert not [v for v in variables if re.search(r"query|body|header|apikey|requestOverride", v, re.I)]
    assert record["caller"] == "x"
    group = RESOURCES["HttpApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_concurrency_ceilings_are_parameters():
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                ceiling = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
                assert isinstance(ceiling, int) or "Ref" in ceiling, name
    assert RESOURCES["EnrichmentFunction"]["Properties"]["Events"]["EnrichmentRequests"]["Properties"][
        "ScalingConfig"
    ]["MaximumConcurrency"] == {"Ref": "EnrichmentMaximumConcurrency"}
    reserved = RESOURCES["WebhookFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": [
            "ReserveWebhookConcurrency",
            {"Ref": "WebhookReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert TEMPLATE["Parameters"]["WebhookReservedConcurrency"]["Default"] == 0  # safe on a new account
    # the inventory priority lane: a reservation of its own, so profile floods cannot starve it
    assert RESOURCES["InventoryFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveInventoryConcurrency",
            {"Ref": "InventoryReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert TEMPLATE["Parameters"]["InventoryReservedConcurrency"]["Default"] == 0


def test_every_table_has_point_in_time_recovery_in_every_stage():
    tables = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert tables
    for name, table in tables.items():
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }, name


# --- the checkov gate -------------------------------------------------------------------------------------
def test_every_skipped_check_has_its_reason():
    skips = checkov_gate.justified_skips()
    assert skips and all(check.startswith("CKV_") for check in skips)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("CKV_AWS_27:\n", "needs a one-line reason"),
        ('CKV_AWS_27: "ok"\n', "needs a one-line reason"),
        ('NOT_A_CHECK: "a reason long enough to count as one"\n', "not a checkov check id"),
    ],
)
def test_a_skip_without_its_reason_is_refused(tmp_path: Path, text: str, problem: str):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(text)
    with pytest.raises(checkov_gate.UnjustifiedSkip, match=problem):
        checkov_gate.justified_skips(baseline)
    assert checkov_gate.main(["--baseline", str(baseline), "--checkov", "/nonexistent"]) == 1


def test_the_scan_runs_offline_and_skips_exactly_the_baseline():
    argv = checkov_gate.command("checkov", {"CKV_AWS_27": "r", "CKV_AWS_18": "r"})
    assert "--skip-download" in argv and argv[argv.index("--skip-check") + 1] == "CKV_AWS_18,CKV_AWS_27"
    assert argv[argv.index("--framework") + 1] == "cloudformation"


needs_checkov = pytest.mark.skipif(
    not CHECKOV.exists(), reason="`make lint` installs checkov into .venv-checkov"
)


@needs_checkov
def test_the_template_passes_the_gate_and_fails_it_without_one_justification(tmp_path: Path):
    assert checkov_gate.main(["--checkov", str(CHECKOV)]) == 0
    skips = checkov_gate.justified_skips()
    without = tmp_path / "baseline.yaml"
    without.write_text("".join(f"{c}: {json.dumps(r)}\n" for c, r in skips.items() if c != "CKV_AWS_27"))
    assert checkov_gate.main(["--checkov", str(CHECKOV), "--baseline", str(without)]) != 0
