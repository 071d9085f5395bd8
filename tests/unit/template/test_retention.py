"""The README's retention table is what the template enforces: each data class's parameter, its
default, and the TTL attribute or lifecycle rule that removes it."""

from __future__ import annotations

import re

from tests.unit.template.sam import ROOT, TEMPLATE

RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def retention_rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| Data class | Where |") :].split("\n\n", 1)[0].splitlines()[2:]
    rows = {}
    for line in table:
        data_class, where, kept, parameter, removed_by = [cell.strip() for cell in line.strip("|").split("|")]
        rows[data_class] = {"where": where, "kept": kept, "parameter": parameter, "removed_by": removed_by}
    return rows


def ttl_attribute(table: str) -> str:
    spec = RESOURCES[table]["Properties"]["TimeToLiveSpecification"]
    assert spec["Enabled"] is True
    return str(spec["AttributeName"])


def lifecycle_rule(bucket: str, rule_id: str) -> dict:
    rules = RESOURCES[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == rule_id]
    assert rule["Status"] == "Enabled"
    return rule


def test_every_data_class_of_the_issue_has_a_row() -> None:
    assert set(retention_rows()) == {
        "interactions",
        "raw landing",
        "quarantine",
        "archive",
        "audit",
        "access log",
        "device health scores",
    }


def test_each_row_names_the_templates_parameter_and_default() -> None:
    for data_class, row in retention_rows().items():
        if row["parameter"] == "none":
            continue
        parameter = row["parameter"].strip("`")
        days = re.fullmatch(r"(\d+) days", row["kept"])
        assert days, (data_class, row["kept"])
        assert PARAMETERS[parameter]["Default"] == int(days.group(1)), data_class


def test_interactions_expire_by_the_timeline_tables_ttl() -> None:
    row = retention_rows()["interactions"]
    assert f"`{ttl_attribute('TimelineTable')}`" in row["removed_by"]
    # the sync functions stamp that attribute from the same parameter
    for name in ("ProfileSyncFunction", "WebhookSyncFunction", "CdcFunction"):
        variables = RESOURCES[name]["Properties"]["Environment"]["Variables"]
        assert variables["INTERACTION_RETENTION_DAYS"] == {"Ref": "InteractionRetentionDays"}


def test_landed_requests_and_quarantine_expire_by_lifecycle_rules() -> None:
    rows = retention_rows()
    for data_class, rule_id, prefix, parameter in (
        ("raw landing", "raw-landing-retention", "raw/", "RawLandingRetentionDays"),
        ("quarantine", "quarantine-retention", "quarantine/", "QuarantineRetentionDays"),
    ):
        rule = lifecycle_rule("LandingBucket", rule_id)
        assert rule["Prefix"] == prefix and f"`{prefix}`" in rows[data_class]["where"]
        assert rule["ExpirationInDays"] == {"Ref": parameter}
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1  # versioned: the data goes too
        assert f"`{rule_id}`" in rows[data_class]["removed_by"]


def test_archived_orders_and_their_stubs_expire_together() -> None:
    row = retention_rows()["archive"]
    for rule_id, prefix in (("orders-to-colder-storage", "orders/"), ("manifests-retention", "manifests/")):
        rule = lifecycle_rule("ArchiveBucket", rule_id)
        assert rule["Prefix"] == prefix and rule["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}
        assert f"`{rule_id}`" in row["removed_by"]
    assert f"`{ttl_attribute('OrdersTable')}`" in row["removed_by"]
    variables = RESOURCES["ArchiveOrdersFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["ARCHIVE_RETENTION_DAYS"] == {"Ref": "ArchiveRetentionDays"}
    # the lifecycle moves objects to GLACIER_IR first: expiry must come after every transition
    transitions = lifecycle_rule("ArchiveBucket", "orders-to-colder-storage")["Transitions"]
    assert PARAMETERS["ArchiveRetentionDays"]["MinValue"] > max(t["TransitionInDays"] for t in transitions)


def test_audit_content_expires_by_the_daily_sweep_and_entries_never_do() -> None:
    # deleting entries would break the hash chain: the sweep removes their content instead
    assert "TimeToLiveSpecification" not in RESOURCES["AuditTable"]["Properties"]
    row = retention_rows()["audit"]
    assert "`AuditRetentionFunction`" in row["removed_by"]
    function = RESOURCES["AuditRetentionFunction"]["Properties"]
    assert function["Environment"]["Variables"]["AUDIT_RETENTION_DAYS"] == {"Ref": "AuditRetentionDays"}
    assert function["Events"]["Sweep"]["Properties"]["ScheduleExpression"] == "rate(1 day)"


def test_the_access_log_expires_by_its_tables_ttl() -> None:
    row = retention_rows()["access log"]
    assert f"`{ttl_attribute('AccessLogTable')}`" in row["removed_by"]
    for name in ("ProfileApiFunction", "SidebarApiFunction"):
        variables = RESOURCES[name]["Properties"]["Environment"]["Variables"]
        assert variables["ACCESS_LOG_RETENTION_DAYS"] == {"Ref": "AccessLogRetentionDays"}


def test_device_health_scores_expire_by_the_device_health_tables_ttl() -> None:
    row = retention_rows()["device health scores"]
    assert f"`{ttl_attribute('DeviceHealthTable')}`" in row["removed_by"]
