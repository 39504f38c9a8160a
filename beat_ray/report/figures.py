"""Figures 1-4 as PNG and PDF, byte-identical across reruns.

Why so many settings: a rebuilt figure set should show up in `git diff` only when a number
changed. Agg backend, matplotlib's defaults plus fixed fonts (DejaVu Sans, shipped with
matplotlib), sizes and dpi, and no dates or software versions in the file metadata.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np

from beat_ray.report import analysis as an

DPI = 200
RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
      "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 100,
      "savefig.dpi": DPI, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.hashsalt": "beat-ray",
      "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
      "grid.linewidth": 0.5}
PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}


@contextmanager
def style():
    """Matplotlib defaults + RC, whatever the user's matplotlibrc says; restored afterwards."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        yield


def save(fig, out: Path, stem: str, dpi: int = DPI) -> list[str]:
    """Write stem.png and stem.pdf without metadata dates; close the figure."""
    fig.savefig(out / f"{stem}.png", dpi=dpi, metadata=PNG_META)
    fig.savefig(out / f"{stem}.pdf", metadata=PDF_META)
    plt.close(fig)
    return [f"{stem}.png", f"{stem}.pdf"]


# tab10 slot per registered model, so a model keeps its colour whichever others share a figure
COLOURS = {"beatnet": 0, "resnet1d_wang": 1, "xresnet1d101": 2, "inception1d": 3, "beatnet_no_morphology": 4,
           "beatnet_no_spatial": 5, "beatnet_no_temporal": 6, "beatnet_patch": 7, "beatnet_small": 8, "beatnet_base": 9}
BEYOND_TAB10 = {"beatnet_no_shape": "#3b3b3b"}   # registered after tab10 ran out; no tint for qualified labels


def palette(models) -> dict[str, tuple]:
    """One colour per model label, the same in every figure: a registered model's own tab10 colour; a
    qualified label ('beatnet (select detector)', '... (tuned)') the light tab20 tint of its model's colour;
    anything else, or a clash within one figure, the first tab20 colour the figure does not use yet."""
    tab10, tab20 = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    order = an.model_order(models)
    out: dict[str, tuple] = {}
    for m in sorted(order, key=lambda m: " (" in m):      # plain names claim their colours first
        base = m.split(" (")[0]
        if base in COLOURS:
            want = tab20(2 * COLOURS[base] + 1) if " (" in m else tab10(COLOURS[base])
            if want not in out.values():
                out[m] = want
        elif base == m and m in BEYOND_TAB10:
            out[m] = mcolors.to_rgba(BEYOND_TAB10[m])
    for m in order:
        if m not in out:
            out[m] = next(c for c in map(tab20, range(20)) if c not in out.values())
    return {m: out[m] for m in order}


def fig4_tokens(signal: np.ndarray, fs: float, out: Path, seconds: float = 10.0) -> tuple[list[str], int]:
    """s0010_re with the library's detector and plotting function; returns files and beats drawn."""
    from beat_ray.tokenize import detect_r_peaks
    from beat_ray.tokenize.corpus import DEFAULT_CONFIG
    from beat_ray.tokenize.plot import plot_tokens

    peaks = np.asarray(detect_r_peaks(signal, fs))
    shown = int(((peaks >= 0) & (peaks < round(seconds * fs))).sum())
    w = DEFAULT_CONFIG.window(fs) / fs
    with matplotlib.rc_context({"axes.grid": False}):
        fig = plot_tokens(signal, fs, peaks, DEFAULT_CONFIG, seconds=seconds,
                          title=(f"PTB s0010_re, first {seconds:g} s: {shown} detected beats, "
                                 f"{DEFAULT_CONFIG.mode} token windows of {w * 1000:.0f} ms (R - "
                                 f"{DEFAULT_CONFIG.pre_s * 1000:.0f} ms to R + {DEFAULT_CONFIG.post_s * 1000:.0f} ms)"))
    return save(fig, out, "fig4_tokenization", dpi=150), shown
