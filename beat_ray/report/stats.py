"""Bootstrap confidence intervals over test records and seeds, computed from the stored predictions.

Why a hand-written AUC: the CIs need ~1,000 resamples x seeds x classes x cells; sklearn's
`roc_auc_score` in a loop would blow the 20-s budget of `make figures`. A bootstrap resample is
the original test set with integer weights (how often each record was drawn), so the AUC of a
resample is the Mann-Whitney U statistic with mid-ranks for ties, weighted by those counts:

    AUC = sum_{pos i} w_i (sum_{neg j: s_j < s_i} w_j + 1/2 sum_{neg j: s_j = s_i} w_j) / (W_pos W_neg)

computed for all resamples at once with one sort per (seed, class) (`class_auc`). With unit weights it is
exactly sklearn's ROC AUC (tests/test_report.py checks both, ties included).

Resamples are drawn by `valid_resamples`: one in which a class of the test records loses all its
positives or all its negatives is rejected and redrawn, as the PTB-XL benchmark's bootstrap does
(helme/ecg_ptbxl_benchmarking, `get_appropriate_bootstrap_samples`), so every resample averages the
same classes; the report says how many were redrawn. A class with a single label value among all
the test records has no AUC anywhere (NaN) and is left out of the macro average, as
`beat_ray.train.metrics.macro_auc` does for the point estimate.

Seeds are the second level (`seed_weights`, `macro`): where a cell has several seeds, each resample also
draws seeds with replacement and averages the drawn seeds' AUCs, so the CI holds the spread between
training runs. Averaging every seed in every resample (this module until 2026-12-03) held only the
record spread: 3 seeds whose group AUCs differed by 0.03 gave a Δ CI of ±0.01.
"""
from __future__ import annotations

import warnings

import numpy as np

N_BOOT = 1000
SEED = 0
LEVEL = 0.95
# Non-inferiority margin for "matches" (Tables 1-2) and "recovers" (Table 3): a difference is within the
# margin when the lower 95% bound of Δ exceeds −MARGIN. Fixed before the real runs, not chosen from them.
MARGIN = 0.01


# valid_resamples gives up after this many batches of n_boot draws (a class too rare to keep in a resample)
MAX_REDRAW_BATCHES = 200


def _draw(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)


def resample_weights(n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot, n) draw counts of a bootstrap over n records; depends only on (n, n_boot, seed).

    Every cell with the same sorted test records gets the same resamples, which pairs the
    ablation drops and the per-seed averages for free.
    """
    return _draw(np.random.default_rng(seed), n, n_boot)


def valid_resamples(labels: np.ndarray, n_boot: int = N_BOOT, seed: int | list[int] = SEED) -> tuple[np.ndarray, int]:
    """(n_boot, n) draw counts in which every class with both label values among the n records keeps
    at least one positive and one negative, and how many draws were rejected and redrawn.

    The draws are `resample_weights(n, n_boot, seed)`'s, continued from the same generator for the
    replacements, so they depend only on (labels, n_boot, seed): cells with the same test records
    (hence the same labels) share them, and where nothing is rejected nothing changes.
    """
    y = np.asarray(labels).astype(bool).reshape(len(labels), -1)
    n = len(y)
    pos = y.sum(0)
    y = y[:, (pos > 0) & (pos < n)].astype(np.int64)
    rng = np.random.default_rng(seed)
    draws, flags = [], []
    for _ in range(MAX_REDRAW_BATCHES):
        w = _draw(rng, n, n_boot)
        p = w @ y
        draws.append(w)
        flags.append((p > 0).all(1) & (p < w.sum(1, keepdims=True)).all(1))
        ok = np.concatenate(flags)
        if ok.sum() >= n_boot:
            used = int(np.flatnonzero(ok)[n_boot - 1]) + 1          # draws consumed up to the n_boot-th kept one
            return np.concatenate(draws)[:used][ok[:used]], used - n_boot
    raise ValueError(f"bootstrap: after {MAX_REDRAW_BATCHES * n_boot} draws only {int(ok.sum())} of {n_boot} "
                     f"resamples of {n} records kept every class's positives and negatives (a class with very few "
                     "of either)")


def class_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mid-rank AUC: labels (n, C) 0/1, scores (S, n, C), integer weights (B, n) -> (S, B, C).

    Per (seed, class): sort the negatives once, cumulate their draw counts per resample, and look
    up each positive's count of lower negatives (plus half the tied ones) with two binary
    searches. Integer arithmetic (twice the numerator) keeps it exact and fast.
    NaN where a class has only positives or only negatives among the drawn records.
    """
    y = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    w_all = np.asarray(weights).astype(np.int32)
    n_seeds, _, n_cls = scores.shape
    out = np.full((n_seeds, len(w_all), n_cls), np.nan)
    for c in range(n_cls):
        pi, ni = np.flatnonzero(y[:, c]), np.flatnonzero(~y[:, c])
        w_pos, w_neg = w_all[:, pi], w_all[:, ni]
        wp, wn = w_pos.sum(1, dtype=np.int64), w_neg.sum(1, dtype=np.int64)
        ok = (wp > 0) & (wn > 0)
        if not ok.any():
            continue
        denom = np.where(ok, 2.0 * wp * wn, 1.0)
        for s in range(n_seeds):
            neg = scores[s, ni, c]
            order = np.argsort(neg, kind="stable")
            neg = neg[order]
            cum = np.zeros((len(w_all), len(ni) + 1), np.int32)
            np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
            pos = scores[s, pi, c]
            lo, hi = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
            twice = cum[:, lo] + cum[:, hi]            # 2 x (lower negatives + half the tied ones)
            num = np.einsum("bi,bi->b", w_pos, twice, dtype=np.int64)
            out[s, :, c] = np.where(ok, num / denom, np.nan)
    return out


def auc_midrank(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of one class (unit weights); NaN if y has a single value."""
    return float(class_auc(np.asarray(y)[:, None], np.asarray(s, np.float64)[None, :, None],
                           np.ones((1, len(y)), np.int32))[0, 0, 0])


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN slices stay NaN
        return np.nanmean(a, axis=axis)


def seed_weights(n_seeds: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot, S) draw counts of a bootstrap over S seeds (all ones for one seed); fixed by (S, n_boot, seed),
    so two arms with as many seeds get the same seed draw (paired by seed index, as by record)."""
    if n_seeds == 1:
        return np.ones((n_boot, 1))
    return np.random.default_rng([seed, n_seeds]).multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=n_boot)


def macro(aucs: np.ndarray, cols: list[int] | None = None, *, seed_w: np.ndarray) -> np.ndarray:
    """(S, B, C) class AUCs -> (B,): per resample, the mean over the drawn seeds (`seed_w`, (B, S) draw
    counts) of each seed's macro average over `cols` (all if None).

    Two-level bootstrap: records (the AUCs' own resamples) and seeds, so the spread between training runs
    widens the CI instead of being averaged away. With 3 seeds, averaging them had hidden run-to-run
    differences of 0.03 in a class group's AUC (the benchmark's select arm: +0.027, +0.002, +0.001 per seed).
    `seed_w` is required, never defaulted: a point estimate passes ones((1, S)), a CI `seed_weights`."""
    a = aucs if cols is None else aucs[..., cols]
    per_seed = _nanmean(a, axis=2)                                     # (S, B)
    w = np.asarray(seed_w, np.float64)
    if w.shape != per_seed.shape[::-1]:
        raise ValueError(f"seed draws {w.shape} do not fit {per_seed.shape[1]} resamples x {per_seed.shape[0]} seeds")
    return (w * per_seed.T).sum(1) / w.sum(1)


def macro_point(labels: np.ndarray, scores: np.ndarray, cols: list[int] | None = None) -> float:
    """Mean over seeds of macro-AUC on the full test set; scores (S, n, C)."""
    s = np.asarray(scores)
    return float(macro(class_auc(labels, s, np.ones((1, len(labels)), np.int32)), cols,
                       seed_w=np.ones((1, s.shape[0])))[0])


def two_level(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, cols: list[int] | None = None,
              seed: int = SEED) -> np.ndarray:
    """(B,) bootstrap distribution of the macro-AUC over `cols` of scores (S, n, C): records drawn by
    `weights` (B, n), seeds by `seed_weights(S, B, seed)`."""
    s = np.asarray(scores)
    return macro(class_auc(labels, s, weights), cols, seed_w=seed_weights(s.shape[0], len(weights), seed))


def ci(dist: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of a bootstrap distribution (NaN resamples dropped; numpy 'linear')."""
    d = np.asarray(dist, np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan"), float("nan")
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def paired_delta(labels: np.ndarray, a: np.ndarray, b: np.ndarray, weights: np.ndarray,
                 cols: list[int] | None = None) -> tuple[float, float, float]:
    """Macro-AUC of scores `a` minus `b` (each (S, n, C), the same records) over `cols`: the full-set point
    and the 95% CI of the paired two-level bootstrap (the same record resamples `weights` for both, and
    the same seed draw where both have as many seeds)."""
    point = macro_point(labels, a, cols) - macro_point(labels, b, cols)
    return (point, *ci(two_level(labels, a, weights, cols) - two_level(labels, b, weights, cols)))
