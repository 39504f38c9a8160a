"""Beat-by-beat scoring (ANSI/AAMI EC57): a detection matches a reference beat within a
tolerance (150 ms standard, CPSC 2019 used 75 ms), one to one."""
from __future__ import annotations

import numpy as np

# MIT-BIH annotation symbols that are beats; '+', '~', '|', '"', '!', '[', ']' ... are not.
BEAT_SYMBOLS = frozenset("NLRAaJSVFejE/fQ")


def beat_samples(symbols, samples) -> np.ndarray:
    """Keep only the beat annotations of a WFDB annotation (symbol list, sample array)."""
    sym = np.asarray(symbols)
    keep = np.isin(sym, list(BEAT_SYMBOLS))
    return np.asarray(samples, np.int64)[keep]


def match_beats(ref: np.ndarray, det: np.ndarray, tol: int) -> np.ndarray:
    """Pairs (i_ref, i_det) matched one to one, nearest-first, |ref - det| <= tol samples."""
    ref = np.sort(np.asarray(ref, np.int64))
    det = np.sort(np.asarray(det, np.int64))
    if len(ref) == 0 or len(det) == 0:
        return np.zeros((0, 2), np.int64)
    # all candidate pairs within tol (each ref has few neighbours), then greedy by distance
    lo = np.searchsorted(det, ref - tol, side="left")
    hi = np.searchsorted(det, ref + tol, side="right")
    cnt = hi - lo
    ri = np.repeat(np.arange(len(ref)), cnt)
    di = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if cnt.sum() else np.zeros(0, np.int64)
    order = np.argsort(np.abs(ref[ri] - det[di]), kind="stable")
    used_r, used_d, pairs = set(), set(), []
    for k in order:
        r, d = int(ri[k]), int(di[k])
        if r in used_r or d in used_d:
            continue
        used_r.add(r)
        used_d.add(d)
        pairs.append((r, d))
    return np.asarray(sorted(pairs), np.int64).reshape(-1, 2)


def score_beats(ref: np.ndarray, det: np.ndarray, fs: float, tol_s: float = 0.15) -> dict:
    """tp, fn, fp, sensitivity Se = tp/(tp+fn), positive predictivity PPV = tp/(tp+fp), F1."""
    tp = len(match_beats(ref, det, round(tol_s * fs)))
    fn, fp = len(ref) - tp, len(det) - tp
    se = tp / (tp + fn) if tp + fn else 1.0
    ppv = tp / (tp + fp) if tp + fp else 1.0
    f1 = 2 * se * ppv / (se + ppv) if se + ppv else 0.0
    return {"tp": tp, "fn": fn, "fp": fp, "se": se, "ppv": ppv, "f1": f1}


def score_records(ref_peaks: np.ndarray, ref_offsets: np.ndarray, det: list[np.ndarray], fs: float,
                  tol_s: float = 0.15) -> dict:
    """Pooled beat score over records: ref as flat peaks + offsets (synth's extras layout)."""
    tot = {"tp": 0, "fn": 0, "fp": 0}
    for i, d in enumerate(det):
        s = score_beats(ref_peaks[ref_offsets[i]:ref_offsets[i + 1]], d, fs, tol_s)
        for k in tot:
            tot[k] += s[k]
    tp, fn, fp = tot["tp"], tot["fn"], tot["fp"]
    se = tp / (tp + fn) if tp + fn else 1.0
    ppv = tp / (tp + fp) if tp + fp else 1.0
    return {**tot, "se": se, "ppv": ppv, "f1": 2 * se * ppv / (se + ppv) if se + ppv else 0.0}
