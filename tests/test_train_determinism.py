"""The loop's determinism guarantee (loop.py): same seed + config -> identical metrics and scores,
another seed -> different ones, and a run resumed from the epoch-1 checkpoint ends exactly where the
uninterrupted run ends. No Ray here: this is `fit` itself, on CPU."""
from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit

MODELS = {"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32}}


def _cfg(model: str, seed: int = 0) -> TrialConfig:
    return TrialConfig(model=model, model_kwargs=MODELS[model], dataset="synth", task="all", n_records=120,
                       epochs=2, batch_size=32, seed=seed, threads=1)


def _public(m: dict) -> dict:
    return {k: v for k, v in m.items() if not k.startswith("_") and k not in ("train_seconds", "data_origin")}   # time and provenance


def _assert_same(a: dict, b: dict) -> None:
    pa, pb = _public(a), _public(b)
    assert pa.keys() == pb.keys()
    # exact equality; a class absent from the tiny test split has AUC NaN in both runs
    diff = {k: (pa[k], pb[k]) for k in pa
            if pa[k] != pb[k] and not (isinstance(pa[k], float) and np.isnan(pa[k]) and np.isnan(pb[k]))}
    assert diff == {}
    for k in ("scores", "labels", "record_id"):
        np.testing.assert_array_equal(a["_predictions"][k], b["_predictions"][k])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_same_seed_same_metrics_and_resume_from_epoch_1(model, beat_ray_cache):
    cfg = _cfg(model)
    saved: list[bytes] = []

    def on_epoch(metrics, state_fn):
        if metrics["epoch"] == 1:            # the checkpoint a Tune trial writes after epoch 1
            buf = io.BytesIO()
            torch.save(state_fn(), buf)
            saved.append(buf.getvalue())

    a = fit(cfg, on_epoch=on_epoch)
    b = fit(cfg)
    assert a["epoch"] == 2 and 0.0 <= a["test/macro_auc"] <= 1.0
    assert np.isfinite(a["test/macro_auc"]) and np.isfinite(a["val_macro_auc"])
    assert a["_predictions"]["scores"].shape == (a["n_test"], len(a["_predictions"]["classes"]))
    _assert_same(a, b)
    # BEAT-Net's per-record lead attention (issue E, Fig. 3) travels with the test predictions
    att = a["_predictions"].get("lead_attention")
    if model == "beatnet":
        assert att.shape == (a["n_test"], 12)
        np.testing.assert_allclose(att.sum(1), 1.0, atol=1e-5)   # a distribution over the 12 leads
        np.testing.assert_array_equal(att, b["_predictions"]["lead_attention"])
    else:
        assert att is None

    # resume: a fresh process would load the checkpoint file; so does this (bytes -> torch.load)
    assert len(saved) == 1
    state = torch.load(io.BytesIO(saved[0]), weights_only=False)
    assert state["epoch"] == 0 and len(state["history"]) == 1
    resumed_epochs: list[int] = []
    r = fit(cfg, state=state, on_epoch=lambda m, _: resumed_epochs.append(m["epoch"]))
    assert resumed_epochs == [2]             # only the remaining epoch ran
    _assert_same(a, r)

    c = fit(_cfg(model, seed=1))
    assert c["test/macro_auc"] != a["test/macro_auc"]
    assert not np.array_equal(c["_predictions"]["scores"], a["_predictions"]["scores"])


def test_reading_the_loss_in_chunks_and_bf16_reruns_change_nothing(beat_ray_cache, monkeypatch):
    """The loss is read back every LOSS_CHECK_STEPS steps (one device sync), not every step: the row is the
    same either way. A bf16 trial is as reproducible on CPU as an fp32 one (but not equal to it)."""
    from beat_ray.train import loop

    cfg = TrialConfig(model="beatnet", model_kwargs={"size": "tiny"}, dataset="synth", task="all", n_records=120,
                      epochs=1, batch_size=8, threads=1)
    monkeypatch.setattr(loop, "LOSS_CHECK_STEPS", 1)
    every = fit(cfg)
    monkeypatch.setattr(loop, "LOSS_CHECK_STEPS", 5)
    chunked = fit(cfg)
    assert chunked["optimizer_steps"] > 5
    _assert_same(every, chunked)
    low = replace(cfg, precision="bf16")
    a, b = fit(low), fit(low)
    _assert_same(a, b)
    assert a["train_loss"] != every["train_loss"]


# make_batch's outputs at a226739, the commit before the GPU path (issue 36) added prefetching and the gather
# indices: sha256 (first 16 hex digits) of each tensor's bytes, synth 60 records, the first 8 training records
GOLDEN_BATCHES = {
    ("beatnet", True): {"beat_mask": "f94df278b74447b3", "rr": "722f0ea84ac7c842", "times": "66422cfb0af73d15",
                        "tokens": "980476fc1bc6e68a"},
    ("beatnet", False): {"beat_mask": "f94df278b74447b3", "rr": "722f0ea84ac7c842", "times": "66422cfb0af73d15",
                         "tokens": "980476fc1bc6e68a"},
    ("resnet1d_wang", True): {"signal": "c6d32834e4bfaba6"},          # a 2.5-s training crop
    ("resnet1d_wang", False): {"signal": "905f47416720deb5"},         # the whole 10-s record
}


@pytest.mark.parametrize("model", ["beatnet", "resnet1d_wang"])
def test_cpu_batches_are_bit_identical_to_before_the_gpu_path(model, beat_ray_cache):
    """The batches every CPU result trained on did not move: each tensor a226739's make_batch built is built
    again byte for byte (the gather indices beside them are new keys)."""
    import hashlib

    from beat_ray.train.inputs import build_inputs, load_dataset, make_batch
    from beat_ray.train.loop import build_model
    cfg = TrialConfig(dataset="synth", task="all", n_records=60, epochs=1, batch_size=8, threads=1, model=model)
    ds = load_dataset(cfg)
    m = build_model(cfg, len(ds.classes))
    data = build_inputs(cfg, m, ds)
    rng = np.random.default_rng([0, 0])
    for train in (True, False):
        b = make_batch(data, data.train[:8], train=train, rng=rng, crop_s=getattr(m, "crop_s", None) if train else None)
        got = {k: hashlib.sha256(b[k].numpy().tobytes()).hexdigest()[:16] for k in GOLDEN_BATCHES[(model, train)]}
        assert got == GOLDEN_BATCHES[(model, train)], (model, train)
