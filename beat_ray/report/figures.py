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
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from beat_ray.report import analysis as an
from beat_ray.report.tables import NOISE_NAMES, NOISE_ORDER

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


def palette(models) -> dict[str, tuple]:
    """One colour per model, the same in every figure."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(an.model_order(models))}


def fig2_noise(curves: list[an.NoiseCurve], colors: dict, out: Path) -> list[str]:
    kinds = [k for k in NOISE_ORDER if any(k in c.kinds for c in curves)]
    kinds += sorted({k for c in curves for k in c.kinds} - set(kinds))
    many = len({c.data for c in curves}) > 1
    ncol = 3
    nrow = (len(kinds) + 1 + ncol - 1) // ncol          # one spare panel holds the legend
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 3.0 * nrow), sharey=True, squeeze=False)
    axes = axes.ravel()
    snrs = sorted({s for c in curves for v in c.kinds.values() for s, *_ in v}, reverse=True)
    step = float(np.min(-np.diff(snrs))) if len(snrs) > 1 else 6.0
    clean_x = snrs[0] + step                              # the clean point, one SNR step left of the first
    for ax, k in zip(axes, kinds):
        for c in curves:
            if k not in c.kinds:
                continue
            col = colors[c.model]
            ls = "-" if not many or c.data == min(x.data for x in curves) else "--"
            v = np.array(c.kinds[k])
            ax.fill_between(v[:, 0], v[:, 2], v[:, 3], color=col, alpha=0.18, lw=0)
            ax.plot(v[:, 0], v[:, 1], "o", ls=ls, color=col, ms=3.5, lw=1.4,
                    label=f"{c.model} ({c.data})" if many else c.model)
            ax.plot([clean_x, v[0, 0]], [c.clean[0], v[0, 1]], ":", color=col, lw=1)
            ax.errorbar([clean_x], [c.clean[0]], yerr=[[c.clean[0] - c.clean[1]], [c.clean[2] - c.clean[0]]],
                        fmt="D", color=col, mfc="white", ms=5, capsize=2, lw=1)
        ax.set_xticks([clean_x] + snrs, ["clean"] + [f"{s:g}" for s in snrs])
        ax.set_xlim(clean_x + step / 2, snrs[-1] - step / 2)     # noisier to the right
        ax.set_title(NOISE_NAMES.get(k, k))
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("test macro-AUC")
        ax.yaxis.set_tick_params(labelleft=True)
    for ax in axes[len(kinds):]:
        ax.axis("off")
    h, lab = axes[0].get_legend_handles_labels()
    h += [plt.Line2D([], [], ls="", marker="D", mfc="white", color="0.4"),
          Patch(color="0.4", alpha=0.25)]
    lab += ["clean test set", "range over seeds"]
    axes[len(kinds)].legend(h, lab, loc="center", frameon=False, title="mean over seeds")
    fig.tight_layout()
    return save(fig, out, "fig2_noise_robustness")


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
