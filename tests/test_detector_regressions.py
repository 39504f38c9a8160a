"""Issue J part 2: clean ECG is never rejected, and a rejection names what it measured.

Real-looking single-lead strips at the rates of ICU monitors and Holters (125-500 Hz): a ventricular
paced rhythm (pacing spike, wide QRS, tall discordant T wave) and sinus rhythm with tall peaked T waves
(hyperkalaemia: T twice the R). "Clean" is neurokit2's verdict: it must find every beat too, or the case
is not a fair one. Both were misread before: the tall T out-slopes its narrow QRS in the detector's band,
and its height raised the between-beat background until the record was rejected as `no_beats`.
"""
from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest

from beat_ray.tokenize import detect_r_peaks, score_beats
from beat_ray.tokenize.prune import prune_artefacts

RATES = (125, 250, 360, 500)


def _g(t: np.ndarray, mu: float, sd: float, a: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((t - mu) / sd) ** 2)


def _strip(fs: int, seconds: float, rr: float, beat, wander: tuple[float, float], sd: float, seed: int):
    """A single-lead strip: `beat(t, b)` added at every beat time b, plus respiration wander and white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beats = np.arange(0.5, seconds - 0.6, rr)
    x = sum(beat(t, b) for b in beats) + wander[0] * np.sin(2 * np.pi * wander[1] * t) + rng.normal(0, sd, len(t))
    return x, beats


def paced(fs: int, seconds: float = 30, rr: float = 0.833, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """VVI pacing at 72/min: one-sample spike 12 ms before a wide (LBBB-like) QRS, T 1.3 mV discordant."""
    def beat(t, b):
        spike = np.zeros_like(t)
        spike[int(round((b - 0.012) * fs))] = 4.0
        return spike + _g(t, b - 0.03, 0.025, 0.25) + _g(t, b + 0.02, 0.04, -1.0) + _g(t, b + 0.33, 0.07, 1.3)
    x, beats = _strip(fs, seconds, rr, beat, (0.1, 0.25), 0.015, seed)
    return x, np.round((beats + 0.02) * fs).astype(int)


def tall_t(fs: int, seconds: float = 30, rr: float = 0.75, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sinus at 80/min, narrow QRS (R 0.7 mV), peaked T 1.6 mV 240 ms after it."""
    def beat(t, b):
        return (_g(t, b - 0.16, 0.02, 0.12) + _g(t, b - 0.02, 0.008, -0.1) + _g(t, b, 0.01, 0.7)
                + _g(t, b + 0.02, 0.008, -0.15) + _g(t, b + 0.24, 0.035, 1.6))
    x, beats = _strip(fs, seconds, rr, beat, (0.05, 0.3), 0.01, seed)
    return x, np.round(beats * fs).astype(int)


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("make", [paced, tall_t], ids=["paced", "tall_t"])
def test_clean_single_lead_is_never_rejected(make, fs):
    x, ref = make(fs)
    _, info = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=fs), sampling_rate=fs)
    assert score_beats(ref, info["ECG_R_Peaks"], fs)["f1"] == 1.0        # clean by neurokit2's verdict
    peaks, flag = detect_r_peaks(x, fs, return_flag=True)
    assert flag == ""
    s = score_beats(ref, peaks, fs, tol_s=0.05)                          # on the QRS, not on the T wave
    assert s["f1"] == 1.0, s


def test_a_rejection_names_what_it_measured():
    x = np.random.default_rng(0).normal(0, 0.2, 5000)                    # 20 s of white noise, one lead
    peaks, flag = detect_r_peaks(x, 250, return_flag=True)
    assert len(peaks) == 0 and flag.startswith("no_beats:")
    for measured in ("peak/background", "RR variation", "median shape correlation"):
        assert measured in flag, flag


def test_prune_drops_unlike_detections_close_to_a_beat_and_keeps_the_beats():
    """Positive control: artefact bumps planted 0.3 RR after every third beat are removed."""
    fd = 100.0
    x, ref = paced(100, seconds=20)
    bp = np.diff(x, prepend=x[0])[None]
    art = ref[::3][:-1] + 25                                             # 0.25 s after: inside half an RR
    bump = np.hanning(9) * 3
    for a in art:
        bp[0, a - 4:a + 5] += np.diff(bump, prepend=0)
    det = np.sort(np.concatenate([ref, art]))
    kept = prune_artefacts(bp, det, fd)
    assert kept.tolist() == ref.tolist()
    assert prune_artefacts(bp, ref, fd).tolist() == ref.tolist()       # nothing to prune: all kept
