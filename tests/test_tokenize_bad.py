"""Bad input: every case is a clear ValueError or a flagged record with its reason, never
silent all-padding tokens that look like a real ECG."""
from __future__ import annotations

import numpy as np
import pytest
import wfdb
from formats import REALDATA

from beat_ray.data.signal import resample
from beat_ray.tokenize import TokenizerConfig, detect_r_peaks, tokenize

REAL = REALDATA
CFG = TokenizerConfig(max_beats=20)


@pytest.fixture(scope="module")
def ptb10() -> np.ndarray:
    """10 s of PTB s0010_re, 12 leads, resampled to 100 Hz (mV)."""
    rec = wfdb.rdrecord(str(REAL / "ptbdb" / "s0010_re"))
    return resample(rec.p_signal.T[:, :10000], 1000, 100).astype(np.float32)


def assert_flagged(tk, i: int, key: str) -> None:
    assert tk.flags[i].startswith(key + ":"), tk.flags[i]
    assert not tk.beat_mask[i].any() and tk.n_beats[i] == 0
    assert (tk.r_peaks[i] == -1).all() and (tk.tokens[i] == 0).all()


def test_clean_reference_is_not_flagged(ptb10):
    tk = tokenize(ptb10[None], 100, CFG)
    assert tk.flags.tolist() == [""] and tk.n_beats[0] == 13 and tk.lead_mask.all()


@pytest.mark.parametrize("fs", [0, -100, float("nan"), float("inf"), 10, "abc", None])
def test_bad_sampling_rate_raises(ptb10, fs):
    with pytest.raises(ValueError, match="sampling rate"):
        tokenize(ptb10[None], fs, CFG)


def test_bad_shapes_raise(ptb10):
    with pytest.raises(ValueError):
        tokenize(ptb10, 100, CFG)                 # (12, T): missing the record axis
    with pytest.raises(ValueError):
        tokenize(ptb10[None, :11], 100, CFG)      # 11 leads
    with pytest.raises(ValueError):
        detect_r_peaks(np.zeros((2, 3, 4)), 100)


@pytest.mark.parametrize("declared", [500, 20])
def test_sampling_rate_far_from_content(ptb10, declared):
    """100-Hz content declared at 500 Hz (or 20 Hz: below the ECG range) -> flag or error."""
    if declared < 50:
        with pytest.raises(ValueError):
            tokenize(ptb10[None], declared, CFG)
        return
    tk = tokenize(ptb10[None], declared, CFG)
    assert tk.flags[0] and not tk.beat_mask[0].any()


def test_500hz_content_declared_100hz_is_flagged():
    rec = wfdb.rdrecord(str(REAL / "ptbdb" / "s0010_re"))
    x500 = resample(rec.p_signal.T[:, :10000], 1000, 500).astype(np.float32)
    tk = tokenize(x500[None], 100, CFG)
    assert tk.flags[0] and not tk.beat_mask[0].any()


def test_all_nan_and_inf(ptb10):
    x = np.stack([ptb10, ptb10, ptb10])
    x[0] = np.nan
    x[1] = np.inf
    x[2, :, 500] = np.nan                         # a NaN sample in every lead
    tk = tokenize(x, 100, CFG)
    for i in range(3):
        assert_flagged(tk, i, "non_finite")


def test_missing_leads_nan_rows_still_tokenize(ptb10):
    """MIT-BIH-like: only II and V5 present, the other 10 leads NaN rows."""
    ref = tokenize(ptb10[None], 100, CFG)
    x = np.full_like(ptb10, np.nan)
    x[[1, 10]] = ptb10[[1, 10]]
    tk = tokenize(x[None], 100, CFG)
    assert tk.flags.tolist() == [""] and np.isfinite(tk.tokens).all()
    assert tk.lead_mask[0].tolist() == [i in (1, 10) for i in range(12)]
    assert tk.n_beats[0] == ref.n_beats[0]
    assert np.abs(tk.r_peaks[0] - ref.r_peaks[0]).max() <= 5   # 50 ms: R of another dominant lead
    assert (tk.tokens[0][:, [0, 2, 3, 4, 5, 6, 7, 8, 9, 11]] == 0).all()


def test_partial_nan_lead_and_flat_lead(ptb10):
    x = ptb10.copy()
    x[0, 100:200] = np.nan                        # a gap in lead I
    x[3] = 0.0                                    # a flat lead
    tk = tokenize(x[None], 100, CFG)
    assert tk.flags.tolist() == [""] and np.isfinite(tk.tokens).all()
    assert not tk.lead_mask[0, 0] and not tk.lead_mask[0, 3] and tk.lead_mask[0].sum() == 10


@pytest.mark.parametrize("value", [0.0, 0.7])
def test_flat_record(ptb10, value):
    tk = tokenize(np.full((1, 12, 1000), value, np.float32), 100, CFG)
    assert_flagged(tk, 0, "flat")


def test_clipping(ptb10):
    def rail(v):                                  # every lead cut flat at half its extremes
        return np.clip(v, 0.5 * v.min(1, keepdims=True), 0.5 * v.max(1, keepdims=True))

    x = rail(ptb10)
    tk = tokenize(x[None], 100, CFG)
    assert_flagged(tk, 0, "clipping")
    part = ptb10.copy()
    part[:6] = rail(part[:6])                     # half the leads clipped: detect from the rest
    tk = tokenize(part[None], 100, CFG)
    assert tk.flags.tolist() == [""] and tk.lead_mask[0].tolist() == [False] * 6 + [True] * 6


def test_shorter_than_two_beats(ptb10):
    one_beat = ptb10[:, 105:195]                  # 0.9 s holding a single QRS (R at 141)
    tk = tokenize(one_beat[None], 100, CFG)
    assert tk.flags[0].startswith(("too_few_beats:", "no_beats:")), tk.flags[0]
    assert not tk.beat_mask[0].any()
    tk = tokenize(ptb10[None, :, :30], 100, CFG)  # 0.3 s
    assert_flagged(tk, 0, "too_short")


@pytest.mark.parametrize("seed", range(5))
def test_pure_noise_and_asystole(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(1000) / 100
    i_ii = rng.standard_normal((2, 1000))
    limb = np.stack([i_ii[0], i_ii[1], i_ii[1] - i_ii[0], -(i_ii[0] + i_ii[1]) / 2,
                     i_ii[0] - i_ii[1] / 2, i_ii[1] - i_ii[0] / 2])
    einthoven = np.concatenate([limb, rng.standard_normal((6, 1000))])    # noise that obeys III = II - I
    x = np.stack([rng.standard_normal((12, 1000)),                           # white noise
                  einthoven,
                  0.02 * rng.standard_normal((12, 1000)) + 0.3 * np.sin(2 * np.pi * 0.25 * t)])  # asystole
    tk = tokenize(x.astype(np.float32), 100, CFG)
    for i in range(3):
        assert_flagged(tk, i, "no_beats")
    p, flag = detect_r_peaks(rng.standard_normal(5000), 500, return_flag=True)
    assert len(p) == 0 and flag.startswith("no_beats")
