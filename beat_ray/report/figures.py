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

from beat_ray.data.leads import LEADS
from beat_ray.report import analysis as an
from beat_ray.report.tables import NOISE_NAMES, NOISE_ORDER, pct

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


def fig1_data_efficiency(curves: list[an.EfficiencyCurve], colors: dict, out: Path) -> list[str]:
    datas = sorted({c.data for c in curves})
    fig, axes = plt.subplots(1, len(datas), figsize=(5.2 * len(datas), 3.8), squeeze=False)
    for ax, data in zip(axes[0], datas):
        fracs = sorted({p.fraction for c in curves if c.data == data for p in c.points})
        labelled: list[float] = []
        for c in (c for c in curves if c.data == data):
            col = colors[c.model]
            f = np.array([p.fraction for p in c.points])
            m = np.array([p.macro.mean for p in c.points])
            ax.fill_between(f, [p.macro.lo for p in c.points], [p.macro.hi for p in c.points], color=col,
                            alpha=0.18, lw=0)
            ax.plot(f, m, "o-", color=col, ms=3.5, lw=1.4, label=c.model)
            ax.axhline(c.full, color=col, ls=":", lw=0.9)
            k = int(np.flatnonzero(np.isclose(f, c.recovery))[0])
            ax.plot(f[k], m[k], "*", color=col, ms=12, mec="k", mew=0.6, zorder=5)
            if c.recovery < 1.0:                  # at 100 % the star says it; labels there would pile up
                stack = labelled.count(c.recovery)
                labelled.append(c.recovery)
                ax.annotate(f"{c.model}: {pct(c.recovery)}", (f[k], m[k]), textcoords="offset points",
                            xytext=(-8, -14 - 11 * stack), ha="left", fontsize=7.5, color=col)
        ax.set_xscale("log")
        ax.set_xticks(fracs, [pct(x) for x in fracs])
        ax.minorticks_off()
        ax.set_xlabel("labelled fraction of the training split (log scale)")
        ax.set_ylabel("test macro-AUC")
        ax.set_title(f"Data efficiency ({data})")
        h, lab = ax.get_legend_handles_labels()
        h += [plt.Line2D([], [], ls="", marker="*", color="0.4", mec="k", ms=10),
              plt.Line2D([], [], ls=":", color="0.4")]
        lab += ["recovers full-data AUC", "full-data AUC"]
        ax.legend(h, lab, loc="lower right", frameon=False)
    fig.tight_layout()
    return save(fig, out, "fig1_data_efficiency")


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


def fig3_attention(att: an.Attention, out: Path) -> list[str]:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 0.32 * len(att.classes) + 2.2),
                                 gridspec_kw={"width_ratios": [3.2, 1]})
    hm = np.asarray(att.heatmap)
    lo, hi = (float(np.nanmin(hm)), float(np.nanmax(hm))) if np.isfinite(hm).any() else (0.0, 1.0)
    im = ax.imshow(hm, cmap="viridis", aspect="auto", vmin=lo, vmax=max(hi, lo + 1e-9))   # data range: contrast
    ax.grid(False)
    for (i, j), v in np.ndenumerate(hm):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if v < (lo + hi) / 2 else "black")
    ax.set_xticks(range(len(LEADS)), LEADS)
    ax.set_yticks(range(len(att.classes)), att.classes)
    for t in ax.get_yticklabels():
        if t.get_text() in att.rhythm:
            t.set_fontweight("bold")
    ax.set_xlabel("lead")
    ax.set_ylabel("class (bold: rhythm class)")
    ax.set_title(f"Mean lead attention per class ({att.data}, beatnet)")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    names = ["rhythm", "non-rhythm"]
    es = [att.shares.get(n) for n in names]
    for i, e in enumerate(es):
        if e is None:
            continue
        err = None if not np.isfinite(e.lo) else [[e.mean - e.lo], [e.hi - e.mean]]
        bx.bar(i, e.mean, color=("tab:red", "tab:gray")[i], alpha=0.8, width=0.6)
        bx.errorbar(i, e.mean, yerr=err, color="k", capsize=4, lw=1)
    bx.axhline(1 / 12, color="k", ls=":", lw=0.9)
    bx.set_xticks([0, 1], names)
    bx.set_xlim(-0.6, 1.6)
    tops = [e.hi if np.isfinite(e.hi) else e.mean for e in es if e is not None]
    bx.set_ylim(0, max(tops + [1 / 12]) * 1.12)
    bx.set_ylabel(f"share of attention on lead {an.ATTENTION_LEAD}")
    bx.set_title(f"Lead-{an.ATTENTION_LEAD} share (95% CI)\ndotted: uniform attention, 1/12", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "fig3_interpretability")


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
