"""The cloud's reading of edge health scores: validation naming fields, the zone judged by the
cloud's table, a device state that only moves forward, zone changes confirmed before they reach
the timeline, and service requests on entering C or D."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_edge.zones import ZoneTable
from scrm_sync.domain.device_health import (
    DeviceHealthReport,
    DeviceState,
    ZonePolicy,
    advance,
    cloud_zone,
    health_events,
    machine_class_error,
)

ZONES = ZoneTable.load()
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
GROUP2_RIGID_VELOCITY = {"A": 0.7, "B": 2.0, "C": 3.5, "D": 6.0}  # 1.4 / 2.8 / 4.5 mm/s boundaries


def score_doc(window: int = 0, velocity: float = 0.7, zone: str = "A", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "scrm.device_health/1",
        "device_id": "pump-0042",
        "window_start": (START + timedelta(seconds=10 * window)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "window_seconds": 10.0,
        "sample_rate_hz": 10000.0,
        "readings": 100000,
        "machine_class": "group2_rigid",
        "zone": zone,
        "score": 90,
        "features": {"velocity_rms_mm_s": velocity, "crest_factor": 3.1},
        "hints": [],
    }
    return doc | overrides


def report(window: int = 0, zone: str = "A", **overrides: Any) -> DeviceHealthReport:
    velocity = GROUP2_RIGID_VELOCITY[zone]
    return DeviceHealthReport.model_validate(score_doc(window, velocity, zone, **overrides))


def run(zones: list[str], policy: ZonePolicy | None = None) -> list[Any]:
    """Apply one window per zone in order; the results (None for an ignored window)."""
    state: DeviceState | None = None
    results = []
    for window, zone in enumerate(zones):
        result = advance(state, report(window, zone), zone, policy or ZonePolicy())  # type: ignore[arg-type]
        results.append(result)
        if result is not None:
            state = result.state
    return results


def test_a_valid_score_reads_and_keys_its_window_in_utc_milliseconds():
    parsed = DeviceHealthReport.model_validate(score_doc(window_start="2026-12-03T16:00:00+08:00"))
    assert parsed.window_key == "2026-12-03T08:00:00.000Z"
    assert parsed.velocity_rms_mm_s == 0.7


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"schema": "scrm.device_health/2"}, "schema"),
        ({"device_id": "pump 42/../x"}, "device_id"),
        ({"window_start": 1764748800}, "window_start"),
        ({"zone": "E"}, "zone"),
        ({"score": 101}, "score"),
        ({"features": {"crest_factor": 3.0}}, "features"),
        ({"features": {"velocity_rms_mm_s": float("nan")}}, "features.velocity_rms_mm_s"),
        ({"hints": [{"fault": "gremlins", "confidence": 0.5, "evidence": "x"}]}, "hints.0.fault"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_score_names_its_field(override, field):
    with pytest.raises(ValidationError) as caught:
        DeviceHealthReport.model_validate(score_doc() | override)
    assert field in {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


def test_the_cloud_judges_the_zone_by_its_own_table_and_knows_the_machine_classes():
    edge_says_a = DeviceHealthReport.model_validate(score_doc(velocity=5.0, zone="A"))
    assert cloud_zone(edge_says_a, ZONES) == "D"  # an edge with an edited table cannot hide a D
    unknown = DeviceHealthReport.model_validate(score_doc(machine_class="group9"))
    assert "group2_rigid" in (machine_class_error(unknown, ZONES) or "")
    assert machine_class_error(edge_says_a, ZONES) is None


def test_the_first_score_sets_the_zone_and_is_one_timeline_entry():
    (first,) = run(["A"])
    assert first.zone_change == (None, "A") and not first.service_needed
    (event,) = health_events(report(0, "A"), first)
    assert event.type == "interaction" and event.source == "iot"
    assert event.identifiers[0].type == "device_id" and event.identifiers[0].value == "pump-0042"
    assert event.interaction is not None and event.interaction.kind == "device_health"
    assert event.event_id == "device-health:pump-0042:2026-12-03T08:00:00.000Z"
    assert event.occurred_at == START


def test_a_zone_change_is_believed_after_three_consecutive_windows():
    results = run(["A", "C", "C", "C", "C"])
    assert [r.zone_change for r in results] == [(None, "A"), None, None, ("A", "C"), None]
    assert [r.service_needed for r in results] == [False, False, False, True, False]
    events = health_events(report(3, "C"), results[3])
    assert [e.interaction.kind for e in events if e.interaction] == ["device_health", "device_service_needed"]


def test_a_flapping_boundary_does_not_reach_the_timeline():
    results = run(["B", "C", "B", "C", "C", "B", "C", "B"])
    assert [r.zone_change for r in results if r.zone_change] == [(None, "B")]


def test_an_escalation_to_d_is_believed_at_once_and_asks_for_service_again():
    results = run(["B", "C", "C", "C", "D"])
    assert results[3].zone_change == ("B", "C") and results[3].service_needed
    assert results[4].zone_change == ("C", "D") and results[4].service_needed


def test_re_entering_the_same_service_zone_within_the_cooldown_asks_once():
    results = run(["B", *["C"] * 3, *["B"] * 3, *["C"] * 3])
    changes = [(r.zone_change, r.service_needed) for r in results if r.zone_change]
    assert changes == [((None, "B"), False), (("B", "C"), True), (("C", "B"), False), (("B", "C"), False)]
    no_cooldown = run(["B", *["C"] * 3, *["B"] * 3, *["C"] * 3], ZonePolicy(service_cooldown=timedelta(0)))
    assert sum(r.service_needed for r in no_cooldown) == 2


def test_a_repeated_or_older_window_changes_nothing():
    (first,) = run(["B"])
    again = advance(first.state, report(0, "B"), "B", ZonePolicy())
    older = advance(first.state, report(-1, "D"), "D", ZonePolicy())
    assert again is None and older is None


@settings(max_examples=200, deadline=None)
@given(
    windows=st.lists(st.tuples(st.integers(0, 40), st.sampled_from("ABCD")), min_size=1, max_size=40),
)
def test_any_delivery_order_and_duplication_ends_at_the_latest_windows_zone_when_sent_in_order(windows):
    """Whatever arrives, the state's window is the latest one seen, and a state never goes back."""
    state: DeviceState | None = None
    latest = -1
    for window, zone in windows:
        result = advance(state, report(window, zone), zone, ZonePolicy())  # type: ignore[arg-type]
        if window <= latest:
            assert result is None
            continue
        assert result is not None
        latest, state = window, result.state
        assert state.window_start == report(window, zone).window_key
        if zone == "D":
            assert state.zone == "D"  # D is believed at once
