"""Signal utilities shared by every source: resampling, band-pass, fixed length, standardisation.

Standardisation is fitted on the training split only and then applied everywhere, so no
test statistics leak into training.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased; exact for rational ratios)."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in} -> {fs_out}")
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = sps.resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.float32)


def bandpass(x: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis; `high` is clipped below Nyquist."""
    nyq = fs / 2.0
    high = min(high, 0.95 * nyq)
    sos = sps.butter(order, [low / nyq, high / nyq], btype="band", output="sos")
    return sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1).astype(np.float32)


def fix_length(x: np.ndarray, n: int) -> tuple[np.ndarray, str]:
    """Crop (keep the first n samples) or zero-pad at the end to n samples; says which."""
    t = x.shape[-1]
    if t == n:
        return x, "exact"
    if t > n:
        return x[..., :n], "cropped"
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - t)]
    return np.pad(x, pad), "padded"


@dataclass
class LeadStandardizer:
    """Per-lead mean/std fitted on training records only.

    `per_lead=False` is the PTB-XL benchmark's scaler: one StandardScaler over every sample of
    every lead (helme's `standardize` flattens the training signals), broadcast to the 12 leads.
    """

    mean: np.ndarray | None = None   # (12,)
    std: np.ndarray | None = None    # (12,)
    per_lead: bool = True

    def fit(self, signals: np.ndarray, rows: np.ndarray | None = None, chunk: int = 512) -> LeadStandardizer:
        """Streaming moments over the `rows` (default all) of (N, 12, T), `chunk` records at a time, so
        a memory-mapped cache, or a training split of it, is never loaded whole."""
        n_leads = signals.shape[1]
        rows = np.arange(len(signals)) if rows is None else np.sort(np.asarray(rows))
        s = np.zeros(n_leads)
        s2 = np.zeros(n_leads)
        count = 0
        for i in range(0, len(rows), chunk):
            block = np.asarray(signals[rows[i:i + chunk]], dtype=np.float64)
            s += block.sum(axis=(0, 2))
            s2 += (block ** 2).sum(axis=(0, 2))
            count += block.shape[0] * block.shape[2]
        if count == 0:
            raise ValueError("cannot fit a standardizer on zero records")
        if not self.per_lead:
            s, s2, count = np.full(n_leads, s.sum()), np.full(n_leads, s2.sum()), count * n_leads
        self.mean = (s / count).astype(np.float32)
        var = s2 / count - (s / count) ** 2
        self.std = np.sqrt(np.maximum(var, 0)).astype(np.float32)
        self.std[self.std < 1e-6] = 1.0       # a flat lead stays flat instead of dividing by zero
        return self

    def transform(self, signals: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise RuntimeError("LeadStandardizer.transform called before fit")
        return ((signals - self.mean[:, None]) / self.std[:, None]).astype(np.float32)
