"""Signal processing on one window of acceleration readings: velocity, features, envelope spectrum.

numpy only (no scipy), so the same code runs on an edge gateway and in Lambda. A window is a 1-D
array of acceleration in m/s², sampled at 1,000-25,600 Hz, at least 1 s long.

- Velocity: integration in the frequency domain (rFFT, divide by j·2πf, zero outside 10-1000 Hz,
  inverse rFFT), the broadband velocity ISO 10816-3 zones are defined on. For a sine exactly on an
  FFT bin the result is exact, so zone-boundary tests are exact.
- Features: r.m.s./peak velocity and acceleration, crest factor, excess kurtosis, shaft harmonics,
  and envelope-spectrum ratios at the bearing defect frequencies. Feature set and thresholds after
  LGDiMaggio/claude-stwinbox-diagnostics (mcp-servers/vibration-analysis-mcp: fault_detection.py,
  envelope.py, bearing_freqs.py), with the scipy Butterworth/Hilbert steps done by FFT masking.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

MIN_SAMPLE_RATE_HZ = 1_000.0
MAX_SAMPLE_RATE_HZ = 25_600.0
MIN_WINDOW_SECONDS = 1.0
VELOCITY_BAND_HZ = (10.0, 1000.0)  # ISO 10816-3 broadband velocity
# Anti-alias filters roll off before Nyquist, so the velocity band stops at 0.45 × the sample rate
# when 1000 Hz is above that (a 1 kHz sensor measures 10-450 Hz).
USABLE_FRACTION_OF_RATE = 0.45
# A peak is looked for within ±2 % of its nominal frequency (rpm tolerance, bearing slip of 1-2 %),
# and never narrower than ±1 FFT bin, so a frequency between two bins still finds both.
FREQUENCY_TOLERANCE = 0.02
# Shaft-speed orders reported as harmonic velocities: 0.5x (a looseness/rub subharmonic), 1x-10x.
HARMONIC_ORDERS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
DEFECT_NAMES = ("ftf", "bpfo", "bpfi", "bsf")


def check_window(accel: ArrayLike, sample_rate_hz: float) -> NDArray[np.float64]:
    """The readings as a float64 array; ValueError naming the problem if the window is unusable."""
    rate = float(sample_rate_hz)
    if not (math.isfinite(rate) and MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ):
        raise ValueError(
            f"sample rate must be {MIN_SAMPLE_RATE_HZ:,.0f}-{MAX_SAMPLE_RATE_HZ:,.0f} Hz, "
            f"got {sample_rate_hz!r}"
        )
    readings = np.asarray(accel, dtype=np.float64)
    if readings.ndim != 1:
        raise ValueError(f"readings must be a 1-D array of acceleration, got shape {readings.shape}")
    if readings.size < MIN_WINDOW_SECONDS * rate:
        raise ValueError(
            f"window too short: {readings.size} readings at {rate:g} Hz is {readings.size / rate:.3f} s, "
            f"at least {MIN_WINDOW_SECONDS:g} s is needed"
        )
    if not np.all(np.isfinite(readings)):
        bad = int(np.count_nonzero(~np.isfinite(readings)))
        raise ValueError(f"readings hold {bad} non-finite values (NaN or infinity)")
    return readings


def velocity_band(sample_rate_hz: float, band: tuple[float, float] = VELOCITY_BAND_HZ) -> tuple[float, float]:
    """The band actually integrated: the upper edge capped at 0.45 × the sample rate."""
    low, high = float(band[0]), min(float(band[1]), USABLE_FRACTION_OF_RATE * sample_rate_hz)
    if not 0 < low < high:
        raise ValueError(f"velocity band {band} is empty at {sample_rate_hz:g} Hz")
    return low, high


def velocity_mm_s(
    accel: ArrayLike, sample_rate_hz: float, band: tuple[float, float] = VELOCITY_BAND_HZ
) -> NDArray[np.float64]:
    """Velocity in mm/s, band-limited to `band` (default 10-1000 Hz), from acceleration in m/s².

    De-mean and linear detrend, rFFT, divide by j·2πf inside the band and zero outside it (which
    also removes DC and drift), inverse rFFT.
    """
    readings = check_window(accel, sample_rate_hz)
    low, high = velocity_band(sample_rate_hz, band)
    _, spectrum, freqs = _detrended(readings, sample_rate_hz, below_hz=low)
    return np.fft.irfft(_integrated(spectrum, freqs, (low, high)), readings.size) * 1000.0


def bearing_frequencies(
    shaft_hz: float,
    balls: int,
    ball_diameter: float,
    pitch_diameter: float,
    contact_angle_deg: float = 0.0,
) -> dict[str, float]:
    """Kinematic bearing defect frequencies in Hz: ftf, bpfo, bpfi, bsf.

    The standard formulas (rolling without slip; e.g. LGDiMaggio's bearing_freqs.py), with
    r = d/D·cos(α): FTF = fr/2·(1 - r), BPFO = n/2·fr·(1 - r), BPFI = n/2·fr·(1 + r),
    BSF = D/(2d)·fr·(1 - r²). Diameters in any one unit. The CWRU test rig's drive-end 6205
    (n=9, d=0.3126 in = 7.94 mm, D=1.537 in = 39.04 mm) gives BPFO = 3.5848·fr and
    BPFI = 5.4152·fr, the multipliers CWRU publishes; the 38.5 mm pitch diameter LGDiMaggio's
    catalogue gives the 6205 yields 3.5722·fr and 5.4278·fr instead.
    """
    if not (math.isfinite(shaft_hz) and shaft_hz > 0):
        raise ValueError(f"shaft_hz must be a positive number, got {shaft_hz!r}")
    if isinstance(balls, bool) or not isinstance(balls, int | np.integer) or balls < 1:
        raise ValueError(f"balls must be a positive integer, got {balls!r}")
    if not (0 < ball_diameter < pitch_diameter):
        raise ValueError(
            f"need 0 < ball_diameter < pitch_diameter, got ball_diameter={ball_diameter!r}, "
            f"pitch_diameter={pitch_diameter!r}"
        )
    if not (0 <= contact_angle_deg < 90):
        raise ValueError(f"contact_angle_deg must be 0-90 (exclusive), got {contact_angle_deg!r}")
    ratio = ball_diameter / pitch_diameter * math.cos(math.radians(contact_angle_deg))
    return {
        "ftf": shaft_hz / 2 * (1 - ratio),
        "bpfo": balls / 2 * shaft_hz * (1 - ratio),
        "bpfi": balls / 2 * shaft_hz * (1 + ratio),
        "bsf": pitch_diameter / (2 * ball_diameter) * shaft_hz * (1 - ratio**2),
    }


def default_envelope_band(sample_rate_hz: float) -> tuple[float, float]:
    """fs/20 .. fs/2.5 (LGDiMaggio envelope.py's default): above the shaft harmonics, below Nyquist."""
    return sample_rate_hz / 20, sample_rate_hz / 2.5


def envelope_spectrum(
    accel: ArrayLike, sample_rate_hz: float, band: tuple[float, float] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(frequencies in Hz, envelope amplitude in m/s²) of the window.

    Band-pass by FFT masking (default fs/20 .. fs/2.5) -> analytic signal by FFT (Hilbert: negative
    frequencies zeroed, positive doubled) -> magnitude -> de-mean -> Hann window -> rFFT.
    """
    readings = check_window(accel, sample_rate_hz)
    _, spectrum, freqs = _detrended(readings, sample_rate_hz, below_hz=VELOCITY_BAND_HZ[0])
    band = _checked_envelope_band(band, sample_rate_hz)
    return freqs, _envelope(spectrum, freqs, band, readings.size)[1]


def features(
    accel: ArrayLike,
    sample_rate_hz: float,
    shaft_hz: float,
    *,
    band: tuple[float, float] = VELOCITY_BAND_HZ,
    defect_frequencies: Mapping[str, float] | None = None,
    envelope_band: tuple[float, float] | None = None,
) -> dict[str, float]:
    """The window's features, each name carrying its unit.

    velocity_rms_mm_s, velocity_peak_mm_s   broadband velocity (`band`, default 10-1000 Hz)
    acceleration_rms_m_s2, acceleration_peak_m_s2   de-meaned, detrended acceleration
    crest_factor      acceleration peak / r.m.s. (a sine √2; healthy below ~4)
    kurtosis          excess (Fisher) kurtosis of the acceleration (Gaussian 0, sine -1.5; >1 impulsive)
    shaft_hz          shaft speed
    velocity_<k>x_mm_s   r.m.s. velocity at 0.5x, 1x .. 10x shaft speed: the energy of the bins
                      within ±2 % (at least ±1 bin) of the order, summed so leakage does not hide it
    and, when `defect_frequencies` (bearing_frequencies()) is given: envelope_band_kurtosis (excess
    kurtosis of the window band-passed to the envelope band), and for each of ftf/bpfo/bpfi/bsf:
    <name>_hz, <name>_1x_envelope_ratio (envelope-spectrum peak within ±2 % of the frequency over the
    spectrum's median, the noise floor) and <name>_envelope_ratio (the larger of that and the same
    ratio at twice the frequency).
    A flat window (every reading equal) has crest factor and kurtosis 0: it has no waveform shape.
    """
    readings = check_window(accel, sample_rate_hz)
    if not (math.isfinite(shaft_hz) and shaft_hz > 0):
        raise ValueError(f"shaft_hz must be a positive number, got {shaft_hz!r}")
    low, high = velocity_band(sample_rate_hz, band)
    n = readings.size
    resolution_hz = sample_rate_hz / n
    detrended, spectrum, freqs = _detrended(readings, sample_rate_hz, below_hz=low)

    velocity_spectrum = _integrated(spectrum, freqs, (low, high))
    velocity = np.fft.irfft(velocity_spectrum, n) * 1000.0
    result = {
        "velocity_rms_mm_s": _rms(velocity),
        "velocity_peak_mm_s": float(np.max(np.abs(velocity))),
        "acceleration_rms_m_s2": _rms(detrended),
        "acceleration_peak_m_s2": float(np.max(np.abs(detrended))),
        **_shape(detrended),
        "shaft_hz": float(shaft_hz),
    }
    for order in HARMONIC_ORDERS:
        band_bins = _bins_near(freqs, order * shaft_hz, resolution_hz)
        # One-sided r.m.s. of a tone: sqrt(2·Σ|X|²)/n (the band never holds the DC or Nyquist bin).
        tone_rms = math.sqrt(2 * float(np.sum(np.abs(velocity_spectrum[band_bins]) ** 2))) / n
        result[harmonic_feature(order)] = tone_rms * 1000.0

    if defect_frequencies:
        envelope_band = _checked_envelope_band(envelope_band, sample_rate_hz)
        band_passed, envelope = _envelope(spectrum, freqs, envelope_band, n)
        # Impacts ring the resonance: in its band the shaft tones cannot mask their kurtosis.
        result["envelope_band_kurtosis"] = _shape(band_passed)["kurtosis"]
        # The envelope of band-limited noise has content up to the band's width only; bins above
        # it would drag the median (the noise floor) down and inflate every ratio.
        floor_bins = (freqs > 0) & (freqs <= envelope_band[1] - envelope_band[0])
        noise_floor = float(np.median(envelope[floor_bins]))
        for name in DEFECT_NAMES:
            frequency = float(defect_frequencies[name])
            fundamental = _ratio(envelope, freqs, frequency, resolution_hz, noise_floor)
            second = _ratio(envelope, freqs, 2 * frequency, resolution_hz, noise_floor)
            result[f"{name}_hz"] = frequency
            result[f"{name}_1x_envelope_ratio"] = fundamental
            result[f"{name}_envelope_ratio"] = max(fundamental, second)
    return result


def harmonic_feature(order: float) -> str:
    """The feature name of a shaft order: 1.0 -> velocity_1x_mm_s, 0.5 -> velocity_0_5x_mm_s."""
    label = f"{order:g}".replace(".", "_")
    return f"velocity_{label}x_mm_s"


def _detrended(
    readings: NDArray[np.float64], sample_rate_hz: float, below_hz: float
) -> tuple[NDArray[np.float64], NDArray[np.complex128], NDArray[np.float64]]:
    """(de-meaned and linearly detrended readings, their rFFT, the rFFT frequencies).

    The trend's slope is fitted against the part of a ramp that lies below `below_hz` (the velocity
    band's lower edge), by least squares in the frequency domain. Drift lives there; a least-squares
    fit against the whole ramp would also pick up every tone inside the band (a window-long ramp is a
    sawtooth with energy at every bin), so a sine exactly on a bin would lose a little of its
    amplitude. Fitted this way the detrend removes a drift exactly and leaves such a sine untouched;
    against noise it is nearly as efficient as the full fit (at the shortest window, 1 s, the nine
    bins below 10 Hz hold ~94 % of the sawtooth's energy).
    """
    n = readings.size
    centered = readings - readings.mean()
    ramp = np.arange(n, dtype=np.float64) - (n - 1) / 2
    spectrum = np.fft.rfft(centered)
    ramp_spectrum = np.fft.rfft(ramp)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate_hz).astype(np.float64)
    below = (freqs > 0) & (freqs < below_hz)
    if np.any(below):
        ramp_below = ramp_spectrum[below]
        slope = float(
            np.real(np.vdot(ramp_below, spectrum[below])) / np.real(np.vdot(ramp_below, ramp_below))
        )
    else:  # no bin below the band (a band starting under 1 / window length): the plain least-squares fit
        slope = float(np.dot(ramp, centered) / np.dot(ramp, ramp))
    return centered - slope * ramp, spectrum - slope * ramp_spectrum, freqs


def _integrated(
    spectrum: NDArray[np.complex128], freqs: NDArray[np.float64], band: tuple[float, float]
) -> NDArray[np.complex128]:
    """The velocity spectrum (m/s) of an acceleration spectrum (m/s²): X / (j·2πf) in band, 0 outside."""
    in_band = (freqs >= band[0]) & (freqs <= band[1])
    velocity = np.zeros_like(spectrum)
    velocity[in_band] = spectrum[in_band] / (2j * np.pi * freqs[in_band])
    return velocity


def _checked_envelope_band(band: tuple[float, float] | None, sample_rate_hz: float) -> tuple[float, float]:
    low, high = default_envelope_band(sample_rate_hz) if band is None else (float(band[0]), float(band[1]))
    if not 0 < low < high <= sample_rate_hz / 2:
        raise ValueError(
            f"envelope band must satisfy 0 < low < high <= {sample_rate_hz / 2:g} Hz (Nyquist), got {band!r}"
        )
    return low, high


def _envelope(
    spectrum: NDArray[np.complex128], freqs: NDArray[np.float64], band: tuple[float, float], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(the band-passed window, its envelope spectrum as m/s² amplitude) from the window's rFFT."""
    # The Nyquist bin (even n) has no negative-frequency twin, so it is never doubled: leave it out.
    passed = (freqs >= band[0]) & (freqs <= band[1]) & (np.arange(freqs.size) < n / 2)
    analytic_spectrum = np.zeros(n, dtype=np.complex128)
    analytic_spectrum[: freqs.size][passed] = 2 * spectrum[passed]
    analytic = np.fft.ifft(analytic_spectrum)  # its real part is the band-passed signal
    envelope = np.abs(analytic)
    envelope -= envelope.mean()
    window = np.hanning(n)
    return analytic.real, 2 * np.abs(np.fft.rfft(envelope * window)) / window.sum()


def _bins_near(freqs: NDArray[np.float64], target_hz: float, resolution_hz: float) -> NDArray[np.bool_]:
    half_width = max(FREQUENCY_TOLERANCE * target_hz, resolution_hz)
    return np.abs(freqs - target_hz) <= half_width


def _ratio(
    envelope: NDArray[np.float64],
    freqs: NDArray[np.float64],
    target_hz: float,
    resolution_hz: float,
    noise_floor: float,
) -> float:
    near = _bins_near(freqs, target_hz, resolution_hz)
    if noise_floor <= 0 or not np.any(near):
        return 0.0
    return float(np.max(envelope[near])) / noise_floor


def _rms(values: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(values**2)))


def _shape(detrended: NDArray[np.float64]) -> dict[str, float]:
    peak = float(np.max(np.abs(detrended)))
    if peak == 0:
        return {"crest_factor": 0.0, "kurtosis": 0.0}
    # Normalised by the peak first: the moments of a tiny signal would otherwise underflow.
    normalised = detrended / peak
    second = float(np.mean(normalised**2))
    fourth = float(np.mean(normalised**4))
    return {"crest_factor": 1 / math.sqrt(second), "kurtosis": fourth / second**2 - 3.0}
