"""Visual check of the tokenizer: a 12-lead record with its R peaks and token windows.

Issue E reuses `plot_tokens` for the paper figure (PTB s0010_re). Agg backend: no display.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from beat_ray.data.leads import LEADS
from beat_ray.tokenize.corpus import DEFAULT_CONFIG
from beat_ray.tokenize.layout import TokenizerConfig
from beat_ray.tokenize.windows import token_bounds


def plot_tokens(signal: np.ndarray, fs: float, r_peaks: np.ndarray,
                config: TokenizerConfig = DEFAULT_CONFIG, ax=None, title: str | None = None,
                seconds: float | None = 10.0, leads: tuple[str, ...] = LEADS, spacing: float | None = None):
    """Draw leads stacked (top: I), R peaks as markers, token windows as alternating bands.

    signal (12, T) in mV; r_peaks: sample indices (-1 padding allowed). Only the first
    `seconds` are drawn (None: all). Returns the matplotlib Figure.
    """
    x = np.asarray(signal, np.float64)
    if x.ndim == 1:
        x = x[None]
    t_end = x.shape[-1] if seconds is None else min(x.shape[-1], round(seconds * fs))
    x = x[:, :t_end]
    r = np.asarray(r_peaks, np.int64)
    r = r[(r >= 0) & (r < t_end)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 0.7 * len(x) + 1.5))
    else:
        fig = ax.figure
    t = np.arange(t_end) / fs
    finite = np.where(np.isfinite(x), x, np.nan)
    span = np.nanmax(np.nanpercentile(finite, 99.5, axis=1) - np.nanpercentile(finite, 0.5, axis=1)) \
        if np.isfinite(finite).any() else 1.0
    gap = spacing or max(float(span), 0.5)
    for k, b in enumerate(token_bounds(r, t_end, fs, config)):
        ax.axvspan(b[0] / fs, b[1] / fs, color=("tab:blue" if k % 2 == 0 else "tab:orange"), alpha=0.08, lw=0)
    for i, row in enumerate(finite):
        off = -i * gap
        base = np.nanmedian(row) if np.isfinite(row).any() else 0.0
        ax.plot(t, row - base + off, color="k", lw=0.6)
        if len(r) and np.isfinite(row[r]).any():
            ax.plot(r / fs, row[r] - base + off, "rv", ms=3)
    ax.set_yticks([-i * gap for i in range(len(x))])
    ax.set_yticklabels(list(leads[:len(x)]))
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, t_end / fs)
    ax.set_title(title or f"{config.mode} tokens: {len(r)} beats, W = {config.window(fs)} samples at {fs:g} Hz")
    fig.tight_layout()
    return fig
