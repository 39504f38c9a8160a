"""Beat windows: R-peak positions -> the padded (N, B, 12, W) token layout of `layout.py`.

Three modes share one layout so models are mode-agnostic:
  fixed     samples [R - pre, R + post) around each R; R sits at index pre.
  adaptive  the fixed window, further limited to the beat's own territory
            [ceil((R_prev + R) / 2), ceil((R + R_next) / 2)) (HeartLang-style: consecutive
            tokens tile the record without overlap); the rest is zero, R still at index pre.
  patch     equal windows [k W, (k + 1) W) that ignore the QRS (the "no tokenization"
            ablation); r_peaks holds each patch's centre, rr the patch stride.
Samples outside the record are zero. Beats past max_beats are cropped (first B kept).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from beat_ray.tokenize.layout import TokenizerConfig


def offsets(config: TokenizerConfig, fs: float) -> tuple[int, int]:
    """(samples before the anchor, window length W); the anchor is R, or a patch start."""
    if config.mode == "patch":
        return 0, config.window(fs)
    return round(config.pre_s * fs), config.window(fs)


def anchors(peaks: list[np.ndarray], flags: list[str], n_samples: int, fs: float,
            config: TokenizerConfig) -> list[np.ndarray]:
    """Per record, the anchor samples of its tokens: R peaks, or patch centres in patch mode."""
    if config.mode != "patch":
        return [np.asarray(p, np.int64) for p in peaks]
    w = config.window(fs)
    centres = np.arange(0, n_samples, w, dtype=np.int64) + w // 2
    return [centres if not f else np.zeros(0, np.int64) for f in flags]


def beat_table(anchor_list: list[np.ndarray], n_samples: int, fs: float, config: TokenizerConfig
               ) -> dict[str, np.ndarray]:
    """r_peaks, beat_mask, rr, times, n_beats plus each token's [lo, hi) territory (N, B)."""
    n, b = len(anchor_list), config.max_beats
    r = np.full((n, b), -1, np.int64)
    lo = np.zeros((n, b), np.int64)
    hi = np.zeros((n, b), np.int64)
    rr = np.zeros((n, b, 2), np.float32)
    n_beats = np.zeros(n, np.int64)
    for i, p in enumerate(anchor_list):
        k = len(p)
        n_beats[i] = k
        if k == 0:
            continue
        d = np.diff(p)
        prev = np.concatenate(([0], d)) / fs
        nxt = np.concatenate((d, [0])) / fs
        mid = (p[:-1] + p[1:] + 1) // 2
        lo_i = np.concatenate(([0], mid))
        hi_i = np.concatenate((mid, [n_samples]))
        m = min(k, b)
        r[i, :m], lo[i, :m], hi[i, :m] = p[:m], lo_i[:m], hi_i[:m]
        rr[i, :m, 0], rr[i, :m, 1] = prev[:m], nxt[:m]
    mask = r >= 0
    times = np.where(mask, r / fs, 0.0).astype(np.float32)
    return {"r_peaks": r, "beat_mask": mask, "rr": rr, "times": times, "n_beats": n_beats,
            "lo": lo, "hi": hi}


def gather(signals: np.ndarray, table: dict[str, np.ndarray], fs: float, config: TokenizerConfig,
           out: np.ndarray | None = None) -> np.ndarray:
    """Cut the (N, B, 12, W) float32 tokens out of (N, 12, T) signals (non-finite -> 0)."""
    n, n_leads, t = signals.shape
    pre, w = offsets(config, fs)
    if config.mode == "patch":
        start = table["r_peaks"] - w // 2
    else:
        start = table["r_peaks"] - pre
    mask = table["beat_mask"]
    # zero-pad the time axis so every window start in [-w, t) is a valid view index
    padded = np.zeros((n, n_leads, t + 2 * w), np.float32)
    padded[:, :, w:w + t] = signals
    np.nan_to_num(padded, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    view = sliding_window_view(padded, w, axis=-1)          # (N, 12, t + w + 1, W)
    idx = np.where(mask, np.clip(start + w, 0, t + w), 0)
    tok = view[np.arange(n)[:, None], :, idx]               # (N, B, 12, W)
    keep = np.broadcast_to(mask[:, :, None], (n, mask.shape[1], w))
    if config.mode == "adaptive":
        pos = start[:, :, None] + np.arange(w)
        keep = keep & (pos >= table["lo"][:, :, None]) & (pos < table["hi"][:, :, None])
    if out is None:
        out = np.empty(tok.shape, np.float32)
    np.multiply(tok, keep[:, :, None, :], out=out)
    return out


def token_bounds(r_peaks: np.ndarray, n_samples: int, fs: float, config: TokenizerConfig
                 ) -> np.ndarray:
    """(k, 2) [start, stop) sample range of each token of one record, clipped to the record.

    Adaptive mode also respects the midpoints to the neighbouring beats.
    """
    r = np.asarray(r_peaks, np.int64)
    r = r[r >= 0]
    pre, w = offsets(config, fs)
    start = r - (w // 2 if config.mode == "patch" else pre)
    stop = start + w
    if config.mode == "adaptive" and len(r):
        mid = (r[:-1] + r[1:] + 1) // 2
        start = np.maximum(start, np.concatenate(([0], mid)))
        stop = np.minimum(stop, np.concatenate((mid, [n_samples])))
    return np.stack([np.clip(start, 0, n_samples), np.clip(stop, 0, n_samples)], axis=1)
