"""Receptive field of each real500 model at 100 and 500 Hz, in samples and in seconds.

    .venv/bin/python benchmarks/receptive_fields.py        # writes benchmarks/out/receptive_fields.json

Why: the CNNs keep their kernels in samples, as the PTB-XL benchmark's nets do, so at 500 Hz one output of
their last conv sees a fifth of the time it sees at 100 Hz; BEAT-Net's BeatCNN is sized in seconds (`rf_s`),
so its field stays put. Table 1c's Δ(500 − 100) reads differently for each, and the issue asks which field
each model had.

CNNs: measured, not derived (residual and inception branches run in parallel): the span of input samples
whose gradient is nonzero for the centre position of the feature map the head pools, on a 30-s input, the
union over 8 random inputs (a ReLU that happens to be off hides a sample from one input, not from all), with
every norm's scale set to 1 (the theoretical field of every path, not an untrained net's effective one).
BEAT-Net: the BeatCNN's conv stack, from its kernels and strides (one chain, so exact), beside the token
window it reads; a positive control checks the gradient measure on that chain.
"""
from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import json
from pathlib import Path

import torch

from beat_ray.models import create
from beat_ray.models.baselines import ConcatPool1d
from beat_ray.models.beatnet import beatnet_config, kernels_for, receptive_field
from beat_ray.tokenize.layout import TokenizerConfig
from beat_ray.train.results import git_info

REPO = Path(__file__).resolve().parents[1]
CNNS = ("resnet1d_wang", "xresnet1d101", "inception1d")
# what the real500 preset gives beatnet: the default field, 23 samples at 100 Hz, held in seconds
BEATNET_RF_S = 0.23


def measured(model: torch.nn.Module, stage: torch.nn.Module, x_shape: tuple[int, ...], forward,
             repeats: int = 8) -> int:
    """Union, over random inputs, of the input span that reaches the centre output of `stage`."""
    feats = {}
    hook = stage.register_forward_pre_hook(lambda _, args: feats.__setitem__("h", args[0]))
    gen = torch.Generator().manual_seed(0)
    lo: int | None = None
    hi: int | None = None
    try:
        for _ in range(repeats):
            x = torch.randn(x_shape, generator=gen, dtype=torch.float64, requires_grad=True)
            forward(x)
            h = feats["h"]
            h[..., h.shape[-1] // 2].sum().backward()
            g = x.grad.abs().sum(dim=tuple(range(x.dim() - 1)))
            idx = torch.nonzero(g > 0).flatten()
            lo = int(idx[0]) if lo is None else min(lo, int(idx[0]))
            hi = int(idx[-1]) if hi is None else max(hi, int(idx[-1]))
    finally:
        hook.remove()
    return hi - lo + 1


def architectural(model: torch.nn.Module) -> torch.nn.Module:
    """Every norm's scale set to 1: xresnet zero-initialises the last BatchNorm of each residual branch, so an
    untrained net's branches pass no gradient and would hide all but the identity path's field."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.affine:
            torch.nn.init.ones_(m.weight)
    return model


def cnn_rf(name: str, fs: int) -> int:
    model = architectural(create(name, 5)).double().eval()
    stage = next(m for m in model.modules() if isinstance(m, ConcatPool1d))
    return measured(model, stage, (1, 12, 30 * fs), lambda x: model({"signal": x}))


def beatnet_rf(fs: int) -> dict:
    cfg = beatnet_config("tiny", rf_s=BEATNET_RF_S, fs=fs)
    kernels = kernels_for(cfg)
    rf = receptive_field(kernels, tuple(cfg.cnn_strides))
    # positive control: the gradient measure finds the same field on the BeatCNN's conv chain
    from beat_ray.models.beatnet import BeatCNN
    cnn = BeatCNN(cfg).double().eval()
    tail = torch.nn.Identity()
    chain = torch.nn.Sequential(cnn.convs, tail)
    got = measured(chain, tail, (1, 1, 20 * fs), lambda x: chain(x))
    if got != rf:
        raise SystemExit(f"gradient span {got} != analytic receptive field {rf} for the BeatCNN at {fs} Hz")
    window = TokenizerConfig().window(fs)
    return {"kernels": list(kernels), "rf_samples": rf, "rf_s": rf / fs, "token_window_samples": window,
            "token_window_s": window / fs, "rf_s_kwarg": BEATNET_RF_S,
            "default_kernels_rf_s": receptive_field(tuple(cfg.cnn_kernels), tuple(cfg.cnn_strides)) / fs}


def main() -> int:
    torch.manual_seed(0)
    rows = []
    for fs in (100, 500):
        b = beatnet_rf(fs)
        rows.append({"model": "beatnet", "fs": fs, **b})
        print(f"beatnet        {fs} Hz: BeatCNN field {b['rf_samples']} samples = {b['rf_s']:.3f} s "
              f"(kernels {b['kernels']}; default kernels would see {b['default_kernels_rf_s']:.3f} s), "
              f"token window {b['token_window_s']:.2f} s", flush=True)
        for name in CNNS:
            rf = cnn_rf(name, fs)
            rows.append({"model": name, "fs": fs, "rf_samples": rf, "rf_s": rf / fs})
            print(f"{name:14s} {fs} Hz: field {rf} samples = {rf / fs:.2f} s", flush=True)
    commit, dirty = git_info()
    doc = {"what": "receptive field of one output of the last feature map (CNNs: what the head pools; "
                   "BEAT-Net: its BeatCNN, which reads one token window)", "git_commit": commit,
           "git_dirty": dirty, "rows": rows}
    out = REPO / "benchmarks" / "out" / "receptive_fields.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
