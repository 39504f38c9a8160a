"""Exact layout of the tokens: shapes, values, mask, padding, cropping, the three modes, cache."""
from __future__ import annotations

import numpy as np
import pytest
from formats import REALDATA

from beat_ray.tokenize import (
    TokenizerConfig,
    load_or_tokenize,
    token_bounds,
    tokenize,
    tokenize_corpus,
)
from beat_ray.tokenize.windows import anchors, beat_table, gather

FS = 100
T = 1000


def ramp() -> np.ndarray:
    """(1, 12, T): value lead*10000 + t + 1, so every token sample names its source sample."""
    return (np.arange(12)[:, None] * 10000 + np.arange(T)[None] + 1).astype(np.float32)[None]


def cut(peaks, cfg):
    x = ramp()
    table = beat_table(anchors([np.asarray(peaks)], [""], T, FS, cfg), T, FS, cfg)
    return x, table, gather(x, table, FS, cfg)


def test_fixed_mode_exact_values():
    cfg = TokenizerConfig(mode="fixed", pre_s=0.25, post_s=0.45, max_beats=6)
    x, tb, tok = cut([10, 100, 190, 985], cfg)
    assert tok.shape == (1, 6, 12, 70) and tok.dtype == np.float32
    assert tb["beat_mask"].tolist() == [[True] * 4 + [False] * 2]
    assert tb["r_peaks"].tolist() == [[10, 100, 190, 985, -1, -1]]
    np.testing.assert_allclose(tb["times"], [[0.1, 1.0, 1.9, 9.85, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(tb["rr"][0], [[0, .9], [.9, .9], [.9, 7.95], [7.95, 0], [0, 0], [0, 0]], atol=1e-6)
    # beat 0 at R=10: window [-15, 55) -> 15 zeros then samples 0..54
    assert (tok[0, 0, :, :15] == 0).all()
    np.testing.assert_array_equal(tok[0, 0, :, 15:], x[0, :, 0:55])
    np.testing.assert_array_equal(tok[0, 1], x[0, :, 75:145])
    np.testing.assert_array_equal(tok[0, 2], x[0, :, 165:235])
    # beat 3 at R=985: window [960, 1030) -> 40 samples then 30 zeros
    np.testing.assert_array_equal(tok[0, 3, :, :40], x[0, :, 960:1000])
    assert (tok[0, 3, :, 40:] == 0).all()
    assert (tok[0, 4:] == 0).all()
    # R sits at index pre = 25 in every real token
    np.testing.assert_array_equal(tok[0, :4, 5, 25], x[0, 5, [10, 100, 190, 985]])


def test_adaptive_mode_midpoint_bounds_and_fixed_r_index():
    cfg = TokenizerConfig(mode="adaptive", pre_s=0.25, post_s=0.45, max_beats=5)
    x, tb, tok = cut([30, 60, 100, 500], cfg)
    assert tok.shape == (1, 5, 12, 70)
    # territories: [0, 45), [45, 80), [80, 300), [300, 1000)
    assert tb["lo"][0, :4].tolist() == [0, 45, 80, 300] and tb["hi"][0, :4].tolist() == [45, 80, 300, 1000]
    exp = np.zeros((4, 12, 70), np.float32)
    for b, (r, lo, hi) in enumerate([(30, 0, 45), (60, 45, 80), (100, 80, 300), (500, 300, 1000)]):
        for j in range(70):
            s = r - 25 + j
            if lo <= s < hi:
                exp[b, :, j] = x[0, :, s]
    np.testing.assert_array_equal(tok[0, :4], exp)
    # hand-checked: beat 1 (R=60) keeps window indices 10..44 only
    nz = np.flatnonzero(tok[0, 1, 0])
    assert nz.min() == 10 and nz.max() == 44
    np.testing.assert_array_equal(tok[0, :4, 0, 25], x[0, 0, [30, 60, 100, 500]])
    assert (tok[0, 4] == 0).all()
    b = token_bounds(tb["r_peaks"][0], T, FS, cfg)
    assert b.tolist() == [[5, 45], [45, 80], [80, 145], [475, 545]]


def test_cropping_keeps_first_beats_and_counts():
    cfg = TokenizerConfig(mode="fixed", max_beats=2)
    _, tb, tok = cut([30, 60, 100, 500], cfg)
    assert tok.shape == (1, 2, 12, 70)
    assert tb["n_beats"].tolist() == [4] and tb["r_peaks"].tolist() == [[30, 60]]
    np.testing.assert_allclose(tb["rr"][0, 1], [0.3, 0.4], atol=1e-6)   # next beat is the cropped one


def test_patch_mode_equal_windows():
    cfg = TokenizerConfig(mode="patch", patch_s=0.7, max_beats=16)
    x, tb, tok = cut([123, 456], cfg)                     # R peaks are ignored
    assert tok.shape == (1, 16, 12, 70)
    assert tb["n_beats"].tolist() == [15] and tb["beat_mask"][0].sum() == 15
    assert tb["r_peaks"][0, :15].tolist() == [70 * k + 35 for k in range(15)]
    for k in range(14):
        np.testing.assert_array_equal(tok[0, k], x[0, :, 70 * k:70 * k + 70])
    np.testing.assert_array_equal(tok[0, 14, :, :20], x[0, :, 980:1000])
    assert (tok[0, 14, :, 20:] == 0).all() and (tok[0, 15] == 0).all()
    np.testing.assert_allclose(tb["rr"][0, 1], [0.7, 0.7], atol=1e-6)


def gauss_record(fs: float, peaks_s, t_s: float = 10.0) -> np.ndarray:
    """12 leads of Gaussian 'R waves' of lead-specific amplitude and sign at known times."""
    t = np.arange(round(t_s * fs)) / fs
    amp = np.linspace(0.3, 1.5, 12) * np.where(np.arange(12) % 3 == 1, -1, 1)
    s = sum(np.exp(-0.5 * ((t - p) / 0.012) ** 2) for p in peaks_s)
    return (amp[:, None] * s[None]).astype(np.float32)


PEAKS_S = np.array([0.3, 1.15, 2.0, 2.9, 3.7, 4.6, 5.5, 6.3, 7.2, 8.1, 9.0, 9.85])


@pytest.mark.parametrize("fs", [100, 250, 360, 500, 1000])
def test_end_to_end_known_peaks(fs):
    x = gauss_record(fs, PEAKS_S)[None]
    cfg = TokenizerConfig(max_beats=16)
    tk = tokenize(x, fs, cfg)
    exp = np.round(PEAKS_S * fs).astype(int)
    assert tk.flags.tolist() == [""]
    assert np.abs(tk.r_peaks[0, :12] - exp).max() <= 1
    assert tk.n_beats.tolist() == [12] and tk.beat_mask[0].tolist() == [True] * 12 + [False] * 4
    pre, w = round(0.25 * fs), cfg.window(fs)
    assert tk.tokens.shape == (1, 16, 12, w)
    for b, r in enumerate(tk.r_peaks[0, :12]):
        lo, hi = max(r - pre, 0), min(r - pre + w, x.shape[-1])
        np.testing.assert_array_equal(tk.tokens[0, b, :, lo - (r - pre):hi - (r - pre)], x[0, :, lo:hi])
    assert tk.lead_mask.all()


def test_cache_roundtrip_and_corpus_pool(tmp_path):
    rng = np.random.default_rng(0)
    one = gauss_record(FS, PEAKS_S)
    x = np.repeat(one[None], 300, 0) + 0.01 * rng.standard_normal((300, 12, T)).astype(np.float32)
    x[7] = 0.0                                              # a flat record among them
    cfg = TokenizerConfig(max_beats=16)
    ref = tokenize(x, FS, cfg)
    assert ref.flags[7].startswith("flat") and not ref.beat_mask[7].any() and ref.n_beats[7] == 0
    par = tokenize_corpus(x, FS, cfg, n_jobs=2)
    cached = load_or_tokenize(tmp_path, x, FS, cfg, n_jobs=2)
    again = load_or_tokenize(tmp_path, x, FS, cfg)
    assert isinstance(again.tokens, np.memmap)
    dirs = sorted(p.name for p in tmp_path.iterdir())
    assert len(dirs) == 1 and dirs[0].startswith("tokens-")
    for t in (par, cached, again):
        for k in ("tokens", "beat_mask", "rr", "times", "r_peaks", "n_beats", "lead_mask"):
            np.testing.assert_array_equal(getattr(t, k), getattr(ref, k), err_msg=k)
        assert t.flags.tolist() == ref.flags.tolist() and t.config == cfg and t.fs == FS
    load_or_tokenize(tmp_path, x, FS, TokenizerConfig(mode="adaptive", max_beats=16))
    assert len(list(tmp_path.iterdir())) == 2               # other config, other key
    assert ref.n_cropped == 0 and tokenize(x[:3], FS, TokenizerConfig(max_beats=4)).n_cropped == 3


def test_plot_tokens_ptb(tmp_path):

    import wfdb

    from beat_ray.tokenize.plot import plot_tokens
    real = REALDATA / "ptbdb" / "s0010_re"
    rec = wfdb.rdrecord(str(real))
    x = rec.p_signal.T.astype(np.float32)
    tk = tokenize(x[None], rec.fs, TokenizerConfig(mode="adaptive", max_beats=64))
    fig = plot_tokens(x, rec.fs, tk.r_peaks[0], tk.config, title="PTB s0010_re")
    fig.savefig(tmp_path / "s0010.png", dpi=50)
    assert (tmp_path / "s0010.png").stat().st_size > 10_000
