"""Issue J, part 1: noise drawn at the electrodes, scaled to nst's SNR (beat_ray/data/electrodes.py)."""
from __future__ import annotations

import numpy as np
import pytest
import wfdb
from formats import write_nstdb

from beat_ray.data.electrodes import (
    ELECTRODE_TYPES,
    add_electrode_noise,
    electrode_noise,
    leads_from_electrodes,
)
from beat_ray.data.noise import NSTDB_SNRS, load_nstdb


def clean_record(fs: float, seconds: float = 10.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(12, T) leads formed from electrode potentials with QRS-like spikes, and the R-peak samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    r = np.arange(0.5, seconds - 0.5, 0.8)
    e = np.zeros((9, len(t)))
    gains = rng.uniform(-1.0, 1.5, 9)
    for c in r:
        e += gains[:, None] * np.exp(-0.5 * ((t - c) / 0.012) ** 2)                 # QRS
        e += 0.2 * gains[:, None] * np.exp(-0.5 * ((t - c - 0.3) / 0.05) ** 2)     # T
    return leads_from_electrodes(e), np.round(r * fs).astype(int)


def nst_snr(clean: np.ndarray, noise: np.ndarray, peaks: np.ndarray, fs: float) -> float:
    """nst's SNR written out longhand (loops, not the module's code): sigamp -a and -r, 5% trimmed means."""
    h = round(0.05 * fs)
    def trimmed(v):
        v = sorted(v)
        j = len(v) // 20
        return sum(v[j:len(v) - j]) / (len(v) - 2 * j)
    s = n = 0.0
    w = round(fs)
    for lead in range(12):
        amp = trimmed([clean[lead, p - h:p + h + 1].max() - clean[lead, p - h:p + h + 1].min() for p in peaks])
        rms = trimmed([np.sqrt(np.mean((noise[lead, k:k + w] - noise[lead, k:k + w].mean()) ** 2))
                       for k in range(0, noise.shape[-1] - w + 1, w)])
        s, n = s + amp ** 2 / 8, n + rms ** 2
    return 10 * np.log10(s / n)


@pytest.mark.parametrize("kind", ELECTRODE_TYPES)
def test_einthoven_and_goldberger_hold_on_noisy_output(kind):
    clean, peaks = clean_record(500)
    y = add_electrode_noise(clean[None], kind, 0.0, 500, [peaks], seed=1)[0].astype(np.float64)
    lead_i, ii, iii, avr, avl, avf = y[:6]
    scale = np.abs(y).max()
    assert np.abs(lead_i + iii - ii).max() < 1e-6 * scale                          # Einthoven
    assert np.abs(avr + avl + avf).max() < 1e-6 * scale                            # Goldberger
    assert np.abs(avr + (lead_i + ii) / 2).max() < 1e-6 * scale
    assert np.abs(avl - (lead_i - ii / 2)).max() < 1e-6 * scale
    assert np.abs(avf - (ii - lead_i / 2)).max() < 1e-6 * scale
    assert np.abs(y - clean).max() > 0.01 * scale                                  # noise was added


def test_lead_noise_of_a_real_record_obeys_the_lead_equations():
    """On a real PTB-XL record the recorded leads are not exactly consistent; the added noise is."""
    from formats import realdata
    rec = wfdb.rdrecord(str(realdata() / "ptbxl" / "records100" / "00000" / "00001_lr"))
    x, fs = rec.p_signal.T.astype(np.float64), float(rec.fs)
    peaks = np.arange(int(0.5 * fs), x.shape[-1] - int(0.5 * fs), int(0.8 * fs))
    n = add_electrode_noise(x[None], "ma", 6.0, fs, [peaks], seed=2)[0].astype(np.float64) - x
    assert np.abs(n[0] + n[2] - n[1]).max() < 1e-5 and np.abs(n[3:6].sum(0)).max() < 1e-5


@pytest.mark.parametrize("fs", [100, 500])
@pytest.mark.parametrize("kind", ELECTRODE_TYPES)
def test_measured_snr_is_the_requested_one(kind, fs):
    if kind == "pl" and fs == 100:
        pytest.skip("the powerline rule at 100 Hz has its own test")
    clean, peaks = clean_record(fs, seed=3)
    for snr in NSTDB_SNRS:
        noise = add_electrode_noise(clean[None], kind, snr, fs, [peaks], seed=4)[0].astype(np.float64) - clean
        assert abs(nst_snr(clean, noise, peaks, fs) - snr) < 0.5, (kind, fs, snr)


def test_powerline_needs_a_rate_that_carries_it():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"needs fs >= 125 Hz, got 100"):
        electrode_noise("pl", 1000, 100, rng)
    clean, peaks = clean_record(100)
    y = add_electrode_noise(clean[None], "pl", 0.0, 100, [peaks], seed=0)[0].astype(np.float64)
    residual = nst_snr(clean, y - clean, peaks, 100)
    assert residual > 30, residual      # 0 dB on the electrodes; the anti-alias filter left < -30 dB of it
    hi, hi_peaks = clean_record(500)
    y500 = add_electrode_noise(hi[None], "pl", 0.0, 500, [hi_peaks], seed=0)[0].astype(np.float64) - hi
    f = np.fft.rfftfreq(y500.shape[-1], 1 / 500)
    p = np.abs(np.fft.rfft(y500, axis=-1)) ** 2
    assert p[:, (f > 49) & (f < 51)].sum() / p.sum() > 0.85                       # 50 Hz where it can live


def test_one_realisation_per_record_and_type_scaled_across_snrs():
    clean, peaks = clean_record(500)
    other, other_peaks = clean_record(500, seed=9)
    batch = np.stack([clean, other])
    n = {s: add_electrode_noise(batch, "em", s, 500, [peaks, other_peaks], seed=5, keys=[11, 12]).astype(np.float64)
         - batch for s in (24.0, 6.0, -6.0)}
    for s in (6.0, -6.0):
        scaled = n[24.0] * 10 ** ((24.0 - s) / 20)          # float32 output: compare to its rounding
        np.testing.assert_allclose(n[s], scaled, rtol=1e-3, atol=1e-5 * np.abs(batch).max() * 10 ** ((24.0 - s) / 20))
    alone = add_electrode_noise(other[None], "em", 6.0, 500, [other_peaks], seed=5, keys=[12])[0] - other
    np.testing.assert_array_equal(alone, n[6.0][1])                                # batch-independent
    assert not np.allclose(n[6.0][0], n[6.0][1])                                   # records differ


def test_spatial_structure_of_each_type():
    rng = np.random.default_rng(0)
    for _ in range(20):
        em = electrode_noise("em", 5000, 500, rng)
        assert 1 <= int((np.abs(em).max(-1) > 0).sum()) <= 2                      # one or two electrodes
    pl = electrode_noise("pl", 5000, 500, rng)
    lead = leads_from_electrodes(pl)
    assert lead.std() < 0.2 * pl.std()           # common mode: only the impedance mismatch reaches the leads
    ma = electrode_noise("ma", 5000, 500, rng)
    c = np.corrcoef(ma)
    assert np.abs(c[~np.eye(9, dtype=bool)]).max() < 0.1                           # independent electrodes
    bw = electrode_noise("bw", 5000, 500, rng)
    assert np.corrcoef(bw[:3])[0, 1] > 0.5                                         # limb electrodes share it


def test_real_format_nstdb_noise_drives_the_electrodes(tmp_path):
    write_nstdb(tmp_path, "em")
    src = load_nstdb(tmp_path, "em", fs=500)
    clean, peaks = clean_record(500)
    noise = add_electrode_noise(clean[None], "em", 6.0, 500, [peaks], seed=0, nstdb=src)[0].astype(np.float64) - clean
    assert abs(nst_snr(clean, noise, peaks, 500) - 6.0) < 0.5
    e = electrode_noise("em", 5000, 500, np.random.default_rng(1), nstdb=src)
    hit = e[np.abs(e).max(-1) > 0][0]
    starts = [(c, s) for c in range(2) for s in np.flatnonzero(src[c] == hit[0])]
    assert any(np.array_equal(hit, src[c, s:s + 5000]) for c, s in starts)        # a segment of the record
    with pytest.raises(ValueError, match="NSTDB has no 'pl' noise record"):
        electrode_noise("pl", 5000, 500, np.random.default_rng(1), nstdb=src)
