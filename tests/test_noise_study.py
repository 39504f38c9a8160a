"""Issue J part 1 in the studies: eval/train noise goes through the electrode model (inputs._noisy).

One realisation per (record, type): the same for a record in any batch, at every SNR, and for every
model; NSTDB records reach a study through `noise_source`; per-record noisy scores are stored so the
report can pair models; powerline at 100 Hz is added at 500 Hz and removed by the anti-alias filter.
"""
from __future__ import annotations

import numpy as np
import pytest
from formats import write_nstdb
from scipy import signal as sps

from beat_ray.data import load
from beat_ray.data.errors import RecordError
from beat_ray.models import create
from beat_ray.train.config import TrialConfig
from beat_ray.train.inputs import _noisy, build_inputs, nstdb_noise
from beat_ray.train.loop import fit
from beat_ray.train.metrics import evaluate

I, II, III = 0, 1, 2  # noqa: E741 (the lead names)


@pytest.fixture(scope="module")
def ds():
    return load("synth", n_records=40, fs=100, progress=False)


def _data(ds, model: str, **cfg):
    kw = {"size": "tiny"} if model == "beatnet" else {"width": 16}
    c = TrialConfig(model=model, n_records=40, **cfg)
    return build_inputs(c, create(model, len(ds.classes), **kw), ds)


def _noise(data, idx, spec, seed=0):
    x = np.asarray(data.ds.signals[idx], np.float64)
    return _noisy(data, x.astype(np.float32), np.asarray(idx), spec, seed).astype(np.float64) - x


def test_one_realisation_per_record_and_type_across_batches_snrs_and_models(ds):
    sig, tok = _data(ds, "resnet1d_wang"), _data(ds, "beatnet")
    a = _noise(sig, [3, 5], "bw:6")[1]
    np.testing.assert_allclose(a, _noise(sig, [5], "bw:6")[0], atol=1e-5)          # batch-independent
    np.testing.assert_allclose(a, _noise(tok, [7, 5], "bw:6")[1], atol=1e-5)       # model-independent
    b = _noise(sig, [5], "bw:12")[0]
    np.testing.assert_allclose(a, b * 10 ** (6 / 20), atol=1e-4)                    # one draw, rescaled
    assert not np.allclose(a, _noise(sig, [5], "bw:6", seed=1)[0], atol=1e-3)       # seed matters
    assert not np.allclose(a, _noise(sig, [5], "ma:6")[0], atol=1e-3)               # each type its own draw
    np.testing.assert_allclose(a[I] + a[III], a[II], atol=1e-5)                    # Einthoven on the noise


def test_nstdb_source_reaches_the_study_and_a_missing_record_names_its_file(ds, tmp_path):
    write_nstdb(tmp_path, "ma", seconds=30)
    real = _data(ds, "resnet1d_wang", noise_source=f"nstdb:{tmp_path}")
    gen = _data(ds, "resnet1d_wang")

    def low_share(n):            # power below 3 Hz: the fixture is a random walk, generated ma is > 20 Hz
        f, p = sps.welch(n, fs=100, nperseg=256, axis=-1)
        return float(p[..., f < 3].sum() / p.sum())

    assert low_share(_noise(real, [1, 2], "ma:6")) > 0.8
    assert low_share(_noise(gen, [1, 2], "ma:6")) < 0.1
    assert nstdb_noise(f"nstdb:{tmp_path}", "pl", 100.0) is None                   # NSTDB has no pl record
    with pytest.raises(RecordError, match="bw.hea"):
        nstdb_noise(f"nstdb:{tmp_path}", "bw", 100.0)
    with pytest.raises(ValueError, match="noise_source"):
        TrialConfig(noise_source=str(tmp_path))
    with pytest.raises(ValueError, match="noise spec 'xx:3'"):
        TrialConfig(eval_noise=("xx:3",))


def test_eval_noise_stores_per_record_scores_and_pl_at_100_hz_is_filtered_out():
    cfg = TrialConfig(model="resnet1d_wang", model_kwargs={"width": 16}, n_records=120, epochs=1, batch_size=32,
                      eval_noise=("wgn:0", "pl:-6"))
    m = fit(cfg)
    p = m["_predictions"]
    assert list(p["noise_specs"]) == ["wgn:0", "pl:-6"]
    assert p["noise_scores"].shape == (2,) + p["scores"].shape
    auc = evaluate(p["labels"], p["noise_scores"][0], list(p["classes"]))["macro_auc"]
    assert auc == pytest.approx(m["noise/wgn/0/macro_auc"], abs=1e-12)
    moved = np.abs(p["noise_scores"] - p["scores"]).mean(axis=(1, 2))
    print("mean |score change|: wgn 0 dB", moved[0], "pl -6 dB", moved[1])
    assert moved[0] > 0.01                                                          # 0 dB white noise shows
    # 50 Hz mains at -6 dB, added at 500 Hz: the 100-Hz record keeps < -40 dB of it, scores barely move
    assert moved[1] < 0.05 * moved[0]
    assert m["noise/snr_fallback_records"] == 0
