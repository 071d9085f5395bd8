"""Each synthetic fault is diagnosed as itself, and only as itself, over seeds, sample rates and
window lengths; a healthy machine gets no hint."""

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from scrm_edge import signals
from scrm_edge.health import SCORE_CAPS, MachineProfile, assess
from scrm_edge.zones import ZoneTable

ZONES = ZoneTable.load()
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
RPM = 1797.0
# The CWRU test rig's drive-end 6205: BPFO 107.36 Hz, BPFI 162.19 Hz at 1797 rpm.
MOTOR = MachineProfile(
    device_id="motor-de",
    machine_class="group2_rigid",
    rpm=RPM,
    balls=9,
    ball_diameter_mm=7.94,
    pitch_diameter_mm=39.04,
)
DEFECTS = MOTOR.bearing_frequencies() or {}
CONDITIONS = [
    pytest.param(rate, seconds, seed, id=f"{rate / 1000:g}kHz-{seconds:g}s-seed{seed}")
    for rate, seconds, seed in itertools.product((10_000.0, 25_600.0), (1.0, 10.0), (0, 1, 2))
]


def _faults(score):
    return [hint.fault for hint in score.hints]


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_a_healthy_machine_is_zone_a_without_hints(rate, seconds, seed):
    score = assess(signals.healthy(rate, seconds, RPM, seed=seed), rate, START, MOTOR, ZONES)
    assert score.zone == "A"
    assert score.hints == ()
    assert score.score >= 75


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_imbalance_is_diagnosed_as_imbalance(rate, seconds, seed):
    score = assess(signals.imbalance(rate, seconds, RPM, seed=seed), rate, START, MOTOR, ZONES)
    assert _faults(score) == ["imbalance"]
    assert score.zone == "C"  # 3 mm/s at 1x on a group 2 rigid machine


@pytest.mark.parametrize(("velocity_1x_mm_s", "zone"), [(2.0, "B"), (3.5, "C"), (6.0, "D")])
def test_the_zone_of_an_imbalance_follows_its_velocity(velocity_1x_mm_s, zone):
    score = assess(
        signals.imbalance(10_000.0, 1.0, RPM, velocity_1x_mm_s=velocity_1x_mm_s),
        10_000.0,
        START,
        MOTOR,
        ZONES,
    )
    assert score.zone == zone == ZONES.zone("group2_rigid", score.features["velocity_rms_mm_s"])
    assert _faults(score) == ["imbalance"]
    assert score.hints[0].confidence > 0.9
    assert "velocity_1x_mm_s" in score.hints[0].evidence


def test_a_1x_in_zone_a_is_no_actionable_imbalance():
    score = assess(signals.imbalance(10_000.0, 1.0, RPM, velocity_1x_mm_s=1.0), 10_000.0, START, MOTOR, ZONES)
    assert score.zone == "A"
    assert score.hints == ()


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_misalignment_is_diagnosed_as_misalignment(rate, seconds, seed):
    score = assess(signals.misalignment(rate, seconds, RPM, seed=seed), rate, START, MOTOR, ZONES)
    assert _faults(score) == ["misalignment"]
    assert "velocity_2x_mm_s" in score.hints[0].evidence


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_looseness_is_diagnosed_as_looseness(rate, seconds, seed):
    score = assess(signals.looseness(rate, seconds, RPM, seed=seed), rate, START, MOTOR, ZONES)
    assert _faults(score) == ["looseness"]
    assert "velocity_0_5x_mm_s" in score.hints[0].evidence


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_an_outer_race_defect_is_found_while_the_velocity_is_still_zone_a(rate, seconds, seed):
    score = assess(
        signals.outer_race(rate, seconds, RPM, DEFECTS["bpfo"], seed=seed), rate, START, MOTOR, ZONES
    )
    assert score.zone == "A"
    assert _faults(score) == ["bearing_outer_race"]
    assert score.score == SCORE_CAPS["bearing_outer_race"]
    assert "bpfo_envelope_ratio" in score.hints[0].evidence


@pytest.mark.parametrize(("rate", "seconds", "seed"), CONDITIONS)
def test_an_inner_race_defect_is_diagnosed_as_inner_race(rate, seconds, seed):
    score = assess(
        signals.inner_race(rate, seconds, RPM, DEFECTS["bpfi"], seed=seed), rate, START, MOTOR, ZONES
    )
    assert _faults(score) == ["bearing_inner_race"]
    assert "bpfi_envelope_ratio" in score.hints[0].evidence


def test_an_outer_race_defect_is_not_mistaken_for_the_inner_race_through_a_shared_harmonic():
    """3 × BPFO (322.1 Hz) lies within ±2 % of 2 × BPFI (324.4 Hz) on the 6205."""
    score = assess(signals.outer_race(10_000.0, 10.0, RPM, DEFECTS["bpfo"]), 10_000.0, START, MOTOR, ZONES)
    assert score.features["bpfi_envelope_ratio"] > 20  # the coincidence is real ...
    assert score.features["bpfi_1x_envelope_ratio"] < 8
    assert _faults(score) == ["bearing_outer_race"]  # ... and does not make an inner-race hint


def test_a_bearing_defect_is_only_diagnosed_when_the_bearing_geometry_is_configured():
    without_geometry = MachineProfile(device_id="motor-de", machine_class="group2_rigid", rpm=RPM)
    window = signals.outer_race(10_000.0, 1.0, RPM, DEFECTS["bpfo"])
    score = assess(window, 10_000.0, START, without_geometry, ZONES)
    assert score.hints == ()
    assert "bpfo_envelope_ratio" not in score.features


def test_a_smooth_modulation_at_bpfo_is_no_bearing_defect():
    """An envelope line without impacts (a carrier modulated sinusoidally at BPFO): not impulsive, no hint."""
    rate = 10_000.0
    time = np.arange(100_000) / rate
    carrier = (1 + 0.5 * np.cos(2 * np.pi * DEFECTS["bpfo"] * time)) * np.cos(2 * np.pi * 3_000 * time)
    window = carrier + signals.healthy(rate, 10.0, RPM)
    score = assess(window, rate, START, MOTOR, ZONES)
    assert score.features["bpfo_envelope_ratio"] > 100
    assert score.features["kurtosis"] < 1 and score.features["crest_factor"] < 4
    assert score.features["envelope_band_kurtosis"] < 1
    assert score.hints == ()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_impacts_masked_by_a_strong_1x_are_still_impulsive_in_the_envelope_band(seed):
    window = signals.imbalance(10_000.0, 1.0, RPM, velocity_1x_mm_s=3.0, seed=seed) + signals.outer_race(
        10_000.0, 1.0, RPM, DEFECTS["bpfo"], velocity_1x_mm_s=0.0, seed=seed
    )
    score = assess(window, 10_000.0, START, MOTOR, ZONES)
    assert score.features["kurtosis"] < 1 and score.features["crest_factor"] < 4  # masked broadband ...
    assert score.features["envelope_band_kurtosis"] > 1  # ... but not in the resonance band
    assert sorted(_faults(score)) == ["bearing_outer_race", "imbalance"]


def test_hints_cap_the_score_and_the_lowest_cap_wins():
    imbalance = signals.imbalance(10_000.0, 1.0, RPM, velocity_1x_mm_s=1.45, seed=1)
    defect = signals.outer_race(10_000.0, 1.0, RPM, DEFECTS["bpfo"], velocity_1x_mm_s=0.0, seed=1)
    score = assess(imbalance + defect, 10_000.0, START, MOTOR, ZONES)
    assert score.zone == "B"
    assert sorted(_faults(score)) == ["bearing_outer_race", "imbalance"]
    assert score.score == 60


def test_looseness_caps_a_score_at_the_bottom_of_zone_b_at_70():
    score = assess(signals.looseness(10_000.0, 1.0, RPM, velocity_1x_mm_s=1.1), 10_000.0, START, MOTOR, ZONES)
    assert score.zone == "B"
    assert score.features["velocity_rms_mm_s"] < 1.6  # would score 71 or more
    assert _faults(score) == ["looseness"]
    assert score.score == 70


def test_a_hint_never_raises_a_score():
    window = signals.imbalance(10_000.0, 1.0, RPM, velocity_1x_mm_s=5.0) + signals.outer_race(
        10_000.0, 1.0, RPM, DEFECTS["bpfo"], velocity_1x_mm_s=0.0
    )
    score = assess(window, 10_000.0, START, MOTOR, ZONES)
    assert "bearing_outer_race" in _faults(score)
    assert score.zone == "D"
    assert score.score < 25
