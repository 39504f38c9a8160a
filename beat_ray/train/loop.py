"""The one training loop, plain PyTorch: no Ray here, so a trial can be debugged in a notebook.

`fit` runs epochs, evaluates validation macro-AUC after each, keeps the best epoch and scores
the test split with it. The Tune function trainable and the TorchTrainer worker (`tune_fn.py`)
both call `fit`; they differ only in how `on_epoch` reports and checkpoints, and in `rank`,
`world_size` and `wrap_model` for DDP.

Determinism: every epoch reseeds numpy and torch from (seed, epoch), so a run resumed from the
checkpoint of epoch k continues exactly as the uninterrupted run would have. On CPU a rerun is
bit-identical; on a GPU only with `gpu_deterministic` (devices.configure_cuda, cluster/README.md).

The device never waits for avoidable host work: batches are built one step ahead in a thread
(devices.prefetched; pinned on CUDA), BEAT-Net's gather indices come with the batch (no nonzero
syncs in its forward), cached tokens are checked for NaN/inf once per trial, and the loss is read
back every LOSS_CHECK_STEPS steps instead of every step.

DDP (`world_size > 1`): `batch_size` is per rank, so a step sees `world_size * batch_size` records
and `lr` is not scaled for it; the row says so (`world_size`, `batch_per_rank`, `global_batch`).
Only rank 0 evaluates: the ranks hold the same weights.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from beat_ray.data.prepare import ORIGIN
from beat_ray.data.splits import record_set_hash
from beat_ray.models import create, sliding_window_logits
from beat_ray.models.registry import sized_by_fs
from beat_ray.tokenize.layout import TokenizerConfig
from beat_ray.train.attribution import lead_attribution
from beat_ray.train.config import (
    MAX_BUDGET_SCALE,
    RECIPES,
    TrialConfig,
    fold_layout_text,
)
from beat_ray.train.devices import autocast, configure_cuda, prefetched
from beat_ray.train.inputs import (
    NonFiniteError,
    TrialData,
    build_inputs,
    check_finite,
    check_token_rows,
    load_dataset,
    make_batch,
)
from beat_ray.train.metrics import evaluate, macro_auc

EpochCallback = Callable[[dict[str, Any], Callable[[], dict]], None]
LOSS_CHECK_STEPS = 50      # losses are read back (one device sync) every this many steps and at an epoch's end


def seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.set_num_threads(max(1, threads))


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself under a DDP (or DataParallel) wrapper, which hides its attributes (crop_s...)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def model_kwargs(cfg: TrialConfig) -> dict:
    """The model's kwargs. A model sized by the sampling rate (registry.sized_by_fs: BEAT-Net's receptive
    field in seconds, the linear window of beatnet_no_morphology) gets the trial's fs and token width W,
    so `--set fs=500` needs no model kwarg."""
    kw, sized = dict(cfg.model_kwargs), sized_by_fs(cfg.model)
    if sized or "rf_s" in kw:
        kw.setdefault("fs", cfg.fs)
    if sized:
        kw.setdefault("window", TokenizerConfig(mode=cfg.token_mode).window(cfg.fs))
    return kw


def build_model(cfg: TrialConfig, n_classes: int) -> nn.Module:
    torch.manual_seed(cfg.seed)                 # same init for the same seed, whatever ran before
    return create(cfg.model, n_classes, **model_kwargs(cfg))


def make_optimizer(cfg: TrialConfig, model: nn.Module, steps: int):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; use onecycle or cosine")
    return opt, sched


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch to the model's device (asynchronous from pinned memory: devices.prefetched)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def predict(model: nn.Module, data: TrialData, idx: np.ndarray, batch_size: int = 256,
            noise: str | None = None, seed: int = 0) -> np.ndarray:
    """Sigmoid scores (len(idx), C); signal models use the benchmark's sliding-window max.

    A record without tokens (flagged by a tokens model's tokenizer) gets the fallback scores,
    the training prevalence, so every model scores every record (see inputs.py). Under `noise`
    every record is re-tokenised, and one in which no beat is found gets the same fallback;
    `seed` fixes the noise realisations (inputs._noisy).
    """
    model.eval()
    device = _device(model)
    rng = np.random.default_rng(seed)
    out = np.tile(data.prevalence.astype(np.float32), (len(idx), 1))
    ok = np.flatnonzero(~data.flagged[idx]) if not noise else np.arange(len(idx))
    chunks = [ok[i:i + batch_size] for i in range(0, len(ok), batch_size)]

    def build(pos: np.ndarray) -> dict[str, torch.Tensor]:
        return make_batch(data, idx[pos], train=False, rng=rng, noise=noise, noise_seed=seed)

    with closing(prefetched(build, chunks, pin=device.type == "cuda")) as batches:
        for pos, host in zip(chunks, batches):
            b = _to(host, device)
            if data.input_kind == "signal":
                logits = sliding_window_logits(model, b["signal"], data.ds.fs, model.eval_win_s,
                                               model.eval_stride_s, model.eval_reduce)
            else:
                logits = model(b)
            scores = torch.sigmoid(logits.float()).cpu().numpy()
            if "beat_mask" in host:             # re-tokenised under noise: no beats found -> the fallback too
                scores[~host["beat_mask"].bool().any(1).numpy()] = data.prevalence
            out[pos] = scores
    return out


@torch.no_grad()
def lead_attention(model: nn.Module, data: TrialData, idx: np.ndarray, batch_size: int = 256) -> np.ndarray | None:
    """Per record, BEAT-Net's lead-attention weights averaged over its beats: (len(idx), 12).

    Stored with the test predictions so the report's class x lead heatmap (issue E, Fig. 3)
    comes from the trial's own best checkpoint, not from a separate run. None for other models.
    """
    if not hasattr(model, "explain") or data.input_kind != "tokens":
        return None
    model.eval()
    out = []
    for i in range(0, len(idx), batch_size):
        b = _to(make_batch(data, idx[i:i + batch_size], train=False, rng=np.random.default_rng(0)), _device(model))
        att = model.explain(b)["lead_attention"]                     # (n, B, 12), 0 on padding
        valid = b["beat_mask"].to(att.dtype).unsqueeze(-1)           # (n, B, 1)
        out.append((att * valid).sum(1).div(valid.sum(1).clamp_min(1)).float().cpu().numpy())
    att = np.concatenate(out) if out else np.zeros((0, 12), np.float32)
    att[data.flagged[idx]] = 1.0 / 12           # a fallback record has no attention: uniform, not zeros
    return att


def steps_per_epoch(cfg: TrialConfig, data: TrialData, world_size: int = 1) -> tuple[int, bool]:
    """Optimizer steps per epoch (per rank) and whether the matched budget hit its cap.

    budget "epochs": one pass over the labelled subset. "matched": one pass over the whole training
    split, the same for every label fraction, drawn from 1/f passes over the subset (capped at
    MAX_BUDGET_SCALE passes), so label efficiency measures the labels, not how long the model trained.
    """
    own = math.ceil(len(data.train) // world_size / cfg.batch_size)
    if cfg.budget == "epochs":
        return own, False
    full = math.ceil(data.n_train_full // world_size / cfg.batch_size)
    batch = min(cfg.batch_size, max(len(data.train) // world_size, 1))
    cap = math.ceil(MAX_BUDGET_SCALE * len(data.train) // world_size / batch)
    return max(min(full, cap), 1), full > cap


def epoch_batches(data: TrialData, cfg: TrialConfig, rng: np.random.Generator, steps: int,
                  rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """This rank's record indices per step of one epoch."""
    if cfg.budget == "epochs":
        perm = data.train[rng.permutation(len(data.train))]
        # DDP: every rank must take the same number of steps or the gradient all-reduce hangs
        perm = perm[:len(perm) - len(perm) % world_size][rank::world_size] if world_size > 1 else perm
        batches = [perm[i:i + cfg.batch_size] for i in range(0, len(perm), cfg.batch_size)]
        # a 1-record tail batch adds noise, not signal
        return [b for b in batches if len(b) >= 2 or len(perm) <= 1]
    # matched: consecutive full batches from back-to-back passes (each a new permutation) of the subset
    batch = min(cfg.batch_size, max(len(data.train) // world_size, 1))
    need = steps * batch * world_size
    passes = [rng.permutation(len(data.train)) for _ in range(math.ceil(need / len(data.train)))]
    stream = data.train[np.concatenate(passes)[:need]][rank::world_size]
    return [stream[i * batch:(i + 1) * batch] for i in range(steps)]


def batch_per_rank(cfg: TrialConfig, data: TrialData, world_size: int = 1) -> int:
    """Records per optimizer step on each rank (the matched budget shrinks it for a tiny subset)."""
    return cfg.batch_size if cfg.budget == "epochs" else min(cfg.batch_size, max(len(data.train) // world_size, 1))


def _read_losses(pending: list[torch.Tensor], epoch: int, first: int) -> list[float]:
    """The losses of steps first.. of `epoch` as floats, in one device sync; NonFiniteError naming the
    first step whose loss is NaN/inf (the steps after it ran too: they are read together)."""
    vals = torch.stack(pending).cpu()
    bad = np.flatnonzero(~torch.isfinite(vals).numpy())
    if len(bad):
        raise NonFiniteError(f"non-finite loss {vals[bad[0]].item()} in epoch {epoch}, step {first + bad[0]} "
                             f"(losses of steps {first}-{first + len(vals) - 1} are read together)")
    return vals.tolist()


def train_epoch(model: nn.Module, data: TrialData, opt, sched, cfg: TrialConfig, epoch: int,
                rank: int = 0, world_size: int = 1, steps: int | None = None) -> tuple[float, int]:
    """One epoch over this rank's shard of the labelled training subset; (mean loss, optimizer steps)."""
    rng = np.random.default_rng([cfg.seed, epoch])
    torch.manual_seed(cfg.seed * 100_003 + epoch)
    model.train()
    steps = steps if steps is not None else steps_per_epoch(cfg, data, world_size)[0]
    loss_fn = nn.BCEWithLogitsLoss()
    crop = getattr(unwrap(model), "crop_s", None)
    device = _device(model)
    # cached tokens were checked once (check_token_rows); signals and re-tokenised batches are new data
    check = data.input_kind != "tokens" or bool(cfg.train_noise)

    def build(idx: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        b = make_batch(data, idx, train=True, rng=rng, crop_s=crop, noise=cfg.train_noise)
        if check:
            check_finite(b, epoch, idx)
        return b, torch.from_numpy(data.labels[idx].astype(np.float32))

    losses: list[float] = []
    pending: list[torch.Tensor] = []
    order = epoch_batches(data, cfg, rng, steps, rank, world_size)
    with closing(prefetched(build, order, pin=device.type == "cuda")) as batches:
        for b, y in batches:
            b, y = _to(b, device), y.to(device, non_blocking=True)
            with autocast(cfg.precision, device):
                loss = loss_fn(model(b).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            pending.append(loss.detach())
            if len(pending) == LOSS_CHECK_STEPS:
                losses += _read_losses(pending, epoch, len(losses))
                pending = []
    if pending:
        losses += _read_losses(pending, epoch, len(losses))
    return (float(np.mean(losses)) if losses else float("nan")), len(losses)


def restore(model: nn.Module, opt: torch.optim.Optimizer, sched, state: dict, device: torch.device) -> None:
    """Load a checkpoint's model, optimizer and scheduler state onto `device`, whatever device wrote it.

    Order matters: the model moves first, so `Optimizer.load_state_dict` casts the Adam moments to the
    parameters' device. Loading first and moving after leaves the moments on the CPU, and the first
    `opt.step()` of a resumed GPU trial fails with a device mismatch.
    """
    model.to(device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])


def fit(cfg: TrialConfig, state: dict | None = None, on_epoch: EpochCallback | None = None, *,
        rank: int = 0, world_size: int = 1, wrap_model: Callable[[nn.Module], nn.Module] | None = None,
        data: TrialData | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Train `cfg` on `device` (resuming from `state` if given); returns the final metrics row."""
    seed_everything(cfg.seed, cfg.threads)
    device = torch.device(device)
    ds = data.ds if data is not None else load_dataset(cfg)
    if ds.path is not None and str(ds.path) in ORIGIN:
        print(f"beat-ray: trial data: {ORIGIN[str(ds.path)]}", flush=True)
    model = build_model(cfg, len(ds.classes))
    data = data or build_inputs(cfg, model, ds)
    model.to(device)
    configure_cuda(cfg.gpu_deterministic, fixed_shapes=data.input_kind == "signal")
    amp = partial(autocast, cfg.precision, device)          # a fresh context per use
    per_epoch, capped = steps_per_epoch(cfg, data, world_size)
    opt, sched = make_optimizer(cfg, model, per_epoch * cfg.epochs)
    start, best = 0, {"val_macro_auc": -1.0, "epoch": -1, "model": None}
    history: list[dict] = []
    train_s, n_steps = 0.0, 0
    if state is not None:
        restore(model, opt, sched, state, device)
        start, best, history, train_s = state["epoch"] + 1, state["best"], state["history"], state["train_s"]
        n_steps = state.get("steps", 0)
    net = wrap_model(model) if wrap_model else model
    n_params = sum(p.numel() for p in model.parameters())
    records = record_metrics(data, cfg)           # fixed for the trial: computed once, reported every epoch
    lead = rank == 0                              # DDP: the ranks hold the same weights; one evaluates
    per_rank = batch_per_rank(cfg, data, world_size)
    metrics: dict[str, Any] = {}
    if start < cfg.epochs and not cfg.train_noise:   # under train_noise every batch is re-tokenised and checked
        check_token_rows(data, start)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        loss, took = train_epoch(net, data, opt, sched, cfg, epoch, rank, world_size, per_epoch)
        train_s += time.perf_counter() - t0
        n_steps += took
        val_auc = float("nan")
        if lead:
            with amp():
                val_auc = macro_auc(data.labels[data.val], predict(model, data, data.val))
            # recipe "default" scores the best-validation epoch; "benchmark" the final one, as helme's code does
            if val_auc > best["val_macro_auc"] or (RECIPES[cfg.recipe]["select"] == "final"
                                                   and epoch == cfg.epochs - 1):
                best = {"val_macro_auc": val_auc, "epoch": epoch, "model": copy.deepcopy(model.state_dict())}
        history.append({"epoch": epoch, "train_loss": loss, "val_macro_auc": val_auc})
        metrics = {"epoch": epoch + 1, "train_loss": loss, "val_macro_auc": val_auc,
                   "best_epoch": best["epoch"] + 1, "best_val_macro_auc": best["val_macro_auc"],
                   "train_seconds": train_s, "n_params": n_params, "n_train": len(data.train),
                   "optimizer_steps": n_steps, "steps_per_epoch": per_epoch, "budget_capped": capped,
                   "n_train_full": data.n_train_full,
                   "n_val": len(data.val), "n_test": len(data.test), "device": str(device),
                   "gpu_fraction": float(cfg.gpus_per_trial) if cfg.use_gpu else 0.0,
                   "cpu_fallback": bool(cfg.use_gpu and device.type == "cpu"), "world_size": world_size,
                   "batch_per_rank": per_rank, "global_batch": per_rank * world_size, **records}
        if lead and epoch == cfg.epochs - 1 and cfg.score_test:
            with amp():
                metrics.update(final_test_metrics(model, best["model"], data, cfg.attribution_steps))
                noisy = noise_metrics(model, data, cfg)
            if cfg.eval_noise:      # per-record scores under each spec: the report's paired CIs between models
                metrics["_predictions"].update(noise_specs=np.asarray(cfg.eval_noise, dtype=str),
                                               noise_scores=noisy.pop("_scores"))
            metrics.update(noisy)
        if on_epoch is not None:
            on_epoch(metrics, lambda e=epoch, b=best, t=train_s, n=n_steps: {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "epoch": e, "best": b, "history": history, "train_s": t, "steps": n, "config": cfg.to_dict()})
    return metrics


def record_metrics(data: TrialData, cfg: TrialConfig) -> dict[str, Any]:
    """Which records a trial saw and scored, for the row: the test set is named by a hash."""
    return {"data_origin": ORIGIN.get(str(data.ds.path), "in memory"), "n_records_dataset": len(data.ds),
            "test_records_sha": record_set_hash(data.ds.record_ids[data.test]),
            "fold_layout": fold_layout_text(cfg.test_fold), "scaler": RECIPES[cfg.recipe]["scaler"],
            "selection": RECIPES[cfg.recipe]["select"], "n_flagged_train_skipped": data.n_flagged_train_skipped,
            "n_fallback_val": int(data.flagged[data.val].sum()), "n_fallback_test": int(data.flagged[data.test].sum())}


def class_groups(ds) -> dict[str, list[int]]:
    """Group name -> class columns (synth: rhythm / morphology / territory); empty for real datasets."""
    return {g: ds.group_classes(g) for g in sorted(set(ds.class_groups.values())) if g and g != "none"}


def noise_metrics(model: nn.Module, data: TrialData, cfg: TrialConfig) -> dict[str, Any]:
    """Test macro-AUC of the (already loaded) best model with electrode noise added to the raw signal.

    Tokens models are re-tokenised from the noisy signal, so detection errors count against them. One
    realisation per (record, noise type), seeded by data_seed and scaled to each SNR, so every model sees
    the same noisy records and the curves over SNR are smooth. "_scores" (specs, n_test, C) goes into
    the predictions file; `noise/snr_fallback_records` counts test records without a clean-signal beat
    (their SNR is referenced to the largest deflections instead, see inputs.snr_reference)."""
    out: dict[str, Any] = {}
    ds = data.ds
    groups = class_groups(ds)
    y = ds.labels[data.test]
    scores = []
    for spec in cfg.eval_noise:
        kind, snr = spec.split(":")
        s = predict(model, data, data.test, noise=spec, seed=cfg.data_seed)
        scores.append(s)
        m = evaluate(y, s, list(ds.classes), groups=groups)
        out[f"noise/{kind}/{float(snr):g}/macro_auc"] = m["macro_auc"]
        for g in groups:
            out[f"noise/{kind}/{float(snr):g}/group_auc/{g}"] = m[f"group_auc/{g}"]
    if cfg.eval_noise:
        out["_scores"] = np.stack(scores).astype(np.float32)
        out["noise/snr_fallback_records"] = len(data.snr_fallback & set(map(int, data.test)))
    return out


def final_test_metrics(model: nn.Module, best_state: dict, data: TrialData, attribution_steps: int = 0) -> dict[str, Any]:
    """Test metrics of the best-validation epoch; F1 thresholds come from validation."""
    model.load_state_dict(best_state)
    s_val, s_test = predict(model, data, data.val), predict(model, data, data.test)
    ds = data.ds
    groups = class_groups(ds)
    m = evaluate(ds.labels[data.test], s_test, list(ds.classes), ds.labels[data.val], s_val, groups)
    out = {f"test/{k}": v for k, v in m.items()}
    # Underscore keys are artefacts, not metrics: the wrappers store them as files, never report them.
    out["_predictions"] = {"record_id": np.asarray(ds.record_ids)[data.test].astype(str), "scores": s_test,
                           "labels": ds.labels[data.test], "classes": np.asarray(ds.classes, dtype=str)}
    att = lead_attention(model, data, data.test)
    if att is not None:
        out["_predictions"]["lead_attention"] = att
    if attribution_steps > 0:
        t0 = time.perf_counter()
        out["_predictions"]["lead_attribution"] = lead_attribution(model, data, data.test, attribution_steps)
        out["attribution_seconds"] = time.perf_counter() - t0
    return out
