"""Artefact pruning: a detection that sits too close to its neighbour and does not look like the record's
beats is an artefact (electrode motion, a movement spike), not a beat.

Why: the envelope rule finds every large slope, and electrode motion makes beat-like slopes. Between two
true beats any extra detection lies within half an RR interval of one of them, so each pair of detections
closer than SHORT_RR x the median RR is checked, and the one whose band-passed waveform (all usable leads,
+-60 ms, best lag within +-20 ms) correlates less with the record's median beat is dropped when that
correlation is under CORR_MIN. Early beats stay: premature atrial beats have the normal morphology, and
ventricular ones come at >= 0.5 RR (synth's coupling is 0.53-0.72 RR; clinical PVCs rarely under 0.5).
"""
from __future__ import annotations

import numpy as np

SHORT_RR = 0.5
CORR_MIN = 0.5
HALF_S, LAG_S = 0.06, 0.02


def beat_correlation(bp: np.ndarray, peaks_d: np.ndarray, fd: float) -> np.ndarray:
    """(B,) correlation of each detection's waveform (leads concatenated) with the median beat."""
    h, lag = max(1, round(HALF_S * fd)), round(LAG_S * fd)
    n = bp.shape[-1]
    lags = np.arange(-lag, lag + 1)
    idx = np.clip(peaks_d[:, None, None] + lags[None, :, None] + np.arange(-h, h + 1)[None, None, :], 0, n - 1)
    seg = bp[:, idx]                                            # (L, B, lags, W)
    seg = np.moveaxis(seg, 0, 2).reshape(len(peaks_d), len(lags), -1)
    seg = seg - seg.mean(-1, keepdims=True)
    seg /= np.linalg.norm(seg, axis=-1, keepdims=True) + 1e-12
    template = np.median(seg[:, lag], axis=0)
    template /= np.linalg.norm(template) + 1e-12
    return (seg @ template).max(axis=1)


def prune_artefacts(bp: np.ndarray, peaks_d: np.ndarray, fd: float) -> np.ndarray:
    """peaks_d without the artefacts of the module docstring; bp: (L, T) band-passed usable leads at fd."""
    if len(peaks_d) < 4 or bp.shape[0] == 0:
        return peaks_d
    corr = beat_correlation(bp, peaks_d, fd)
    short = SHORT_RR * float(np.median(np.diff(peaks_d)))
    kept = [0]
    for j in range(1, len(peaks_d)):
        a = kept[-1]
        if peaks_d[j] - peaks_d[a] < short and min(corr[a], corr[j]) < CORR_MIN:
            if corr[j] > corr[a]:
                kept[-1] = j
            continue
        kept.append(j)
    return peaks_d[kept]
