"""Signal utilities, noise at a target SNR, and the fold / label-fraction logic."""
from __future__ import annotations

import numpy as np
import pytest
from formats import write_nstdb

from beat_ray.data.errors import RecordError
from beat_ray.data.noise import NOISE_TYPES, NSTDB_SNRS, load_nstdb, synth_noise
from beat_ray.data.signal import LeadStandardizer, bandpass, fix_length, resample
from beat_ray.data.splits import (
    nested_label_fractions,
    rarest_class_strata,
    stratified_group_folds,
)


def _band_power_fraction(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    f = np.fft.rfftfreq(x.shape[-1], 1 / fs)
    p = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    return float(p[..., (f >= lo) & (f <= hi)].sum() / p.sum())


# ------------------------------------------------------------------ signal
def test_resample_changes_length_and_keeps_a_sine():
    fs_in, fs_out = 500, 100
    t = np.arange(5000) / fs_in
    x = np.sin(2 * np.pi * 5 * t)[None, :]
    y = resample(x, fs_in, fs_out)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    t2 = np.arange(1000) / fs_out
    np.testing.assert_allclose(y[0, 50:-50], np.sin(2 * np.pi * 5 * t2)[50:-50], atol=0.02)
    assert resample(x, 360, 100).shape == (1, 1389)          # 5000 * 100/360 rounded up by polyphase
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 100)


def test_bandpass_removes_baseline_and_keeps_qrs_band():
    fs = 500
    t = np.arange(5000) / fs
    x = np.sin(2 * np.pi * 0.1 * t) + np.sin(2 * np.pi * 10 * t)
    y = bandpass(x, fs)
    assert _band_power_fraction(y[500:-500], fs, 0, 0.3) < 0.01
    assert _band_power_fraction(y[500:-500], fs, 9, 11) > 0.95


def test_fix_length_pads_and_crops_and_says_which():
    x = np.ones((12, 7), dtype=np.float32)
    y, how = fix_length(x, 10)
    assert how == "padded" and y.shape == (12, 10) and y[:, 7:].sum() == 0 and y[:, :7].sum() == 84
    y, how = fix_length(x, 5)
    assert how == "cropped" and y.shape == (12, 5)
    assert fix_length(x, 7)[1] == "exact"


def test_standardizer_uses_training_moments_only():
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, size=(50, 12, 100)).astype(np.float32)
    train[:, 5] = 0.0                                        # a flat lead must not divide by zero
    test = rng.normal(100.0, 1.0, size=(5, 12, 100)).astype(np.float32)
    st = LeadStandardizer().fit(train, chunk=7)
    np.testing.assert_allclose(st.mean[0], train[:, 0].mean(), rtol=1e-4)
    np.testing.assert_allclose(st.std[0], train[:, 0].std(), rtol=1e-3)
    assert st.std[5] == 1.0
    z = st.transform(test)
    assert z[:, 0].mean() > 25                               # test stats did not leak into the fit
    with pytest.raises(RuntimeError):
        LeadStandardizer().transform(test)


# ------------------------------------------------------------------ noise waveforms (levels: test_electrode_noise)
def test_noise_types_have_their_spectra():
    fs, rng = 500, np.random.default_rng(3)
    spec = {k: synth_noise(k, (24, 5000), fs, rng) for k in NOISE_TYPES}
    assert _band_power_fraction(spec["bw"], fs, 0, 1.0) > 0.9
    assert _band_power_fraction(spec["ma"], fs, 18, 250) > 0.9
    assert _band_power_fraction(spec["pl"], fs, 49, 61) > 0.85
    assert _band_power_fraction(spec["wgn"], fs, 0, 125) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="unknown noise type 'xx'"):
        synth_noise("xx", (1, 100), fs, rng)
    assert NSTDB_SNRS == (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)


def test_real_format_nstdb_noise_is_resampled(tmp_path):
    trace = write_nstdb(tmp_path, "bw")
    noise = load_nstdb(tmp_path, "bw", fs=100)
    assert noise.shape == (2, 6000)
    # 360 -> 100 Hz keeps the random walk's slow course: the mean over each second matches the written one
    np.testing.assert_allclose(noise[0].reshape(60, 100).mean(1), trace[:, 0].reshape(60, 360).mean(1), atol=0.02)
    with pytest.raises(RecordError, match="ma.hea: NSTDB noise record not found"):
        load_nstdb(tmp_path, "ma", fs=100)


# ------------------------------------------------------------------ splits
def _toy_labels(n=600, seed=0):
    rng = np.random.default_rng(seed)
    lab = (rng.random((n, 5)) < np.array([0.5, 0.2, 0.1, 0.05, 0.02])).astype(np.uint8)
    return lab


def test_rarest_class_strata():
    lab = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]])
    assert rarest_class_strata(lab).tolist() == [1, 0, 3, 2]


def test_folds_are_patient_grouped_stratified_and_seeded():
    lab = _toy_labels()
    patients = np.array([f"p{i // 3}" for i in range(len(lab))])
    folds = stratified_group_folds(lab, patients, 10, seed=0)
    assert set(folds) == set(range(1, 11))
    for p in np.unique(patients):
        assert len(set(folds[patients == p])) == 1
    for c in range(lab.shape[1]):           # every class reaches the test fold
        assert lab[folds == 10, c].sum() > 0
    assert np.array_equal(folds, stratified_group_folds(lab, patients, 10, seed=0))
    assert not np.array_equal(folds, stratified_group_folds(lab, patients, 10, seed=1))


def test_label_fractions_are_nested_class_covering_and_seeded():
    lab = _toy_labels()
    fr = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 0.75, 1.0]
    subs = nested_label_fractions(lab, fr, seed=0)
    sizes = [len(subs[f]) for f in fr]
    assert sizes == [30, 60, 90, 120, 150, 180, 210, 300, 450, 600]
    for small, big in zip(fr, fr[1:]):
        assert set(subs[small]) <= set(subs[big])
    for f in fr:
        assert (lab[subs[f]].sum(0) > 0).all()
    assert np.array_equal(subs[0.1], nested_label_fractions(lab, fr, seed=0)[0.1])
    assert not np.array_equal(subs[0.1], nested_label_fractions(lab, fr, seed=1)[0.1])
    with pytest.raises(ValueError):
        nested_label_fractions(lab, [0.0])
