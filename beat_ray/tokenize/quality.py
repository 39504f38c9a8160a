"""Whether to trust a record's detections: the flags `detect_batch` gives a record instead of peaks.

Each flag is "<key>: <detail>" and the detail names what was measured: too short, non-finite, flat or
clipped leads; no QRS above the noise (the envelope's peak/background ratio, and, where that fails, no
regular train of alike complexes); too few beats; an implausible rate (a wrong sampling rate).
"""
from __future__ import annotations

import numpy as np

from beat_ray.tokenize.prune import beat_correlation

FLAT_PTP = 0.01                   # mV peak-to-peak below which a lead carries no ECG
CLIP_FRAC = 0.01                  # share of samples pinned (in runs) at the lead's max or min
RR_MIN_S, RR_MAX_S = 0.2, 3.0     # median RR outside -> heart rate < 20 or > 300 bpm
MIN_PEAK_RATIO = 8.0              # QRS vs between-beat envelope, 1-2 leads (see beat_flag)
MIN_PEAK_RATIO_MULTI = 4.0        # the same with >= 3 usable leads
MIN_PEAK_RATIO_LOW = 6.5          # QRS vs the 10th percentile of the envelope, fast rhythm, >= 3 leads
FAST_RR_S = 0.5                   # ... fast = median RR under this (see beat_flag)
MIN_TRAIN, REGULAR_CV, SAME_SHAPE = 6, 0.15, 0.9   # a regular train of alike complexes (see beat_train)


def fast_median(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median (same values) by a full sort: np.median's checks cost ~20-50 us a call, more
    than the sort of the <= 100 values it gets here, and detection calls it ~10 times a record."""
    v = np.sort(a, axis=axis)
    n = v.shape[axis]
    return (np.take(v, (n - 1) // 2, axis=axis) + np.take(v, n // 2, axis=axis)) / 2


def lead_quality(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (record, lead): finite, flat, clipped. x is (N, L, T); returns three (N, L) bools."""
    x = np.asarray(x)
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    finite = np.isfinite(hi) & np.isfinite(lo)
    if not finite.all():
        x = np.where(np.isfinite(x), x, 0.0)
        hi, lo = x.max(axis=-1), x.min(axis=-1)
    flat, clipped = flat_clipped(x, x.mean(axis=-1), hi, lo, finite)
    return finite, flat, clipped


def flat_clipped(x: np.ndarray, mean: np.ndarray, hi: np.ndarray, lo: np.ndarray, finite: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Flat and clipped leads, given each lead's mean and extremes (NaN-free x).

    Clipping = runs of samples pinned at an extreme far from the baseline (mean). Runs,
    because identical synthetic beats touch their max at isolated samples; far from the
    mean, because a flat synthetic baseline at the minimum is not a rail. Speed: the pairs
    are only counted for the leads with enough pinned samples to pass (a rail of m
    samples has m - 1 pairs), usually none; a count is one cheap pass.
    """
    ptp = hi - lo
    flat = finite & (ptp < FLAT_PTP)
    tol = (1e-6 * ptp + 1e-12)[..., None]
    need = 0.5 * CLIP_FRAC * x.shape[-1]
    n = np.zeros(hi.shape, np.int64)
    for ext, far in ((hi, hi - mean > 0.25 * ptp), (lo, mean - lo > 0.25 * ptp)):
        pinned = x >= ext[..., None] - tol if ext is hi else x <= ext[..., None] + tol
        cand = far & (np.count_nonzero(pinned, axis=-1) > need)
        if cand.any():
            p = pinned[cand]
            n[cand] = np.maximum(n[cand], (p[:, 1:] & p[:, :-1]).sum(-1))
    clipped = finite & ~flat & (n > need)
    return flat, clipped


def record_flag(finite: np.ndarray, flat: np.ndarray, clipped: np.ndarray, t: int, fs: float) -> str:
    if t < 2 * RR_MIN_S * fs:
        return f"too_short: {t} samples ({t / fs:.2f} s) cannot hold two beats"
    if not finite.any():
        return "non_finite: NaN/inf samples in every lead"
    ok = finite & ~flat
    if not ok.any():
        return f"flat: every finite lead is flat (peak-to-peak < {FLAT_PTP:g} mV)"
    if not (ok & ~clipped).any():
        return f"clipping: every non-flat lead is clipped ({int(clipped.sum())} leads)"
    return ""


def beat_train(peaks_d: np.ndarray, bp: np.ndarray | None, fd: float) -> tuple[float, float] | None:
    """(RR coefficient of variation, median correlation of each complex with the median one), or None
    with fewer than MIN_TRAIN beats: what a reader checks first to call a strip an ECG, not noise."""
    if bp is None or len(peaks_d) < MIN_TRAIN:
        return None
    rr = np.diff(peaks_d).astype(np.float64)
    return float(rr.std() / rr.mean()), float(np.median(beat_correlation(bp, peaks_d, fd)))


def beat_flag(env: np.ndarray, n_leads: int, peaks_d: np.ndarray, fd: float, bp: np.ndarray | None = None) -> str:
    """Pure noise also yields 'beats'; real QRS stand far above the quiet envelope.

    Background = the median envelope between beats (> 0.15 s from one). Measured (median
    envelope at the beats / that): real 12-lead ECG >= 11, synth >= 7.6, single-lead noise
    <= 7.3, noise in >= 3 independent leads <= 3.3 (the consensus averages it down).
    A fast rhythm (median RR < FAST_RR_S) leaves little diastole outside +-0.15 s, so
    'between' is mostly T wave and wide-QRS tails (synth STACH + LBBB at 150 bpm: 3.9). With
    >= 3 leads such a record may pass instead on the 10th percentile of the envelope, the
    diastolic baseline every ECG has: synth >= 8.1 there, 12-lead white / Einthoven-coupled
    noise / asystole <= 5.3 (300 records each). Not used at slow rates: 5x-slowed ECG (a
    wrong sampling rate) has flat stretches too (10th-percentile ratio 8-15, between <= 3.6).
    Tall T waves raise the background too; so a record below the ratio still passes when its beats
    form a regular train of alike complexes (`beat_train`: RR variation <= REGULAR_CV, median shape
    correlation >= SAME_SHAPE), the criterion a reader applies; noise makes neither.
    """
    if len(peaks_d) == 0:
        return "no_beats: no QRS complex found"
    height = float(fast_median(env[peaks_d]))
    ratio = clarity(env, peaks_d, fd, height)
    need = MIN_PEAK_RATIO if n_leads < 3 else MIN_PEAK_RATIO_MULTI
    if ratio < need and n_leads >= 3 and len(peaks_d) > 2 and fast_median(np.diff(peaks_d)) < FAST_RR_S * fd:
        ratio_low = height / (float(np.percentile(env, 10)) + 1e-12)
        if ratio_low >= MIN_PEAK_RATIO_LOW:
            ratio = need
    if ratio < need:
        train = beat_train(peaks_d, bp, fd)
        if train is None:
            return f"no_beats: no QRS above the noise (peak/background {ratio:.1f} < {need:g})"
        cv, corr = train
        if cv > REGULAR_CV or corr < SAME_SHAPE:
            return (f"no_beats: no QRS above the noise (peak/background {ratio:.1f} < {need:g}) and no regular "
                    f"train of alike complexes (RR variation {cv:.2f}{' >' if cv > REGULAR_CV else ' <='} "
                    f"{REGULAR_CV:g}, median shape correlation {corr:.2f}{' <' if corr < SAME_SHAPE else ' >='} "
                    f"{SAME_SHAPE:g})")
    if len(peaks_d) < 2:
        return f"too_few_beats: {len(peaks_d)} beat found, need 2"
    return ""


def clarity(env: np.ndarray, peaks_d: np.ndarray, fd: float, height: float | None = None) -> float:
    """Median envelope at the beats / median envelope between them (> 0.15 s from a beat:
    a wide QRS plus the 80-ms smoothing)."""
    if height is None:
        height = float(fast_median(env[peaks_d]))
    between = off_beat(len(env), peaks_d, round(0.15 * fd))
    return height / (float(fast_median(env[between] if between.any() else env)) + 1e-12)


def off_beat(n: int, peaks_d: np.ndarray, h: int) -> np.ndarray:
    """Samples farther than h from every peak (peaks sorted): one vectorised pass."""
    pos = np.arange(n)
    j = np.searchsorted(peaks_d, pos)
    left = np.abs(pos - peaks_d[np.maximum(j - 1, 0)])
    right = np.abs(peaks_d[np.minimum(j, len(peaks_d) - 1)] - pos)
    return np.minimum(left, right) > h


def rate_flag(peaks: np.ndarray, fs: float) -> str:
    if len(peaks) < 2:
        return f"too_few_beats: {len(peaks)} beat found, need 2"
    rr = float(fast_median(np.diff(peaks))) / fs
    if not RR_MIN_S <= rr <= RR_MAX_S:
        return (f"implausible_rate: median RR {rr:.3f} s ({60 / rr:.0f} bpm) at fs={fs:g} Hz; "
                "wrong sampling rate?")
    return ""
