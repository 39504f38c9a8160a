"""Noise waveforms of the NSTDB types, generated or read from real NSTDB records.

`synth_noise` makes unit-free waveforms coloured like each type; `load_nstdb` reads a real NSTDB noise
record (bw, em, ma) from a user path. Where the noise goes and how loud it is (nst's SNR, at the
electrodes, one realisation per record and type) is `beat_ray.data.electrodes`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal as sps

NOISE_TYPES: tuple[str, ...] = ("bw", "ma", "em", "pl", "wgn")
NSTDB_SNRS: tuple[float, ...] = (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)


def _lowpass(x: np.ndarray, fs: float, fc: float) -> np.ndarray:
    sos = sps.butter(2, min(fc / (fs / 2), 0.99), btype="low", output="sos")
    return sps.sosfilt(sos, x, axis=-1)


def _highpass(x: np.ndarray, fs: float, fc: float) -> np.ndarray:
    if fc >= 0.95 * fs / 2:        # nothing left above fc at this rate: keep the broadband noise
        return x
    sos = sps.butter(4, fc / (fs / 2), btype="high", output="sos")
    return sps.sosfilt(sos, x, axis=-1)


def synth_noise(kind: str, shape: tuple[int, ...], fs: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-free noise of one NSTDB type, shape (..., T); its power is normalised later."""
    t = np.arange(shape[-1]) / fs
    if kind == "wgn":
        return rng.standard_normal(shape)
    if kind == "bw":      # respiration and motion: mostly 0.15-0.3 Hz, everything below ~1 Hz
        f = rng.uniform(0.15, 0.3, size=shape[:-1] + (1,))
        ph = rng.uniform(0, 2 * np.pi, size=shape[:-1] + (1,))
        drift = _lowpass(np.cumsum(rng.standard_normal(shape), axis=-1) / np.sqrt(fs), fs, 1.0)
        return np.sin(2 * np.pi * f * t + ph) + 0.5 * drift / (drift.std(axis=-1, keepdims=True) + 1e-12)
    if kind == "ma":      # EMG: broadband from ~20 Hz up to Nyquist
        return _highpass(rng.standard_normal(shape), fs, 20.0)
    if kind == "em":      # electrode motion: abrupt baseline steps plus beat-like transients
        steps = np.cumsum((rng.random(shape) < 1.5 / fs) * rng.standard_normal(shape), axis=-1)
        spikes = (rng.random(shape) < 1.0 / fs) * rng.standard_normal(shape) * 4
        k = max(int(0.04 * fs), 1)
        kernel = np.hanning(2 * k + 1)
        transients = sps.fftconvolve(spikes, kernel.reshape((1,) * (len(shape) - 1) + (-1,)), mode="same", axes=-1)
        return _lowpass(steps, fs, 5.0) + transients
    if kind == "pl":      # powerline: 50 Hz (or 60 Hz) and a harmonic, folded if above Nyquist
        f0 = rng.choice([50.0, 60.0])
        ph = rng.uniform(0, 2 * np.pi, size=shape[:-1] + (1,))
        return np.sin(2 * np.pi * f0 * t + ph) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t + 2 * ph)
    raise ValueError(f"unknown noise type {kind!r}; expected one of {NOISE_TYPES}")


def load_nstdb(root: str | Path, kind: str, fs: float) -> np.ndarray:
    """Real NSTDB noise record (`bw`, `ma` or `em`) from a user path, resampled to fs: (2, T) mV."""
    import wfdb

    from beat_ray.data.errors import RecordError
    from beat_ray.data.signal import resample

    if kind not in ("bw", "ma", "em"):
        raise ValueError(f"NSTDB has only bw, ma and em noise records, not {kind!r}")
    path = Path(root) / kind
    if not path.with_suffix(".hea").exists():
        raise RecordError(path.with_suffix(".hea"), "NSTDB noise record not found", reason="missing_file")
    rec = wfdb.rdrecord(str(path))
    sig = rec.p_signal.T.astype(np.float64)
    if not np.isfinite(sig).all():
        raise RecordError(path, "NSTDB noise record has non-finite samples", reason="nan_samples")
    return resample(sig, rec.fs, fs).astype(np.float64)
