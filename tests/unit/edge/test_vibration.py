import math

import numpy as np
import pytest
from scrm_edge import signals
from scrm_edge.vibration import (
    bearing_frequencies,
    check_window,
    envelope_spectrum,
    features,
    harmonic_feature,
    velocity_mm_s,
)


def _cosine_acceleration(velocity_amplitude_mm_s, freq_hz, sample_rate_hz, seconds, phase=0.0):
    """a = dv/dt of v = A·sin(2πft + phase), built here independently of scrm_edge.signals."""
    time = np.arange(round(sample_rate_hz * seconds)) / sample_rate_hz
    omega = 2 * np.pi * freq_hz
    return velocity_amplitude_mm_s / 1000.0 * omega * np.cos(omega * time + phase)


def _rms(values):
    return float(np.sqrt(np.mean(values**2)))


@pytest.mark.parametrize(
    ("sample_rate_hz", "seconds", "freq_hz"),
    [
        (1_000.0, 1.0, 30.0),
        (1_000.0, 2.0, 449.5),
        (10_000.0, 1.0, 157.0),
        (25_600.0, 10.0, 999.9),
        (10_000.0, 3.0, 10.0),
    ],
)
def test_a_velocity_sine_on_a_bin_integrates_to_amplitude_over_root_two(sample_rate_hz, seconds, freq_hz):
    amplitude = 3.7
    accel = _cosine_acceleration(amplitude, freq_hz, sample_rate_hz, seconds, phase=0.3)
    velocity = velocity_mm_s(accel, sample_rate_hz)
    assert _rms(velocity) == pytest.approx(amplitude / math.sqrt(2), rel=1e-9)
    assert float(np.max(np.abs(velocity))) == pytest.approx(amplitude, rel=1e-3)


def test_the_signal_generators_velocity_sine_has_exactly_the_requested_rms():
    accel = signals.velocity_sine(2.8, 30.0, 25_600.0, 10.0)
    assert _rms(velocity_mm_s(accel, 25_600.0)) == pytest.approx(2.8, rel=1e-12)
    with pytest.raises(ValueError, match="not on an FFT bin"):
        signals.velocity_sine(2.8, 29.95, 10_000.0, 1.0)
    with pytest.raises(ValueError, match="outside the velocity band"):
        signals.velocity_sine(2.8, 5.0, 10_000.0, 1.0)


@pytest.mark.parametrize(
    ("sample_rate_hz", "freq_hz"),
    [(10_000.0, 5.0), (10_000.0, 1_200.0), (1_000.0, 460.0), (25_600.0, 1_001.0)],
)
def test_tones_outside_10_to_1000_hz_or_above_0_45_of_the_rate_are_not_velocity(sample_rate_hz, freq_hz):
    accel = _cosine_acceleration(5.0, freq_hz, sample_rate_hz, 1.0)
    # Below the band a tone also nudges the fitted trend (drift lives there too): a 1e-5 residue.
    assert _rms(velocity_mm_s(accel, sample_rate_hz)) < 1e-4 * 5.0 / math.sqrt(2)
    if freq_hz > 10.0:
        assert _rms(velocity_mm_s(accel, sample_rate_hz)) < 1e-9


def test_a_dc_offset_and_a_drift_in_the_acceleration_do_not_change_the_velocity():
    sample_rate_hz, seconds = 10_000.0, 2.0
    time = np.arange(round(sample_rate_hz * seconds)) / sample_rate_hz
    clean = _cosine_acceleration(2.0, 45.0, sample_rate_hz, seconds) + np.random.default_rng(3).normal(
        0, 0.2, time.size
    )
    drifting = clean + 9.81 + 0.8 * time  # gravity on the axis, a thermal drift of 0.8 m/s² per second

    for accel in (_cosine_acceleration(2.0, 45.0, sample_rate_hz, seconds), clean):
        offset = accel + 9.81 + 0.8 * time
        assert _rms(velocity_mm_s(offset, sample_rate_hz)) == pytest.approx(
            _rms(velocity_mm_s(accel, sample_rate_hz)), rel=1e-9
        )
    # Without the detrend the drift's sawtooth (the FFT sees the window as periodic) would leak into the band.
    assert features(drifting, sample_rate_hz, 30.0)["acceleration_rms_m_s2"] == pytest.approx(
        features(clean, sample_rate_hz, 30.0)["acceleration_rms_m_s2"], rel=1e-9
    )


def test_a_sine_has_crest_factor_root_two_and_kurtosis_minus_one_and_a_half():
    values = features(_cosine_acceleration(4.0, 30.0, 10_000.0, 1.0), 10_000.0, 30.0)
    assert values["crest_factor"] == pytest.approx(math.sqrt(2), rel=1e-9)
    assert values["kurtosis"] == pytest.approx(-1.5, abs=1e-9)
    amplitude_m_s2 = 4.0 / 1000 * 2 * np.pi * 30
    assert values["acceleration_peak_m_s2"] == pytest.approx(amplitude_m_s2, rel=1e-9)
    assert values["acceleration_rms_m_s2"] == pytest.approx(amplitude_m_s2 / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_noise_has_kurtosis_near_zero(seed):
    noise = np.random.default_rng(seed).normal(0.0, 1.0, 100_000)
    # The estimate's standard deviation is sqrt(24 / n) ≈ 0.015.
    assert features(noise, 10_000.0, 30.0)["kurtosis"] == pytest.approx(0.0, abs=0.1)


def test_periodic_impacts_are_impulsive():
    values = features(signals.outer_race(10_000.0, 1.0, 1797.0, 107.36, seed=4), 10_000.0, 1797.0 / 60)
    assert values["kurtosis"] > 1.0
    assert values["crest_factor"] > 4.0


def test_a_flat_window_has_no_shape_rather_than_nan():
    values = features(np.full(10_000, 9.81), 10_000.0, 30.0)
    assert values["crest_factor"] == 0.0
    assert values["kurtosis"] == 0.0
    assert values["velocity_rms_mm_s"] == 0.0
    assert all(math.isfinite(value) for value in values.values())


def test_shaft_harmonics_are_reported_as_rms_velocity_per_order():
    sample_rate_hz, shaft_hz = 10_000.0, 30.0
    accel = (
        _cosine_acceleration(3.0, shaft_hz, sample_rate_hz, 1.0)
        + _cosine_acceleration(1.0, 2 * shaft_hz, sample_rate_hz, 1.0, phase=1.0)
        + _cosine_acceleration(0.5, 0.5 * shaft_hz, sample_rate_hz, 1.0, phase=2.0)
    )
    values = features(accel, sample_rate_hz, shaft_hz)
    assert values[harmonic_feature(1.0)] == pytest.approx(3.0 / math.sqrt(2), rel=1e-9)
    assert values[harmonic_feature(2.0)] == pytest.approx(1.0 / math.sqrt(2), rel=1e-9)
    assert values["velocity_0_5x_mm_s"] == pytest.approx(0.5 / math.sqrt(2), rel=1e-9)
    assert values["velocity_3x_mm_s"] < 1e-9
    assert values["shaft_hz"] == shaft_hz
    assert {harmonic_feature(order) for order in (4, 5, 6, 7, 8, 9, 10)} <= set(values)


@pytest.mark.parametrize(("seconds", "at_least"), [(1.0, 0.88), (10.0, 0.95)])
def test_a_harmonic_between_bins_is_not_hidden_by_leakage(seconds, at_least):
    """Half a bin off, the largest bin alone holds 0.64 of the amplitude; the ±2 % energy sum recovers it."""
    sample_rate_hz = 10_000.0
    shaft_hz = 30.0 + 0.5 / seconds
    values = features(_cosine_acceleration(3.0, shaft_hz, sample_rate_hz, seconds), sample_rate_hz, shaft_hz)
    true_rms = 3.0 / math.sqrt(2)
    assert at_least * true_rms <= values["velocity_1x_mm_s"] <= true_rms * (1 + 1e-9)


def test_a_subharmonic_between_bins_is_found_where_2_percent_is_narrower_than_a_bin():
    """0.5x of 31 Hz is 15.5 Hz: ±2 % (±0.31 Hz) holds no bin of a 1 s window; ±1 bin holds two."""
    values = features(_cosine_acceleration(1.0, 15.5, 10_000.0, 1.0), 10_000.0, 31.0)
    assert 0.85 * (1.0 / math.sqrt(2)) <= values["velocity_0_5x_mm_s"] <= 1.0 / math.sqrt(2)


def test_the_6205_has_the_cwru_defect_frequencies():
    """CWRU drive-end 6205-2RS JEM SKF: 9 balls, 0.3126 in (7.94 mm) balls on a 1.537 in (39.04 mm) pitch."""
    shaft_hz = 1797 / 60
    frequencies = bearing_frequencies(shaft_hz, 9, 7.94, 39.04)
    assert frequencies["bpfo"] / shaft_hz == pytest.approx(3.5848, abs=2e-4)
    assert frequencies["bpfi"] / shaft_hz == pytest.approx(5.4152, abs=2e-4)
    assert frequencies["ftf"] / shaft_hz == pytest.approx(0.39828, abs=1e-4)
    assert 2 * frequencies["bsf"] / shaft_hz == pytest.approx(4.7135, abs=5e-4)  # CWRU lists twice the BSF
    assert frequencies["bpfo"] == pytest.approx(107.36, abs=0.01)
    assert frequencies["bpfi"] == pytest.approx(162.19, abs=0.01)


def test_bearing_frequencies_follow_the_kinematic_formulas():
    shaft_hz, balls, ball, pitch = 1797 / 60, 9, 7.938, 38.5  # the 6205 as catalogued by LGDiMaggio
    ratio = ball / pitch
    frequencies = bearing_frequencies(shaft_hz, balls, ball, pitch)
    assert frequencies["bpfo"] == pytest.approx(balls / 2 * shaft_hz * (1 - ratio), rel=1e-12)
    assert frequencies["bpfi"] == pytest.approx(balls / 2 * shaft_hz * (1 + ratio), rel=1e-12)
    assert frequencies["ftf"] == pytest.approx(shaft_hz / 2 * (1 - ratio), rel=1e-12)
    assert frequencies["bsf"] == pytest.approx(pitch / (2 * ball) * shaft_hz * (1 - ratio**2), rel=1e-12)
    assert frequencies["bpfo"] + frequencies["bpfi"] == pytest.approx(balls * shaft_hz, rel=1e-12)
    angled = bearing_frequencies(shaft_hz, balls, ball, pitch, contact_angle_deg=25.0)
    assert frequencies["bpfo"] < angled["bpfo"] < balls / 2 * shaft_hz < angled["bpfi"] < frequencies["bpfi"]
    with pytest.raises(ValueError, match="pitch_diameter"):
        bearing_frequencies(shaft_hz, balls, 40.0, 38.5)
    with pytest.raises(ValueError, match="balls"):
        bearing_frequencies(shaft_hz, 0, ball, pitch)


def test_the_envelope_spectrum_demodulates_an_amplitude_modulated_carrier():
    sample_rate_hz = 10_000.0
    time = np.arange(10_000) / sample_rate_hz
    accel = (1 + 0.5 * np.cos(2 * np.pi * 100 * time)) * np.cos(2 * np.pi * 3_000 * time)
    freqs, amplitudes = envelope_spectrum(accel, sample_rate_hz)
    assert freqs[int(np.argmax(amplitudes))] == 100.0
    assert amplitudes[100] == pytest.approx(0.5, rel=1e-3)
    # A carrier outside the band (default fs/20 .. fs/2.5 = 500-4000 Hz) is filtered out.
    outside = (1 + 0.5 * np.cos(2 * np.pi * 100 * time)) * np.cos(2 * np.pi * 4_500 * time)
    assert float(np.max(envelope_spectrum(outside, sample_rate_hz)[1])) < 1e-9
    assert envelope_spectrum(outside, sample_rate_hz, band=(4_000.0, 5_000.0))[1][100] == pytest.approx(
        0.5, rel=1e-3
    )


def test_envelope_ratios_are_reported_per_defect_frequency_only_with_bearing_geometry():
    shaft_hz = 1797 / 60
    defects = bearing_frequencies(shaft_hz, 9, 7.94, 39.04)
    accel = signals.outer_race(10_000.0, 1.0, 1797.0, defects["bpfo"], seed=1)
    without = features(accel, 10_000.0, shaft_hz)
    assert not any("envelope" in name for name in without)
    values = features(accel, 10_000.0, shaft_hz, defect_frequencies=defects)
    for name in ("ftf", "bpfo", "bpfi", "bsf"):
        assert values[f"{name}_hz"] == defects[name]
        assert values[f"{name}_envelope_ratio"] >= values[f"{name}_1x_envelope_ratio"] > 0
    assert values["bpfo_1x_envelope_ratio"] > 10 * values["bpfi_1x_envelope_ratio"]


@pytest.mark.parametrize(
    ("readings", "sample_rate_hz", "problem"),
    [
        (np.zeros(10_000), 999.0, "sample rate"),
        (np.zeros(30_000), 25_601.0, "sample rate"),
        (np.zeros(10_000), float("nan"), "sample rate"),
        (np.zeros(9_999), 10_000.0, "too short"),
        (np.r_[np.zeros(9_999), np.nan], 10_000.0, "non-finite"),
        (np.r_[np.zeros(9_999), np.inf], 10_000.0, "non-finite"),
        (np.zeros((2, 10_000)), 10_000.0, "1-D"),
    ],
)
def test_an_unusable_window_is_refused_naming_the_problem(readings, sample_rate_hz, problem):
    with pytest.raises(ValueError, match=problem):
        check_window(readings, sample_rate_hz)
    with pytest.raises(ValueError, match=problem):
        velocity_mm_s(readings, sample_rate_hz)
