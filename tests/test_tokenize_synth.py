"""Accuracy against synth's ground-truth R peaks, clean and with NSTDB-style noise.

Figures (pooled Se / PPV, 150 ms) are printed with `pytest -s`; the acceptance bars are
Se and PPV >= 99.5% at 24 dB, and at 6 dB the 12-lead consensus beating lead I alone.
"""
from __future__ import annotations

import pytest

from beat_ray.tokenize import detect_batch
from beat_ray.tokenize.score import score_records

synth = pytest.importorskip("beat_ray.data.synth")
noise = pytest.importorskip("beat_ray.data.noise")

SETS = {100: (300, 7), 500: (100, 4)}      # fs: (records, seed)


@pytest.fixture(scope="module", params=sorted(SETS))
def ds(request):
    fs = request.param
    n, seed = SETS[fs]
    return synth.generate(synth.SynthConfig(n_records=n, fs=fs, seed=seed), task="all")


def score(ds, x) -> dict:
    peaks, _, _ = detect_batch(x, ds.fs)
    return score_records(ds.extras["r_peaks"], ds.extras["r_offsets"], peaks, ds.fs)


def test_clean(ds):
    s = score(ds, ds.signals)
    print(f"\nsynth {ds.fs} Hz clean: Se {s['se']:.4f} PPV {s['ppv']:.4f}")
    assert s["se"] >= 0.995 and s["ppv"] >= 0.995, s


@pytest.mark.parametrize("kind", ["wgn", "ma", "em", "bw", "pl"])
def test_24db(ds, kind):
    s = score(ds, noise.add_noise(ds.signals, kind, 24.0, ds.fs, seed=1))
    print(f"\nsynth {ds.fs} Hz {kind} 24 dB: Se {s['se']:.4f} PPV {s['ppv']:.4f}")
    assert s["se"] >= 0.995 and s["ppv"] >= 0.995, s


@pytest.mark.parametrize("kind", ["wgn", "ma", "em"])
def test_12_and_6db_consensus_beats_lead_i(ds, kind):
    for snr in (12.0, 6.0):
        x = noise.add_noise(ds.signals, kind, snr, ds.fs, seed=1)
        multi, lead_i = score(ds, x), score(ds, x[:, :1])
        print(f"\nsynth {ds.fs} Hz {kind} {snr:g} dB: 12-lead Se {multi['se']:.4f} PPV {multi['ppv']:.4f} "
              f"F1 {multi['f1']:.4f} | lead I Se {lead_i['se']:.4f} PPV {lead_i['ppv']:.4f} F1 {lead_i['f1']:.4f}")
        assert multi["se"] >= 0.98 and multi["ppv"] >= 0.98, multi
        if snr == 6.0:
            assert multi["f1"] > lead_i["f1"], (multi, lead_i)
            assert multi["se"] + multi["ppv"] > lead_i["se"] + lead_i["ppv"]
