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
           out: np.ndarray | None = None, finite: bool = False, zeroed: bool = False) -> np.ndarray:
    """Cut the (N, B, 12, W) float32 tokens out of (N, 12, T) signals (non-finite -> 0).

    finite=True: the caller vouches that signals hold no NaN/inf (skips a scan);
    zeroed=True: `out` is already all zeros (a fresh np.zeros or .npy), so only the real
    samples are written.

    One slice copy per beat, straight from the record into `out`: the tokens are ~2x the
    record (overlapping 0.7-s windows), so a padded copy, a fancy-index temporary and a
    masking multiply (the vectorised way) cost 3 extra passes over them, more than the
    ~1 us of Python per beat (~25 beats a record).
    """
    n, n_leads, t = signals.shape
    pre, w = offsets(config, fs)
    mask = table["beat_mask"]
    r = table["r_peaks"]
    start = r - (w // 2 if config.mode == "patch" else pre)
    lo, hi = np.maximum(start, 0), np.minimum(start + w, t)
    if config.mode == "adaptive":
        lo, hi = np.maximum(lo, table["lo"]), np.minimum(hi, table["hi"])
    if out is None:
        out, zeroed = np.zeros((n, mask.shape[1], n_leads, w), np.float32), True
    elif not zeroed:
        out[~mask] = 0.0
    if not finite and not np.isfinite(signals).all():
        signals = np.nan_to_num(np.asarray(signals, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    for i, j in zip(*np.nonzero(mask)):
        s, a, b = int(start[i, j]), int(lo[i, j]), int(hi[i, j])
        dst = out[i, j]
        if not zeroed and (a > s or b < s + w):
            dst[:] = 0.0
        if b > a:
            dst[:, a - s:b - s] = signals[i, :, a:b]
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
