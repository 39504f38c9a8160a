"""The GPU path, checked on CPU (issue 36): what a GPU trial trains on and how it feeds the device.

Every model runs under bf16 autocast; BEAT-Net's forward asks the device nothing (no nonzero) when
the batch carries its gather indices; cached tokens are checked once, the loss every
LOSS_CHECK_STEPS steps; batches built ahead in a thread equal those of a plain loop. DDP ranks:
tests/test_ddp_ranks.py.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from beat_ray.data.signal import LeadStandardizer
from beat_ray.models import create, list_models
from beat_ray.models.beatnet import INDEX_KEYS, beat_index
from beat_ray.tokenize import Tokens
from beat_ray.train import loop
from beat_ray.train.config import TrialConfig
from beat_ray.train.devices import (
    CUBLAS_WORKSPACE,
    autocast,
    configure_cuda,
    prefetched,
)
from beat_ray.train.inputs import (
    NonFiniteError,
    TrialData,
    check_token_rows,
    make_batch,
)
from beat_ray.train.results import make_row

C = 5
SMALL = dict(dataset="synth", task="all", n_records=60, epochs=1, batch_size=8, threads=1)


def token_batch(N: int = 3, B: int = 6, W: int = 70, n_valid=(4, 0, 6), seed: int = 0) -> dict[str, torch.Tensor]:
    """Beats left-packed as the tokenizer writes them (slot 5 used by one record only, one record empty)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(B)[None, :] < torch.tensor(n_valid)[:, None]
    rr = (0.6 + 0.3 * torch.rand(N, B, 2, generator=g)) * mask[..., None]
    return {"tokens": torch.randn(N, B, 12, W, generator=g) * mask[..., None, None], "beat_mask": mask,
            "rr": rr, "times": torch.cumsum(rr[..., 0], 1) * mask}


def fake_data(kind: str, n: int = 40, T: int = 1000, seed: int = 0) -> TrialData:
    """A TrialData without a dataset on disk: enough for make_batch and train_epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.random((n, C)) < 0.4
    sig = rng.normal(0, 1, (n, 12, T)).astype(np.float32)
    tokens, scaler = None, None
    if kind == "tokens":
        B, W = 8, 70
        mask = np.arange(B)[None] < rng.integers(1, B + 1, n)[:, None]
        rr = (0.6 + 0.3 * rng.random((n, B, 2))).astype(np.float32) * mask[..., None]
        tokens = Tokens(tokens=rng.normal(0, 1, (n, B, 12, W)).astype(np.float32) * mask[..., None, None],
                        beat_mask=mask, rr=rr, times=np.cumsum(rr[..., 0], 1) * mask,
                        r_peaks=np.zeros((n, B), np.int64), n_beats=mask.sum(1), flags=np.array([""] * n, object))
    else:
        scaler = LeadStandardizer().fit(sig)
    ds = SimpleNamespace(signals=sig, fs=100.0, labels=labels)
    idx = np.arange(n)
    return TrialData(ds, tokens, scaler, idx[: n - 8], idx[n - 8: n - 4], idx[n - 4:], kind, None,
                     np.zeros(n, bool), labels[: n - 8].mean(0).astype(np.float32))


def _optim(model: nn.Module, cfg: TrialConfig, data: TrialData):
    return loop.make_optimizer(cfg, model, loop.steps_per_epoch(cfg, data)[0])


# ---------------------------------------------------------------------------------------------
# (b) mixed precision

@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_under_bf16_autocast(name):
    torch.manual_seed(0)
    model = create(name, C, **({"window": 70} if name == "beatnet_no_morphology" else {}))
    batch = token_batch() if model.input_kind == "tokens" else {"signal": torch.randn(2, 12, 250)}
    with torch.no_grad():
        ref = model.eval()(batch)
        with autocast("bf16", "cpu"):
            low = model(batch).float()
    model.train()
    with autocast("bf16", "cpu"):
        out = model(batch)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max()            # measured: at most 0.016


def test_bf16_trial_runs_and_its_row_says_so(beat_ray_cache):
    for model, kw in (("beatnet", {"size": "tiny"}), ("resnet1d_wang", {"width": 8})):
        cfg = TrialConfig(**SMALL, model=model, model_kwargs=kw, precision="bf16", eval_noise=("ma:6",),
                          attribution_steps=1)
        m = loop.fit(cfg)
        assert np.isfinite(m["train_loss"]) and 0.0 <= m["test/macro_auc"] <= 1.0
        assert m["_predictions"]["scores"].dtype == np.float32
        row = make_row(cfg.to_dict(), m, "t0")
        assert row["config/precision"] == "bf16" and row["config/gpu_deterministic"] is False
        assert (row["world_size"], row["global_batch"]) == (1, 8)
    with pytest.raises(ValueError, match="unknown precision"):
        TrialConfig(precision="fp16")


def test_new_fields_at_their_defaults_keep_every_config_hash():
    assert TrialConfig(precision="fp32", gpu_deterministic=False).config_hash() == "f45d9d79272cbd0e"   # HEAD's
    assert TrialConfig(precision="bf16").config_hash() != TrialConfig().config_hash()


# ---------------------------------------------------------------------------------------------
# (c) BEAT-Net's gathers use host indices: no nonzero (a GPU->CPU sync) in forward or backward

def _nonzero_calls(fn) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::nonzero")


def test_beat_index_matches_boolean_mask_indexing():
    b = token_batch()
    mask = b["beat_mask"]
    ix = beat_index(mask)
    N, B = mask.shape
    assert torch.equal(b["tokens"].reshape(N * B, 12, -1)[ix["beat_valid"]], b["tokens"][mask])
    keep = mask.any(0)
    assert torch.equal(ix["beat_keep"], keep.nonzero().squeeze(1))
    v = torch.arange(1, len(ix["beat_valid"]) + 1.0)
    by_mask = torch.zeros(N, int(keep.sum()))
    by_mask[mask[:, keep]] = v
    by_index = torch.zeros(N * int(keep.sum()))
    by_index[ix["beat_slot"]] = v
    assert torch.equal(by_index.view(N, -1), by_mask)


@pytest.mark.parametrize("name", [m for m in list_models() if m.startswith("beatnet")])
def test_beatnet_step_has_no_nonzero_with_host_indices(name):
    torch.manual_seed(0)
    model = create(name, C).train()
    plain = token_batch()
    indexed = {**plain, **beat_index(plain["beat_mask"])}
    runs = []
    for batch in (plain, indexed):
        model.zero_grad()
        torch.manual_seed(1)
        out: list[torch.Tensor] = []
        n = _nonzero_calls(lambda batch=batch, out=out: (out.append(model(batch)), out[0].sum().backward()))
        runs.append((n, [p.grad.clone() for p in model.parameters()] + [out[0].detach()]))
    (n_plain, grads_plain), (n_indexed, grads_indexed) = runs
    assert n_plain > 0 and n_indexed == 0, (n_plain, n_indexed)
    assert all(torch.equal(a, b) for a, b in zip(grads_plain, grads_indexed))   # the same numbers, bit for bit


def test_token_batches_carry_their_indices():
    data = fake_data("tokens")
    b = make_batch(data, np.array([5, 2, 9]), train=True, rng=np.random.default_rng(0))
    ix = beat_index(b["beat_mask"])
    assert all(torch.equal(b[k], ix[k]) for k in INDEX_KEYS)
    model = create("beatnet", C).eval()
    with torch.no_grad():
        ex = model.explain(b)
        bare = model.explain({k: b[k] for k in ("tokens", "beat_mask", "rr", "times")})
    assert all(torch.equal(ex[k], bare[k]) for k in ex)


# ---------------------------------------------------------------------------------------------
# (d) finiteness: cached tokens once per trial, the loss every LOSS_CHECK_STEPS steps

class NanAt(nn.Module):
    """A signal model whose logits are NaN at one training step."""

    input_kind, crop_s = "signal", 2.5

    def __init__(self, step: int):
        super().__init__()
        self.lin, self.step, self.calls = nn.Linear(12, C), step, 0

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        out = self.lin(batch["signal"].mean(-1))
        return out * float("nan") if self.calls == self.step + 1 else out


@pytest.mark.parametrize("step,first,last", [(3, 0, 49), (57, 50, 65)])
def test_non_finite_loss_names_its_step(step, first, last):
    data = fake_data("signal", n=140)
    cfg = TrialConfig(batch_size=2, epochs=1)
    model = NanAt(step)
    with pytest.raises(NonFiniteError, match=rf"in epoch 0, step {step} \(losses of steps {first}-{last} "):
        loop.train_epoch(model, data, *_optim(model, cfg, data), cfg, epoch=0)


def test_cached_tokens_are_checked_once_not_per_step(monkeypatch):
    data = fake_data("tokens")
    calls = []
    monkeypatch.setattr(loop, "check_finite", lambda *a: calls.append(a))
    cfg = TrialConfig(batch_size=8, epochs=1)
    model = create("beatnet", C)
    loss, steps = loop.train_epoch(model, data, *_optim(model, cfg, data), cfg, epoch=0)
    assert steps == 4 and np.isfinite(loss) and calls == []
    check_token_rows(data, 0)                                     # clean
    data.tokens.rr[int(data.test[0]), 0, 0] = np.nan               # not a training record: not checked
    check_token_rows(data, 0)
    data.tokens.times[int(data.train[7]), 1] = np.inf
    with pytest.raises(NonFiniteError, match=r"non-finite input 'times' in epoch 3, records \[7\]"):
        check_token_rows(data, 3)


def test_signal_batches_are_still_checked_per_step():
    data = fake_data("signal")
    data.ds.signals[int(data.train[0]), 3] = np.inf
    cfg = TrialConfig(batch_size=8, epochs=1)
    model = create("resnet1d_wang", C, width=8)
    with pytest.raises(NonFiniteError, match="non-finite input 'signal' in epoch 2"):
        loop.train_epoch(model, data, *_optim(model, cfg, data), cfg, epoch=2)


# ---------------------------------------------------------------------------------------------
# (e) batches built one step ahead

@pytest.mark.parametrize("kind", ["signal", "tokens"])
def test_prefetched_batches_equal_a_plain_loop(kind):
    data = fake_data(kind)
    order = [data.train[i:i + 5] for i in range(0, len(data.train), 5)]

    def batches(rng):
        return lambda idx: make_batch(data, idx, train=True, rng=rng, crop_s=2.5)

    make = batches(np.random.default_rng(7))
    plain = [make(idx) for idx in order]
    ahead = list(prefetched(batches(np.random.default_rng(7)), order))
    assert len(plain) == len(ahead) == 7
    for a, b in zip(plain, ahead):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and not b[k].is_pinned() for k in a)


def test_prefetch_raises_at_the_failing_item():
    def build(i: int) -> int:
        if i == 2:
            raise ValueError("item 2")
        return i

    items = prefetched(build, [0, 1, 2, 3])
    assert [next(items), next(items)] == [0, 1]
    with pytest.raises(ValueError, match="item 2"):
        next(items)


# ---------------------------------------------------------------------------------------------
# (f) GPU determinism switches

def test_cublas_workspace_is_set_before_cuda_starts_and_cuda_settings_skip_cpu():
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (CUBLAS_WORKSPACE, os.environ.get("BEAT_RAY_TEST_CUBLAS"))
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    configure_cuda(deterministic=True, fixed_shapes=True)
    if not torch.cuda.is_available():                            # CPU: nothing to set, nothing set
        assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
