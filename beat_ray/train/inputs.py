"""What a trial feeds its model: indices of each split and batches in the model's own input kind.

Arrays come from the memory-mapped caches of `data` and `tokenize`, so trials on one node share
pages instead of each holding a copy. Records the tokenizer flagged (no usable beats) are dropped
from every split for every model, so BEAT-Net and the CNNs are scored on the same records.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from beat_ray.data import ECGDataset, load
from beat_ray.data.noise import add_noise
from beat_ray.data.signal import LeadStandardizer
from beat_ray.data.splits import nested_label_fractions
from beat_ray.tokenize import TokenizerConfig, Tokens, tokenize, tokens_for
from beat_ray.train.config import TrialConfig


@dataclass
class TrialData:
    ds: ECGDataset
    tokens: Tokens | None             # tokens models only
    scaler: LeadStandardizer | None   # signal models only
    train: np.ndarray                 # labelled training subset (after label_fraction)
    val: np.ndarray
    test: np.ndarray
    input_kind: str
    tok_config: TokenizerConfig | None
    n_flagged: int

    @property
    def labels(self) -> np.ndarray:
        return self.ds.labels


def load_dataset(cfg: TrialConfig) -> ECGDataset:
    extra = {"n_records": cfg.n_records} if cfg.n_records else {}
    return load(cfg.dataset, root=cfg.root, task=cfg.task, fs=cfg.fs, seed=cfg.data_seed, progress=False, **extra)


def build_inputs(cfg: TrialConfig, model: torch.nn.Module, ds: ECGDataset | None = None) -> TrialData:
    """Splits, label-fraction subset and cached inputs for one trial."""
    ds = ds if ds is not None else load_dataset(cfg)
    kind = model.input_kind
    tokens, tok_cfg, scaler = None, None, None
    ok = np.ones(len(ds), bool)
    if kind == "tokens":
        mode = "patch" if getattr(model, "token_mode", "fixed") == "patch" else cfg.token_mode
        tok_cfg = TokenizerConfig(mode=mode, max_beats=cfg.max_beats)
        tokens = tokens_for(ds, tok_cfg)
    # Same records for every model: drop what the (default) tokenizer flags, whatever the input kind.
    flags = tokens.flags if tokens is not None and tok_cfg.mode != "patch" else tokens_for(ds).flags
    ok &= np.array([not f for f in flags])
    train_all = ds.indices("train")[ok[ds.indices("train")]]
    val, test = (ds.indices(s)[ok[ds.indices(s)]] for s in ("val", "test"))
    if cfg.label_fraction < 1.0:
        sub = nested_label_fractions(ds.labels[train_all], [cfg.label_fraction], seed=cfg.seed)[cfg.label_fraction]
        train = train_all[sub]
    else:
        train = train_all
    if kind == "signal":
        # Lead statistics need no labels: fit on the whole training split, never on val/test.
        scaler = LeadStandardizer().fit(ds.signals[np.sort(train_all)])
    return TrialData(ds, tokens, scaler, train, val, test, kind, tok_cfg, int((~ok).sum()))


def _noisy(x: np.ndarray, noise: str | None, fs: float, seed: int) -> np.ndarray:
    if not noise:
        return x
    kind, snr = noise.split(":")
    return add_noise(x, kind, float(snr), fs, seed=seed)


def make_batch(data: TrialData, idx: np.ndarray, *, train: bool, rng: np.random.Generator,
               crop_s: float | None = None, noise: str | None = None) -> dict[str, torch.Tensor]:
    """A model batch for records `idx` (sorted reads from the memmap, original order returned).

    Signal models get standardised signals, randomly cropped to `crop_s` in training. With
    `noise`, noise is added to the raw signal and tokens models are re-tokenised, so the
    tokenizer is in the loop exactly as at evaluation under noise.
    """
    order = np.argsort(idx)
    back = np.argsort(order)
    sorted_idx = idx[order]
    fs = data.ds.fs
    if data.input_kind == "tokens" and not noise:
        return {k: torch.from_numpy(np.ascontiguousarray(v[back]))
                for k, v in data.tokens.batch(sorted_idx).items()}
    x = np.asarray(data.ds.signals[sorted_idx])[back]
    x = _noisy(x, noise, fs, seed=int(rng.integers(2**31)))
    if data.input_kind == "tokens":
        tk = tokenize(x, fs, data.tok_config)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tk.batch(slice(None)).items()}
    x = data.scaler.transform(x)
    if train and crop_s:
        w = int(round(crop_s * fs))
        starts = rng.integers(0, x.shape[-1] - w + 1, size=len(x))
        x = np.stack([r[:, s:s + w] for r, s in zip(x, starts)])
    return {"signal": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))}
