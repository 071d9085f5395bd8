"""The alarms on rejected configuration documents watch the metrics the functions write: the
functions' namespace and service dimension, the names the layer derives, a 0/1 state that
holds between a rejection and the fix."""

from __future__ import annotations

import pytest
from scrm_sync.domain.config_documents import CHANNELS, RULES, ConfigDocument

from tests.unit.template.test_operations_template import TEMPLATE, alarm

FUNCTION_ENVIRONMENT = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


@pytest.mark.parametrize(
    ("name", "document"), [("RulesInvalidAlarm", RULES), ("ChannelsInvalidAlarm", CHANNELS)]
)
def test_a_rejected_document_raises_an_alarm_until_a_valid_one_is_served(name: str, document: ConfigDocument):
    properties = alarm(name)  # notifies AlarmTopic on ALARM and OK
    assert properties["Namespace"] == FUNCTION_ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
    assert properties["MetricName"] == document.invalid_metric
    assert properties["Dimensions"] == [
        {"Name": "service", "Value": FUNCTION_ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]}
    ]
    # 1 when an environment rejects a version, 0 when it serves a valid one again: any 1 alarms,
    # and no data (nothing changed) keeps the state instead of reporting a recovery
    assert (properties["Statistic"], properties["Threshold"], properties["ComparisonOperator"]) == (
        "Maximum",
        0,
        "GreaterThanThreshold",
    )
    assert properties["TreatMissingData"] == "ignore"
