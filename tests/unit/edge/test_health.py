import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrm_edge import signals
from scrm_edge.health import SCORE_CAPS, MachineProfile, assess, velocity_score
from scrm_edge.score import FAULTS, SCHEMA, ZONES
from scrm_edge.zones import UnknownMachineClass, ZoneTable

TABLE = ZoneTable.load()
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
PUMP = MachineProfile(device_id="pump-0042", machine_class="group2_rigid", rpm=1800)
GROUP2_RIGID = (1.4, 2.8, 4.5)


@pytest.mark.parametrize(
    ("velocity", "score"),
    [
        (0.0, 100),
        (0.7, 87),  # half way through zone A: 87.5
        (1.4, 75),  # A/B is zone A's upper limit
        (1.41, 74),
        (2.1, 62),
        (2.8, 50),
        (2.81, 49),
        (4.5, 25),
        (4.51, 24),
        (6.75, 12),
        (9.0, 0),  # twice C/D
        (50.0, 0),
    ],
)
def test_the_score_falls_linearly_through_the_zones(velocity, score):
    assert velocity_score(velocity, GROUP2_RIGID) == score


def test_the_score_caps_are_one_table():
    assert dict(SCORE_CAPS) == {
        "bearing_outer_race": 60,
        "bearing_inner_race": 60,
        "looseness": 70,
        "misalignment": 75,
        "imbalance": 80,
    }
    assert set(SCORE_CAPS) == set(FAULTS)


@settings(max_examples=60, deadline=None)
@given(
    machine_class=st.sampled_from(sorted(TABLE.classes)),
    velocities=st.lists(st.floats(0.0, 30.0, allow_nan=False), min_size=2, max_size=2),
)
def test_more_velocity_never_scores_better(machine_class, velocities):
    """A pure 1x sine, acceleration in: the score is non-increasing in its velocity and within 0..100."""
    machine = MachineProfile(device_id="fan-3", machine_class=machine_class, rpm=1800)
    lower, higher = sorted(velocities)
    scores = [
        assess(signals.velocity_sine(velocity, 30.0, 1_000.0, 1.0), 1_000.0, START, machine, TABLE).score
        for velocity in (lower, higher)
    ]
    assert all(0 <= score <= 100 for score in scores)
    assert scores[0] >= scores[1]


@given(velocities=st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=2, max_size=2))
def test_the_velocity_score_is_monotone_and_bounded(velocities):
    lower, higher = sorted(velocities)
    for boundaries in (GROUP2_RIGID, (3.5, 7.1, 11.0)):
        assert 100 >= velocity_score(lower, boundaries) >= velocity_score(higher, boundaries) >= 0


def test_a_score_serializes_to_the_wire_format_with_every_field():
    machine = MachineProfile.from_dict(
        {
            "device_id": "pump-0042",
            "machine_class": "group2_rigid",
            "rpm": 1797,
            "balls": 9,
            "ball_diameter_mm": 7.94,
            "pitch_diameter_mm": 39.04,
        }
    )
    window = signals.imbalance(10_000.0, 10.0, 1797.0, velocity_1x_mm_s=2.0)
    local_start = datetime(2026, 12, 3, 16, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))

    score = assess(window, 10_000.0, local_start, machine, TABLE)
    doc = json.loads(score.to_json())

    assert set(doc) == {
        "schema",
        "device_id",
        "window_start",
        "window_seconds",
        "sample_rate_hz",
        "readings",
        "machine_class",
        "zone",
        "score",
        "features",
        "hints",
    }
    assert doc["schema"] == SCHEMA
    assert doc["device_id"] == "pump-0042"
    assert doc["window_start"] == "2026-12-03T08:00:00.123Z"
    assert (doc["window_seconds"], doc["sample_rate_hz"], doc["readings"]) == (10.0, 10_000.0, 100_000)
    assert doc["machine_class"] == "group2_rigid"
    assert doc["zone"] in ZONES and doc["zone"] == "B"
    assert isinstance(doc["score"], int) and 50 <= doc["score"] <= 74
    for name in (
        "velocity_rms_mm_s",
        "velocity_peak_mm_s",
        "acceleration_rms_m_s2",
        "acceleration_peak_m_s2",
        "crest_factor",
        "kurtosis",
        "shaft_hz",
        "velocity_0_5x_mm_s",
        "velocity_1x_mm_s",
        "velocity_2x_mm_s",
        "velocity_3x_mm_s",
        "bpfo_envelope_ratio",
        "bpfi_envelope_ratio",
        "bsf_envelope_ratio",
        "ftf_envelope_ratio",
    ):
        assert isinstance(doc["features"][name], float) and math.isfinite(doc["features"][name])
    assert doc["hints"] and all(set(hint) == {"fault", "confidence", "evidence"} for hint in doc["hints"])
    assert [hint["fault"] for hint in doc["hints"]] == ["imbalance"]
    assert 0 <= doc["hints"][0]["confidence"] <= 1


def test_the_cloud_re_derives_the_same_zone_from_the_velocity_it_receives():
    """The wire rounds features to 6 decimals: 1.4049996 goes out as 1.405, which is zone B (1.41)."""
    score = assess(signals.velocity_sine(1.4049996, 30.0, 1_000.0, 1.0), 1_000.0, START, PUMP, TABLE)
    doc = json.loads(score.to_json())
    assert doc["features"]["velocity_rms_mm_s"] == 1.405
    assert doc["zone"] == TABLE.zone(doc["machine_class"], doc["features"]["velocity_rms_mm_s"]) == "B"


def test_a_machine_profile_is_read_from_configuration():
    profile = MachineProfile.from_dict(
        {
            "device_id": "pump-0042",
            "machine_class": "group1_flexible",
            "rpm": 1480.0,
            "balls": 9,
            "ball_diameter_mm": 7.94,
            "pitch_diameter_mm": 39.04,
            "contact_angle_deg": 0,
            "envelope_band_hz": [2_000.0, 6_000.0],
        }
    )
    assert profile.shaft_hz == pytest.approx(1480 / 60)
    assert profile.envelope_band_hz == (2_000.0, 6_000.0)
    frequencies = profile.bearing_frequencies()
    assert frequencies is not None and frequencies["bpfo"] == pytest.approx(3.5848 * 1480 / 60, rel=1e-4)
    assert MachineProfile(device_id="a", machine_class="group2_rigid", rpm=900).bearing_frequencies() is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"rpm": None}, "rpm"),
        ({"rpm": 0}, "rpm"),
        ({"rpm": "1800"}, "rpm"),
        ({"rpm": float("nan")}, "rpm"),
        ({"rpm": True}, "rpm"),
        ({"device_id": "pump 42"}, "device_id"),
        ({"machine_class": ""}, "machine_class"),
        ({"balls": 9.5}, "balls"),
        ({"balls": 0}, "balls"),
        ({"ball_diameter_mm": -7.94}, "ball_diameter_mm"),
        ({"ball_diameter_mm": 40.0}, "ball_diameter_mm"),
        ({"pitch_diameter_mm": None}, "pitch_diameter_mm missing"),
        ({"contact_angle_deg": 90}, "contact_angle_deg"),
        ({"envelope_band_hz": [4_000.0, 500.0]}, "envelope_band_hz"),
        ({"envelope_band_hz": [500.0]}, "envelope_band_hz"),
        ({"rmp": 1800}, "rmp"),
    ],
)
def test_an_invalid_machine_profile_is_refused_naming_the_field(change, named):
    doc = {
        "device_id": "pump-0042",
        "machine_class": "group2_rigid",
        "rpm": 1800,
        "balls": 9,
        "ball_diameter_mm": 7.94,
        "pitch_diameter_mm": 39.04,
    }
    doc.update(change)
    doc = {key: value for key, value in doc.items() if value is not None}
    with pytest.raises(ValueError, match=named):
        MachineProfile.from_dict(doc)


@pytest.mark.parametrize(
    ("readings", "sample_rate_hz", "problem"),
    [
        (np.r_[np.zeros(999), np.nan], 1_000.0, "non-finite"),
        (np.zeros(999), 1_000.0, "too short"),
        (np.zeros(1_000), 500.0, "sample rate"),
        (np.zeros(52_000), 26_000.0, "sample rate"),
    ],
)
def test_assess_refuses_an_unusable_window_naming_the_problem(readings, sample_rate_hz, problem):
    with pytest.raises(ValueError, match=problem):
        assess(readings, sample_rate_hz, START, PUMP, TABLE)


def test_assess_refuses_a_naive_start_an_unknown_class_and_an_envelope_band_above_nyquist():
    window = signals.healthy(10_000.0, 1.0, 1800.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        assess(window, 10_000.0, datetime(2026, 12, 3, 8, 0), PUMP, TABLE)
    with pytest.raises(UnknownMachineClass, match="group2_rigid"):
        assess(
            window, 10_000.0, START, MachineProfile(device_id="x", machine_class="class_k", rpm=1800), TABLE
        )
    high_band = MachineProfile(
        device_id="x",
        machine_class="group2_rigid",
        rpm=1800,
        balls=9,
        ball_diameter_mm=7.94,
        pitch_diameter_mm=39.04,
        envelope_band_hz=(2_000.0, 6_000.0),
    )
    with pytest.raises(ValueError, match="Nyquist"):
        assess(window, 10_000.0, START, high_band, TABLE)
    assert assess(signals.healthy(25_600.0, 1.0, 1800.0), 25_600.0, START, high_band, TABLE).zone == "A"
