"""Accuracy against synth's ground-truth R peaks, clean and with electrode noise at nst's SNR.

Noise enters at the electrodes (`beat_ray.data.electrodes`), so leads that share an electrode share it
and the 12-lead consensus gets no free averaging gain from noise drawn independently per lead.
Figures (pooled Se / PPV, 150 ms) are printed with `pytest -s`.
"""
from __future__ import annotations

import pytest

from beat_ray.tokenize import detect_batch
from beat_ray.tokenize.score import score_records

synth = pytest.importorskip("beat_ray.data.synth")
electrodes = pytest.importorskip("beat_ray.data.electrodes")

SETS = {100: (300, 7), 500: (100, 4)}      # fs: (records, seed)
EM_6DB = 0.94     # measured 12-lead Se 0.969/0.963, PPV 0.949/0.946 at 100/500 Hz (graded synth)


@pytest.fixture(scope="module", params=sorted(SETS))
def ds(request):
    fs = request.param
    n, seed = SETS[fs]
    return synth.generate(synth.SynthConfig(n_records=n, fs=fs, seed=seed), task="all")


def noisy(ds, kind: str, snr: float):
    rp, ro = ds.extras["r_peaks"], ds.extras["r_offsets"]
    return electrodes.add_electrode_noise(ds.signals, kind, snr, ds.fs, [rp[ro[i]:ro[i + 1]] for i in range(len(ds))],
                                          seed=1)


def score(ds, x) -> dict:
    peaks, _, _ = detect_batch(x, ds.fs)
    return score_records(ds.extras["r_peaks"], ds.extras["r_offsets"], peaks, ds.fs)


def test_clean(ds):
    s = score(ds, ds.signals)
    print(f"\nsynth {ds.fs} Hz clean: Se {s['se']:.4f} PPV {s['ppv']:.4f}")
    assert s["se"] >= 0.995 and s["ppv"] >= 0.995, s


@pytest.mark.parametrize("kind", ["wgn", "ma", "em", "bw", "pl"])
def test_24db(ds, kind):
    s = score(ds, noisy(ds, kind, 24.0))
    print(f"\nsynth {ds.fs} Hz {kind} 24 dB: Se {s['se']:.4f} PPV {s['ppv']:.4f}")
    assert s["se"] >= 0.995 and s["ppv"] >= 0.995, s


@pytest.mark.parametrize("kind", ["wgn", "ma", "em"])
def test_12_and_6db_consensus_beats_lead_i(ds, kind):
    for snr in (12.0, 6.0):
        x = noisy(ds, kind, snr)
        multi, lead_i = score(ds, x), score(ds, x[:, :1])
        print(f"\nsynth {ds.fs} Hz {kind} {snr:g} dB: 12-lead Se {multi['se']:.4f} PPV {multi['ppv']:.4f} "
              f"F1 {multi['f1']:.4f} | lead I Se {lead_i['se']:.4f} PPV {lead_i['ppv']:.4f} F1 {lead_i['f1']:.4f}")
        # electrode motion moves one or two electrodes by as much as a QRS. On the graded synth (issue J part 3)
        # measured 12-lead Se/PPV at 12 dB 0.990/0.979 (100 Hz) and 0.986/0.978 (500 Hz); at 6 dB see EM_6DB
        bar = {("em", 12.0): 0.97, ("em", 6.0): EM_6DB}.get((kind, snr), 0.98)
        assert multi["se"] >= bar and multi["ppv"] >= bar, multi
        if snr == 6.0:
            assert multi["f1"] > lead_i["f1"], (multi, lead_i)
            assert multi["se"] + multi["ppv"] > lead_i["se"] + lead_i["ppv"]
