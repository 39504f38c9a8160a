"""What a trial feeds its model: indices of each split and batches in the model's own input kind.

Arrays come from the memory-mapped caches of `data` and `tokenize`, so trials on one node share
pages instead of each holding a copy.

One test set for every model: a record the tokenizer flags (no usable beats) stays in every
split, so a model's score never depends on another model's tokenizer. A tokens model cannot
learn from a record without tokens, so it skips flagged records in training, and its scores for a
flagged validation or test record are the fallback: the class prevalence of its labelled training
subset (an uninformative but defined prediction). The counts go into the results row
(`n_fallback_val`, `n_fallback_test`, `n_flagged_train_skipped`).

Splits follow `cfg.test_fold` (`data.dataset.fold_layout`): 10 is the official split, 1..10 the
fold rotation.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from beat_ray.data import ECGDataset, load
from beat_ray.data.electrodes import QRS_HALF_S, add_electrode_noise
from beat_ray.data.noise import load_nstdb
from beat_ray.data.signal import LeadStandardizer
from beat_ray.data.splits import nested_label_fractions
from beat_ray.models.beatnet import beat_index
from beat_ray.tokenize import TokenizerConfig, Tokens, tokenize, tokens_for
from beat_ray.tokenize.detect import detect_batch
from beat_ray.train.config import RECIPES, TrialConfig

TOKEN_FLOAT_KEYS = ("tokens", "rr", "times")
CHECK_CHUNK = 256                     # records per read when a trial's token rows are checked


class NonFiniteError(FloatingPointError):
    """A NaN/inf reached a training step: fail the trial loudly instead of learning garbage."""


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
    flagged: np.ndarray               # (N,) bool: no tokens for this model (always False for signal models)
    prevalence: np.ndarray            # (C,) label means of `train`: the fallback scores of a flagged record
    n_flagged_train_skipped: int = 0
    n_train_full: int = 0             # trainable records of the whole training split (the matched budget's unit)
    noise_source: str = "synthetic"   # TrialConfig.noise_source
    snr_peaks: dict[int, np.ndarray] = field(default_factory=dict)   # record -> R peaks of its clean signal
    snr_fallback: set[int] = field(default_factory=set)              # records whose clean signal had no beats

    @property
    def labels(self) -> np.ndarray:
        return self.ds.labels


def load_dataset(cfg: TrialConfig) -> ECGDataset:
    extra = {"n_records": cfg.n_records} if cfg.n_records else {}
    if cfg.records_at_fs:
        extra["only_at_fs"] = cfg.records_at_fs
    if cfg.synth:
        if cfg.dataset != "synth":
            raise ValueError(f"config 'synth' ({cfg.synth}) only applies to dataset synth, not {cfg.dataset!r}")
        extra.update(cfg.synth)
    return load(cfg.dataset, root=cfg.root, task=cfg.task, fs=cfg.fs, seed=cfg.data_seed, progress=False, **extra)


def build_inputs(cfg: TrialConfig, model: torch.nn.Module, ds: ECGDataset | None = None) -> TrialData:
    """Splits, label-fraction subset and cached inputs for one trial."""
    ds = ds if ds is not None else load_dataset(cfg)
    kind = model.input_kind
    tokens, tok_cfg, scaler = None, None, None
    flagged = np.zeros(len(ds), bool)
    if kind == "tokens":
        mode = "patch" if getattr(model, "token_mode", "fixed") == "patch" else cfg.token_mode
        tok_cfg = TokenizerConfig(mode=mode, max_beats=cfg.max_beats, detector=cfg.detector)
        tokens = tokens_for(ds, tok_cfg)
        flagged = np.array([bool(f) for f in tokens.flags])
    train_all, val, test = (ds.indices(s, cfg.test_fold) for s in ("train", "val", "test"))
    # The labelled subset is drawn from the whole training split, so it is the same for every model.
    if cfg.label_fraction < 1.0:
        sub = nested_label_fractions(ds.labels[train_all], [cfg.label_fraction], seed=cfg.seed)[cfg.label_fraction]
        train = train_all[sub]
    else:
        train = train_all
    skipped = int(flagged[train].sum())
    train = train[~flagged[train]]
    if len(train) == 0:
        raise ValueError(f"{cfg.dataset}/{cfg.task} test_fold {cfg.test_fold}: no trainable training record")
    if kind == "signal":
        # Signal statistics need no labels: fit on the whole training split, never on val/test.
        per_lead = RECIPES[cfg.recipe]["scaler"] == "lead"
        scaler = LeadStandardizer(per_lead=per_lead).fit(ds.signals, rows=train_all)   # chunked: RSS flat in N
    prevalence = ds.labels[train].astype(np.float32).mean(0)
    n_full = int((~flagged[train_all]).sum())
    return TrialData(ds, tokens, scaler, train, val, test, kind, tok_cfg, flagged, prevalence, skipped, n_full,
                     cfg.noise_source)


def snr_reference(data: TrialData, idx: np.ndarray) -> list[np.ndarray]:
    """R peaks of the clean records `idx`, the QRS reference of nst's SNR, detected once per record.

    The same detector for every model, on the clean signal, so every model's noisy copy of a record has the
    same noise gain. A record in which no beat is found (the tokenizer flags it) is referenced at the
    largest deflection of each 1-s window instead, and counted (`snr_fallback`, in the row)."""
    missing = np.array([i for i in idx if int(i) not in data.snr_peaks], np.int64)
    if len(missing):
        fs = data.ds.fs
        x = np.asarray(data.ds.signals[np.sort(missing)])
        peaks, _, _ = detect_batch(x, fs)
        h, w = int(np.ceil(QRS_HALF_S * fs)), max(1, int(round(fs)))
        for i, rec, p in zip(np.sort(missing), x, peaks):
            if not len(p):
                with warnings.catch_warnings():                     # an absent (all-NaN) lead
                    warnings.simplefilter("ignore", RuntimeWarning)
                    dev = np.nansum(np.abs(rec - np.nanmedian(rec, axis=-1, keepdims=True)), axis=0)
                starts = range(h, len(dev) - w - h + 1, w) or [h]
                p = np.array([s + int(np.argmax(dev[s:max(s + w, len(dev) - h)])) for s in starts])
                data.snr_fallback.add(int(i))
            data.snr_peaks[int(i)] = p
    return [data.snr_peaks[int(i)] for i in idx]


@lru_cache(maxsize=8)
def nstdb_noise(source: str, kind: str, fs: float) -> np.ndarray | None:
    """The real NSTDB record of `kind` for source "nstdb:<dir>"; None = generated (also for pl and wgn,
    which NSTDB does not have: the row's config/noise_source and the table caption say so)."""
    if source == "synthetic" or kind not in ("bw", "em", "ma"):
        return None
    return load_nstdb(source.split(":", 1)[1], kind, fs)


def _noisy(data: TrialData, x: np.ndarray, idx: np.ndarray, noise: str | None, seed: int) -> np.ndarray:
    """x (records idx) plus electrode noise at nst's SNR (data.electrodes): record idx[i]'s realisation
    is seeded by (seed, idx[i], type), so it is the same in every batch, at every SNR and for every model."""
    if not noise:
        return x
    kind, snr = noise.split(":")
    fs = data.ds.fs
    return add_electrode_noise(x, kind, float(snr), fs, snr_reference(data, idx), seed=seed, keys=list(idx),
                               nstdb=nstdb_noise(data.noise_source, kind, fs))


def make_batch(data: TrialData, idx: np.ndarray, *, train: bool, rng: np.random.Generator,
               crop_s: float | None = None, noise: str | None = None, noise_seed: int | None = None
               ) -> dict[str, torch.Tensor]:
    """A model batch for records `idx` (sorted reads from the memmap, original order returned).

    Signal models get standardised signals, randomly cropped to `crop_s` in training. With
    `noise`, noise is added to the raw signal and tokens models are re-tokenised, so the
    tokenizer is in the loop exactly as at evaluation under noise. `noise_seed` fixes the
    realisations (evaluation); without it each batch draws new ones from rng (augmentation).
    """
    order = np.argsort(idx)
    back = np.argsort(order)
    sorted_idx = idx[order]
    fs = data.ds.fs
    if data.input_kind == "tokens" and not noise:
        return _with_index({k: torch.from_numpy(np.ascontiguousarray(v[back]))
                            for k, v in data.tokens.batch(sorted_idx).items()})
    x = np.asarray(data.ds.signals[sorted_idx])[back]
    draw = int(rng.integers(2**31))     # drawn with or without noise: the crop positions below stay those of
    if noise:                           # every earlier commit, so committed signal-model rows reproduce
        x = _noisy(data, x, idx, noise, draw if noise_seed is None else noise_seed)
    if data.input_kind == "tokens":
        tk = tokenize(x, fs, data.tok_config)
        return _with_index({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tk.batch(slice(None)).items()})
    x = data.scaler.transform(x)
    if train and crop_s:
        w = int(round(crop_s * fs))
        starts = rng.integers(0, x.shape[-1] - w + 1, size=len(x))
        x = np.stack([r[:, s:s + w] for r, s in zip(x, starts)])
    return {"signal": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))}


def _with_index(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A token batch plus BEAT-Net's gather indices, computed here on the host (models.beatnet.beat_index)."""
    return {**batch, **beat_index(batch["beat_mask"])}


def check_finite(batch: dict[str, torch.Tensor], epoch: int, idx: np.ndarray) -> None:
    """Raise NonFiniteError if a float input of this (host) batch holds a NaN/inf."""
    for k, v in batch.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise NonFiniteError(f"non-finite input {k!r} in epoch {epoch}, records {idx[:5].tolist()}...")


def check_token_rows(data: TrialData, epoch: int) -> None:
    """Raise NonFiniteError if a training record's cached tokens hold a NaN/inf: once per trial, before its
    first step, instead of once per step (the cache does not change under a trial; 69 MB a step at 500 Hz).
    A batch re-tokenised under train_noise is new data and is still checked per step (check_finite)."""
    if data.input_kind != "tokens":
        return
    rows = np.sort(data.train)
    for i in range(0, len(rows), CHECK_CHUNK):
        part = rows[i:i + CHECK_CHUNK]
        for k in TOKEN_FLOAT_KEYS:
            ok = np.isfinite(np.asarray(getattr(data.tokens, k)[part])).reshape(len(part), -1).all(1)
            if not ok.all():
                raise NonFiniteError(f"non-finite input {k!r} in epoch {epoch}, records {part[~ok][:5].tolist()}... "
                                     "(the token cache's training rows, checked once before the first step)")
