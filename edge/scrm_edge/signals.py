"""Synthetic vibration windows: acceleration in m/s² for a known machine condition.

Product code, not test code: the tests, the device simulator and the benchmark all draw their
windows from here, so a fault the simulator shows is a fault the tests prove is detected. No public
data set ships sample signals usable offline (the CWRU/Paderborn packages download at run time), so
the signals are synthesized from the textbook fault signatures:

- shaft-rate faults are velocity tones at orders of the shaft speed (imbalance: 1x; misalignment: 1x
  and a strong 2x; looseness: a long series of harmonics and a 0.5x subharmonic);
- a localized bearing defect is a train of impacts at its defect frequency, each ringing a structural
  resonance at 3-5 kHz (the carrier envelope analysis demodulates); an inner-race defect rotates with
  the shaft through the load zone, so its impacts are amplitude-modulated at the shaft rate.
  Impacts repeat at the kinematic frequency less a slip (1 % by default): rolling elements slip,
  which is why detection looks within ±2 % of the kinematic frequency.

Every noisy signal takes `seed` (an int or a numpy Generator) so a window is reproducible. Tone
phases are random too, so the analysis cannot rely on a lucky phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from scrm_edge.vibration import USABLE_FRACTION_OF_RATE, velocity_band

Seed = int | np.random.Generator

MIN_BEARING_RATE_HZ = 10_000.0  # a 3-5 kHz resonance needs the envelope band fs/20..fs/2.5 to reach it


def velocity_sine(
    velocity_rms_mm_s: float, freq_hz: float, sample_rate_hz: float, seconds: float
) -> NDArray[np.float64]:
    """Acceleration whose 10-1000 Hz velocity is a sine of exactly `velocity_rms_mm_s` r.m.s.

    v(t) = √2·V·sin(2πft), so a(t) = dv/dt = √2·V·2πf·cos(2πft), analytically. `freq_hz` must lie
    on an exact FFT bin of the window (freq × seconds an integer) inside the velocity band, so the
    frequency-domain integration returns exactly V.
    """
    n = _readings(sample_rate_hz, seconds)
    cycles = freq_hz * n / sample_rate_hz
    if abs(cycles - round(cycles)) > 1e-9 or round(cycles) == 0:
        raise ValueError(
            f"freq_hz={freq_hz!r} is not on an FFT bin of a {n / sample_rate_hz:g} s window "
            "(freq_hz × seconds must be a whole number of cycles)"
        )
    bottom, top = velocity_band(sample_rate_hz)
    if not bottom <= freq_hz <= top:
        raise ValueError(f"freq_hz={freq_hz!r} is outside the velocity band {bottom:g}-{top:g} Hz")
    if not (math.isfinite(velocity_rms_mm_s) and velocity_rms_mm_s >= 0):
        raise ValueError(f"velocity_rms_mm_s must be a finite number >= 0, got {velocity_rms_mm_s!r}")
    # The phase as (k·i mod n)/n keeps the cosine's argument small, so the sine is periodic to the last bit.
    phase = 2 * np.pi * ((round(cycles) * np.arange(n)) % n) / n
    amplitude_m_s = math.sqrt(2) * velocity_rms_mm_s / 1000.0
    return amplitude_m_s * 2 * np.pi * freq_hz * np.cos(phase)


def healthy(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    *,
    velocity_1x_mm_s: float = 0.5,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """A sound machine: a small residual imbalance (1x), a trace of 2x, broadband noise."""
    rng = np.random.default_rng(seed)
    orders = {1.0: velocity_1x_mm_s, 2.0: 0.3 * velocity_1x_mm_s}
    return _shaft_tones(sample_rate_hz, seconds, rpm, orders, rng) + _noise(
        sample_rate_hz, seconds, noise_m_s2, rng
    )


def imbalance(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    *,
    velocity_1x_mm_s: float = 3.0,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """Mass imbalance: a dominant, clean 1x (the centrifugal force rotates once per revolution)."""
    rng = np.random.default_rng(seed)
    orders = {1.0: velocity_1x_mm_s, 2.0: 0.1 * velocity_1x_mm_s}
    return _shaft_tones(sample_rate_hz, seconds, rpm, orders, rng) + _noise(
        sample_rate_hz, seconds, noise_m_s2, rng
    )


def misalignment(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    *,
    velocity_1x_mm_s: float = 2.0,
    ratio_2x: float = 0.9,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """Shaft misalignment: 1x with a strong 2x (`ratio_2x` × the 1x) and a little 3x."""
    rng = np.random.default_rng(seed)
    orders = {1.0: velocity_1x_mm_s, 2.0: ratio_2x * velocity_1x_mm_s, 3.0: 0.15 * velocity_1x_mm_s}
    return _shaft_tones(sample_rate_hz, seconds, rpm, orders, rng) + _noise(
        sample_rate_hz, seconds, noise_m_s2, rng
    )


def looseness(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    *,
    velocity_1x_mm_s: float = 2.0,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """Mechanical looseness: a 0.5x subharmonic and a long series of harmonics (up to 8x) falling slowly."""
    rng = np.random.default_rng(seed)
    relative = {0.5: 0.4, 1.0: 1.0, 2.0: 0.35, 3.0: 0.4, 4.0: 0.35, 5.0: 0.3, 6.0: 0.25, 7.0: 0.2, 8.0: 0.15}
    orders = {order: share * velocity_1x_mm_s for order, share in relative.items()}
    return _shaft_tones(sample_rate_hz, seconds, rpm, orders, rng) + _noise(
        sample_rate_hz, seconds, noise_m_s2, rng
    )


def outer_race(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    bpfo_hz: float,
    *,
    impact_m_s2: float = 1.0,
    resonance_hz: float = 3500.0,
    slip: float = 0.01,
    velocity_1x_mm_s: float = 0.5,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """An outer-race defect: impacts at BPFO (less `slip`) ringing a `resonance_hz` structural mode.

    The outer race is fixed, so every impact has the same strength (±10 % scatter). Needs a sample
    rate of at least 10 kHz: the 3-5 kHz resonance must fit inside the envelope band fs/20..fs/2.5.
    """
    rng = np.random.default_rng(seed)
    impacts = _impact_times(sample_rate_hz, seconds, bpfo_hz * (1 - slip), rng)
    strengths = impact_m_s2 * rng.uniform(0.9, 1.1, impacts.size)
    ringing = _ringing(sample_rate_hz, seconds, impacts, strengths, resonance_hz)
    shaft = _shaft_tones(sample_rate_hz, seconds, rpm, {1.0: velocity_1x_mm_s}, rng)
    return ringing + shaft + _noise(sample_rate_hz, seconds, noise_m_s2, rng)


def inner_race(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    bpfi_hz: float,
    *,
    impact_m_s2: float = 1.0,
    modulation_depth: float = 0.8,
    resonance_hz: float = 3500.0,
    slip: float = 0.01,
    velocity_1x_mm_s: float = 0.5,
    noise_m_s2: float = 0.1,
    seed: Seed = 0,
) -> NDArray[np.float64]:
    """An inner-race defect: impacts at BPFI (less `slip`), amplitude-modulated at the shaft rate.

    The defect turns with the shaft through the load zone, so the impact strength follows
    1 + depth·cos(2π·fr·t) (peak `impact_m_s2`): the envelope spectrum shows BPFI with sidebands at ±fr.
    """
    rng = np.random.default_rng(seed)
    impacts = _impact_times(sample_rate_hz, seconds, bpfi_hz * (1 - slip), rng)
    load_zone = 1 + modulation_depth * np.cos(2 * np.pi * rpm / 60 * impacts + rng.uniform(0, 2 * np.pi))
    strengths = impact_m_s2 * load_zone / (1 + modulation_depth)
    ringing = _ringing(sample_rate_hz, seconds, impacts, strengths, resonance_hz)
    shaft = _shaft_tones(sample_rate_hz, seconds, rpm, {1.0: velocity_1x_mm_s}, rng)
    return ringing + shaft + _noise(sample_rate_hz, seconds, noise_m_s2, rng)


def _readings(sample_rate_hz: float, seconds: float) -> int:
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0 and math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"need a positive sample rate and duration, got {sample_rate_hz!r} Hz, {seconds!r} s"
        )
    return round(sample_rate_hz * seconds)


def _shaft_tones(
    sample_rate_hz: float,
    seconds: float,
    rpm: float,
    velocity_by_order: Mapping[float, float],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Acceleration of velocity tones (r.m.s. mm/s) at orders of the shaft speed, random phases."""
    if not (math.isfinite(rpm) and rpm > 0):
        raise ValueError(f"rpm must be a positive number, got {rpm!r}")
    time = np.arange(_readings(sample_rate_hz, seconds)) / sample_rate_hz
    accel = np.zeros_like(time)
    for order, velocity_mm_s in velocity_by_order.items():
        omega = 2 * np.pi * order * rpm / 60
        accel += (
            math.sqrt(2) * velocity_mm_s / 1000.0 * omega * np.cos(omega * time + rng.uniform(0, 2 * np.pi))
        )
    return accel


def _noise(
    sample_rate_hz: float, seconds: float, rms_m_s2: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    return rng.normal(0.0, rms_m_s2, _readings(sample_rate_hz, seconds))


def _impact_times(
    sample_rate_hz: float, seconds: float, rate_hz: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"defect frequency must be a positive number, got {rate_hz!r}")
    if sample_rate_hz < MIN_BEARING_RATE_HZ:
        raise ValueError(
            f"bearing defect signals need a sample rate of at least {MIN_BEARING_RATE_HZ:,.0f} Hz "
            f"(a 3-5 kHz resonance inside the envelope band), got {sample_rate_hz:g}"
        )
    first = rng.uniform(0, 1 / rate_hz)
    return first + np.arange(math.ceil(seconds * rate_hz)) / rate_hz


def _ringing(
    sample_rate_hz: float,
    seconds: float,
    impacts: NDArray[np.float64],
    strengths: NDArray[np.float64],
    resonance_hz: float,
    damping_ratio: float = 0.05,
) -> NDArray[np.float64]:
    """Each impact rings a single-degree-of-freedom mode: a·e^(-ζωt)·sin(ωd·t), peak ≈ a."""
    if not 0 < resonance_hz < USABLE_FRACTION_OF_RATE * sample_rate_hz:
        raise ValueError(
            f"resonance_hz={resonance_hz!r} must be below {USABLE_FRACTION_OF_RATE:g} × the sample rate"
        )
    n = _readings(sample_rate_hz, seconds)
    omega = 2 * np.pi * resonance_hz
    decay_s = math.log(1000) / (damping_ratio * omega)  # rung down to 0.1 %
    time = np.arange(math.ceil(decay_s * sample_rate_hz)) / sample_rate_hz
    response = np.exp(-damping_ratio * omega * time) * np.sin(omega * math.sqrt(1 - damping_ratio**2) * time)
    train = np.zeros(n)
    index = np.round(impacts * sample_rate_hz).astype(np.int64)
    inside = index < n
    np.add.at(train, index[inside], strengths[inside])
    return np.convolve(train, response)[:n]
