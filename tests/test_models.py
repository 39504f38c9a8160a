"""Issue C acceptance: the model registry, BEAT-Net and its ablations, the PTB-XL baselines."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from beat_ray.models import create, list_models, sliding_window_logits
from beat_ray.models.baselines import InceptionBlock, XBottleneck
from beat_ray.models.beatnet import BeatCNN, Block, LeadEncoder, RhythmEncoder

torch.set_num_threads(2)

BEATNETS = ["beatnet", "beatnet_tiny", "beatnet_small", "beatnet_base", "beatnet_no_morphology", "beatnet_no_shape",
            "beatnet_no_spatial", "beatnet_no_temporal", "beatnet_patch"]
BASELINES = ["xresnet1d101", "inception1d", "resnet1d_wang"]
C = 5


def token_batch(N: int = 3, B: int = 6, W: int = 70, n_valid=(4, 1, 6), seed: int = 0) -> dict[str, torch.Tensor]:
    """Beats left-packed as the tokenizer writes them; padding zero as the layout says."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(B)[None, :] < torch.tensor(n_valid)[:, None]
    rr = (0.6 + 0.3 * torch.rand(N, B, 2, generator=g)) * mask[..., None]
    return {"tokens": torch.randn(N, B, 12, W, generator=g) * mask[..., None, None], "beat_mask": mask,
            "rr": rr, "times": torch.cumsum(rr[..., 0], 1) * mask}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# registry and shapes

def test_registry_has_every_model_and_rejects_unknown_names():
    assert set(BEATNETS + BASELINES) <= set(list_models())
    with pytest.raises(KeyError, match="unknown model"):
        create("beatnet_large_typo", C)
    with pytest.raises(ValueError, match="fixes"):
        create("beatnet_no_spatial", C, spatial="attention")
    assert create("beatnet", C).model_name == "beatnet"


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name):
    torch.manual_seed(0)
    model = create(name, C)
    if model.input_kind == "tokens":
        assert model.token_mode in ("fixed", "patch")
        batch = token_batch()
    else:
        assert model.input_kind == "signal"
        batch = {"signal": torch.randn(2, 12, 250)}
    for train in (True, False):
        model.train(train)
        out = model(batch)
        assert out.shape == (len(next(iter(batch.values()))), C)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["beatnet", "beatnet_no_spatial", "beatnet_no_temporal", "beatnet_patch"])
def test_beatnet_accepts_any_window_length(name):
    """Global pooling in the beat CNN: 500 Hz windows (W=350) go through the same network."""
    model = create(name, C).eval()
    assert model(token_batch(W=350)).shape == (3, C)


def test_no_morphology_needs_its_window():
    model = create("beatnet_no_morphology", C, window=350).eval()
    assert model(token_batch(W=350)).shape == (3, C)
    with pytest.raises(ValueError, match="window=350"):
        model(token_batch(W=70))


def test_no_shape_sees_only_each_windows_level():
    """beatnet_no_shape: shuffling the samples inside every window (same mean, no shape) changes nothing,
    any W works; the full network does see the shuffle."""
    b = token_batch()
    shuffled = {**b, "tokens": b["tokens"][..., torch.randperm(70, generator=torch.Generator().manual_seed(1))]}
    torch.manual_seed(0)
    no_shape = create("beatnet_no_shape", C).eval()
    torch.manual_seed(0)
    full = create("beatnet", C).eval()
    with torch.no_grad():
        assert torch.allclose(no_shape(b), no_shape(shuffled), atol=1e-6)
        assert not torch.allclose(full(b), full(shuffled), atol=1e-3)
        assert no_shape(token_batch(W=350)).shape == (3, C)


def test_trainer_sizes_the_linear_window_for_the_trials_fs():
    """`--set fs=500` with beatnet_no_morphology: the trainer passes W=350, baselines get no fs kwarg."""
    from beat_ray.train.config import TrialConfig
    from beat_ray.train.loop import build_model, model_kwargs
    model = build_model(TrialConfig(model="beatnet_no_morphology", fs=500), C).eval()
    assert model(token_batch(W=350)).shape == (3, C)
    assert model_kwargs(TrialConfig(model="beatnet_no_morphology"))["window"] == 70
    assert model_kwargs(TrialConfig(model="resnet1d_wang", fs=500)) == {}


def test_declared_inputs_and_protocol():
    assert create("beatnet", C).token_mode == "fixed"
    assert create("beatnet_patch", C).token_mode == "patch"
    for name in BASELINES:
        m = create(name, C)
        assert (m.input_kind, m.crop_s, m.eval_win_s, m.eval_stride_s, m.eval_reduce) == \
            ("signal", 2.5, 2.5, 1.25, "max")


# ---------------------------------------------------------------------------------------------
# masking

@pytest.mark.parametrize("name", BEATNETS)
def test_padding_beats_do_not_change_logits(name):
    torch.manual_seed(0)
    assert_padding_ignored(create(name, C).eval())


def assert_padding_ignored(model: nn.Module) -> None:
    """Anything under the beat mask leaves the logits bit-identical; a real beat changes them."""
    batch = token_batch(n_valid=(4, 1, 6))
    pad = ~batch["beat_mask"]
    noisy = {k: v.clone() for k, v in batch.items()}
    noisy["tokens"][pad] = 100 * torch.randn_like(noisy["tokens"][pad])
    noisy["rr"][pad] = 7 * torch.rand_like(noisy["rr"][pad])
    noisy["times"][pad] = 1e3 * torch.rand_like(noisy["times"][pad])
    with torch.no_grad():
        a, b = model(batch), model(noisy)
    assert torch.equal(a, b)
    # and a real beat does change them (the check above is not vacuous)
    noisy["tokens"][0, 0] += 1.0
    with torch.no_grad():
        assert not torch.equal(a[0], model(noisy)[0])


@pytest.mark.parametrize("name", ["beatnet", "beatnet_no_temporal", "beatnet_no_spatial"])
def test_record_with_no_beats_is_finite(name):
    model = create(name, C).eval()
    batch = token_batch(n_valid=(0, 2, 0))
    with torch.no_grad():
        out = model(batch)
        assert torch.isfinite(out).all()
        all_empty = model(token_batch(n_valid=(0, 0, 0)))  # not one beat in the whole batch
    assert torch.isfinite(all_empty).all()
    assert torch.equal(all_empty[0], all_empty[2])  # nothing but CLS (or the empty mean) left


# ---------------------------------------------------------------------------------------------
# ablations really lack their module

def _param_names(name: str) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in create(name, C).named_parameters()}


def test_ablations_lack_their_module():
    full = _param_names("beatnet")
    full_model = create("beatnet", C)
    assert any(isinstance(m, BeatCNN) for m in full_model.modules())
    assert any(isinstance(m, LeadEncoder) for m in full_model.modules())
    assert any(isinstance(m, RhythmEncoder) for m in full_model.modules())

    no_morph = create("beatnet_no_morphology", C)
    assert not any(isinstance(m, (BeatCNN, nn.Conv1d)) for m in no_morph.modules())
    names = _param_names("beatnet_no_morphology")
    assert {k for k in names if k.startswith("morphology.")} == {"morphology.proj.weight", "morphology.proj.bias"}
    assert names["morphology.proj.weight"] == (32, 70)  # a linear map of the flattened window
    assert {k: v for k, v in names.items() if not k.startswith("morphology.")} == \
        {k: v for k, v in full.items() if not k.startswith("morphology.")}

    no_shape = create("beatnet_no_shape", C)
    assert not any(isinstance(m, (BeatCNN, nn.Conv1d)) for m in no_shape.modules())
    names = _param_names("beatnet_no_shape")
    assert names["morphology.proj.weight"] == (32, 1)   # one number per window: its mean level
    assert {k: v for k, v in names.items() if not k.startswith("morphology.")} == \
        {k: v for k, v in full.items() if not k.startswith("morphology.")}

    no_spatial = create("beatnet_no_spatial", C)
    assert not any(isinstance(m, LeadEncoder) for m in no_spatial.modules())
    names = _param_names("beatnet_no_spatial")
    assert not any(k.startswith("spatial.") or "lead_emb" in k for k in names)
    assert names == {k: v for k, v in full.items() if not k.startswith("spatial.")}

    no_temporal = create("beatnet_no_temporal", C)
    assert not any(isinstance(m, RhythmEncoder) for m in no_temporal.modules())
    names = _param_names("beatnet_no_temporal")
    assert {k for k in names if k.startswith("temporal.")} == {"temporal.ln.weight", "temporal.ln.bias"}
    assert not any(k.endswith("cls") or ".pos." in k for k in names)
    # only the lead encoder's one block is left
    assert sum(isinstance(m, Block) for m in no_temporal.modules()) == 1
    assert {k: v for k, v in names.items() if not k.startswith("temporal.")} == \
        {k: v for k, v in full.items() if not k.startswith("temporal.")}

    # the patch variant is the same network; only the tokens fed to it differ
    assert _param_names("beatnet_patch") == full


# ---------------------------------------------------------------------------------------------
# attention

@pytest.mark.parametrize("name", ["beatnet", "beatnet_base", "beatnet_no_spatial", "beatnet_no_temporal"])
def test_attention_weights(name):
    torch.manual_seed(0)
    model = create(name, C).eval()
    batch = token_batch(n_valid=(4, 1, 6))
    mask = batch["beat_mask"]
    ex = model.explain(batch)
    assert torch.equal(ex["logits"], model(batch))
    lead = ex["lead_attention"]
    assert lead.shape == (3, 6, 12)
    torch.testing.assert_close(lead[mask].sum(-1), torch.ones(int(mask.sum())), rtol=0, atol=1e-6)
    assert (lead[mask] >= 0).all() and (lead[~mask] == 0).all()
    temp = ex["temporal_attention"]
    assert temp.shape == (3, 6) and (temp[~mask] == 0).all() and (temp[mask] > 0).all()
    assert (temp.sum(-1) <= 1 + 1e-6).all()
    if name == "beatnet_no_spatial":
        assert torch.equal(lead[mask], torch.full_like(lead[mask], 1 / 12))
    if "temporal_attention_layers" in ex:
        layers = ex["temporal_attention_layers"]
        assert layers.shape == (3, model.cfg.temporal_layers, model.cfg.heads, 7, 7)
        real = torch.cat([torch.ones(3, 1, dtype=torch.bool), mask], 1)      # CLS + valid beats
        for i in range(3):
            rows = layers[i][..., real[i], :]
            torch.testing.assert_close(rows.sum(-1), torch.ones_like(rows.sum(-1)))
            assert (layers[i][..., ~real[i]] == 0).all()                     # nobody attends padding
    else:  # masked mean: uniform over the valid beats
        torch.testing.assert_close(temp.sum(-1), torch.ones(3))


# ---------------------------------------------------------------------------------------------
# gradients

@pytest.mark.parametrize("name", BEATNETS + BASELINES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create(name, C).train()
    batch = token_batch() if model.input_kind == "tokens" else {"signal": torch.randn(4, 12, 250)}
    y = (torch.rand(len(next(iter(batch.values()))), C) < 0.5).float()
    F.binary_cross_entropy_with_logits(model(batch), y).backward()
    grads = dict(model.named_parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in grads.values())
    zero = [k for k, p in grads.items() if not p.grad.abs().sum() > 0]
    if name == "xresnet1d101":
        # every block starts as the identity (last BN weight 0), so inside the residual branches
        # only that BN gets a gradient at step 0 -- which is how it leaves zero
        assert zero and all(k.split(".")[-3:-1] != ["2", "1"] for k in zero)
        assert all(k.split(".")[3] == "convs" for k in zero)
        model = create(name, C, zero_init_last_bn=False).train()
        F.binary_cross_entropy_with_logits(model(batch), y).backward()
        zero = [k for k, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert zero == []


# ---------------------------------------------------------------------------------------------
# baselines: the published architectures

# 12 input leads. C=5 (superdiagnostic) and C=71 (all statements). See the closing note of issue C
# for the derivation; every difference between C=5 and C=71 is the last Linear: 66 * 129 = 8514.
PARAMS = {
    ("xresnet1d101", 5): 1_872_261, ("xresnet1d101", 71): 1_880_775,
    ("inception1d", 5): 507_653, ("inception1d", 71): 516_167,
    ("resnet1d_wang", 5): 473_349, ("resnet1d_wang", 71): 481_863,
}


@pytest.mark.parametrize("name,n_classes", list(PARAMS))
def test_baseline_parameter_counts(name, n_classes):
    assert n_params(create(name, n_classes)) == PARAMS[(name, n_classes)]


def test_baseline_structure():
    x = create("xresnet1d101", C)
    blocks = [m for m in x.modules() if isinstance(m, XBottleneck)]
    assert len(blocks) == 3 + 4 + 23 + 3
    assert [len(s) for s in x.body[4:]] == [3, 4, 23, 3]
    assert [c.in_channels for c in x.body[:3].modules() if isinstance(c, nn.Conv1d)] == [12, 32, 32]
    assert x.body[0][0].stride == (2,) and isinstance(x.body[3], nn.MaxPool1d)
    assert all(b.convs[1][0].kernel_size == (5,) for b in blocks)
    assert all(b.convs[2][1].weight.abs().sum() == 0 for b in blocks)           # zero-init last BN
    assert [b.convs[1][0].stride[0] for b in blocks].count(2) == 3              # start of stages 2-4
    assert sum(isinstance(m, nn.AvgPool1d) for b in blocks for m in b.idpath.modules()) == 3
    assert all(b.convs[2][0].out_channels == 256 for b in blocks)

    inc = create("inception1d", C)
    ib = [m for m in inc.modules() if isinstance(m, InceptionBlock)]
    assert len(ib) == 6 and len(inc.body.shortcuts) == 2
    assert all([c.kernel_size[0] for c in b.convs] == [39, 19, 9] for b in ib)
    assert all(b.bottleneck.out_channels == 32 and b.bn_relu[0].num_features == 128 for b in ib)

    wang = create("resnet1d_wang", C)
    convs = [m for m in wang.modules() if isinstance(m, nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 3, 5, 3, 1, 5, 3, 1]

    for m in (x, inc, wang):
        head = [type(layer).__name__ for layer in m.head]
        assert head == ["ConcatPool1d", "BatchNorm1d", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
        assert [d.p for d in m.head if isinstance(d, nn.Dropout)] == [0.25, 0.5]
        assert m.head[3].out_features == 128 and m.head[-1].out_features == C


def test_sliding_window_logits_is_max_over_benchmark_windows():
    torch.manual_seed(0)
    model = create("resnet1d_wang", C).eval()
    sig = torch.randn(2, 12, 1000)
    with torch.no_grad():
        got = sliding_window_logits(model, sig, fs=100)
        wins = [model({"signal": sig[..., s:s + 250]}) for s in (0, 125, 250, 375, 500, 625, 750)]
        torch.testing.assert_close(got, torch.stack(wins).amax(0), rtol=1e-5, atol=1e-5)
        mean = sliding_window_logits(model, sig, fs=100, reduce="mean")
        torch.testing.assert_close(mean, torch.stack(wins).mean(0), rtol=1e-5, atol=1e-5)
        short = sig[..., :200]  # shorter than one window: scored whole
        torch.testing.assert_close(sliding_window_logits(model, short, fs=100), model({"signal": short}))


def test_models_package_imports_no_ray_train_or_readers():
    code = ("import sys, beat_ray.models; bad = [m for m in sys.modules if m == 'ray' or m.startswith("
            "('ray.', 'beat_ray.train', 'beat_ray.data'))]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_beatnet_sizes_grow():
    counts = [n_params(create("beatnet", C, size=s)) for s in ("tiny", "small", "base")]
    assert counts == sorted(counts) and counts[0] < 50_000 and counts[2] > 500_000


# ---------------------------------------------------------------------------------------------
# learnability: one short seeded run in plain PyTorch.
# The budget (20 epochs, lr 2e-3) and the gates were measured over seeds, not at the test's seed alone
# (scratch probe, 2026-12-04): at the old 12 epochs and lr 5e-3 the tiny task's mean AUC was 0.84-0.995
# over torch/data seeds 0-7 (two of eight below 0.9; the rhythm label at 0.61 at seed 2), and seed 0 was
# the best of the eight. At 20 epochs and 2e-3: mean 0.932-0.998, every label >= 0.797, at all eight.

LEADS_ST = [1, 2, 5]       # II, III, aVF: an inferior ST elevation
LEADS_WIDE = [6, 7, 8]     # V1-V3: a wide QRS seen only there


def synth_token_task(n: int, seed: int, B: int = 16, W: int = 70, fs: float = 100.0):
    """Three independent labels, one per encoder: a wide QRS in V1-V3 (morphology in some leads),
    ST elevation in II/III/aVF (amplitude in a territory), and an irregular rhythm (RR only).
    Beats follow the token layout: R at 0.25 s into a 0.7-s window, padding zero."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, 3)) < 0.5
    t = (np.arange(W) - 0.25 * fs) / fs                          # seconds from R
    gain = rng.uniform(0.6, 1.4, 12) * np.where(rng.random(12) < 0.2, -1, 1)
    tokens = np.zeros((n, B, 12, W), np.float32)
    mask = np.zeros((n, B), bool)
    rr = np.zeros((n, B, 2), np.float32)
    times = np.zeros((n, B), np.float32)
    for i in range(n):
        nb = rng.integers(8, 13)
        base = rng.uniform(0.7, 1.0)
        spread = 0.35 if y[i, 2] else 0.03
        ivals = base * np.clip(1 + spread * rng.uniform(-1, 1, nb + 1), 0.4, None)
        r = 0.4 + np.cumsum(ivals[:nb])
        qrs_w = np.full(12, 0.012)
        qrs_w[LEADS_WIDE] = 0.03 if y[i, 0] else 0.012
        beat = (gain[:, None] * (np.exp(-0.5 * (t / qrs_w[:, None]) ** 2)
                                 + 0.25 * np.exp(-0.5 * ((t - 0.28) / 0.04) ** 2)
                                 + 0.1 * np.exp(-0.5 * ((t + 0.16) / 0.02) ** 2)))
        if y[i, 1]:
            beat[LEADS_ST] += 0.25 * ((t > 0.05) & (t < 0.3))
        amp = rng.uniform(0.8, 1.2)
        tokens[i, :nb] = amp * beat + 0.05 * rng.standard_normal((nb, 12, W))
        mask[i, :nb] = True
        rr[i, :nb, 0], rr[i, :nb, 1] = ivals[:nb], ivals[1:nb + 1]
        times[i, :nb] = r
    batch = {"tokens": torch.from_numpy(tokens), "beat_mask": torch.from_numpy(mask),
             "rr": torch.from_numpy(rr), "times": torch.from_numpy(times)}
    return batch, torch.from_numpy(y.astype(np.float32))


def test_beatnet_learns_a_synthetic_task():
    torch.manual_seed(0)
    train, y_train = synth_token_task(320, seed=0)
    test, y_test = synth_token_task(160, seed=1)
    t0 = time.perf_counter()
    aucs = _fit_eval(create("beatnet", 3), train, y_train, test, y_test)  # tiny
    print(f"per-label AUC (wide QRS, ST, irregular) {np.round(aucs, 3)} in {time.perf_counter() - t0:.1f} s")
    # each label needs one encoder, so each must be learned (chance is 0.5)
    assert len(aucs) == 3 and np.mean(aucs) >= 0.9 and min(aucs) >= 0.7

def _fit_eval(model: nn.Module, train: dict, y_train: torch.Tensor, test: dict, y_test: torch.Tensor,
              epochs: int = 20, bs: int = 32, lr: float = 2e-3) -> list[float]:
    from sklearn.metrics import roc_auc_score

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, pct_start=0.2, total_steps=epochs * -(-len(y_train) // bs))
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_train), generator=g).split(bs):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(model({k: v[idx] for k, v in train.items()}), y_train[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        scores = model(test).numpy()
    return [roc_auc_score(y_test[:, j].numpy(), scores[:, j]) for j in range(y_test.shape[1])
            if 0 < y_test[:, j].sum() < len(y_test)]


@pytest.mark.slow
def test_beatnet_learns_synth_superdiagnostic_from_real_tokens():
    """The same check end to end on the project's own `synth` data and tokenizer (issues A and B)."""
    synth = pytest.importorskip("beat_ray.data.synth")
    tok_mod = pytest.importorskip("beat_ray.tokenize")
    ds = synth.generate(synth.SynthConfig(n_records=480, fs=100, seed=0), task="superdiagnostic")
    tokens = tok_mod.tokenize(ds.signals, ds.fs, tok_mod.TokenizerConfig())
    batch = {k: torch.from_numpy(np.asarray(v)) for k, v in tokens.batch(slice(None)).items()}
    y = torch.from_numpy(ds.labels.astype(np.float32))
    usable = tokens.flags == ""
    tr, te = np.flatnonzero((ds.folds <= 8) & usable), np.flatnonzero((ds.folds > 8) & usable)
    assert len(tr) > 300 and len(te) > 60
    torch.manual_seed(0)
    t0 = time.perf_counter()
    aucs = _fit_eval(create("beatnet", y.shape[1]), {k: v[tr] for k, v in batch.items()}, y[tr],
                     {k: v[te] for k, v in batch.items()}, y[te], epochs=12, lr=5e-3)
    print(f"{ds.classes} AUC {np.round(aucs, 3)} in {time.perf_counter() - t0:.1f} s")
    # Graded synth (generator 2, label noise): well above chance, not at ceiling. The old gate (0.9) held only
    # at seed 0 (0.905); synth/torch seeds 0-5 give 0.76-0.905 at this budget (0.77-0.90 at 20 epochs, 2e-3,
    # which costs twice the time for no firmer answer).
    assert len(aucs) == y.shape[1] and np.mean(aucs) >= 0.7
