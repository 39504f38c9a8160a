"""The seam between the library and Ray: one Tune function trainable, two ways to run `fit`.

* single device (the default, one CPU bundle or one GPU, whole or a fraction): `fit` runs inside the Tune
  function, on the GPU Ray gave the trial where it asked for one; each epoch reports with
  `ray.tune.report` and a checkpoint, and a restarted trial resumes from `ray.tune.get_checkpoint()`.
  Start-up costs almost nothing, so many small trials share a node (four 0.25-GPU trials share a GPU).
* DDP (`workers > 1`): the Tune function starts a Train V2 `TorchTrainer` whose
  workers run the same `fit` with `rank`/`world_size` and a DDP-wrapped model; the trainer's
  `TuneReportCallback` forwards its reports to this Tune trial. This costs 15-20 s of worker
  start-up per trial on CPU, so it is for models that need it.
"""
from __future__ import annotations

import ctypes
import os
import tempfile
from typing import Any

import torch

from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit

STATE_FILE = "state.pt"
# Every epoch's checkpoint holds the best-validation weights too (loop.fit's state["best"]), so the
# last two cover "last and best" and a write torn by a crash: for Tune's and for Train's storage.
CHECKPOINTS_KEPT = 2
TRAIN_MAX_FAILURES = 0          # Tune retries the whole trial (run_study); the new TorchTrainer restores its run
PREDICTIONS_FILE = "predictions.npz"


def _save_checkpoint_dir(folder: str, state: dict, metrics: dict) -> None:
    torch.save(state, os.path.join(folder, STATE_FILE))
    preds = metrics.get("_predictions")
    if preds is not None:
        import numpy as np
        np.savez_compressed(os.path.join(folder, PREDICTIONS_FILE), **preds)


def _load_state(checkpoint) -> dict | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        # on the CPU first, whatever device wrote it: `fit` moves it to this trial's device (loop.restore)
        return torch.load(os.path.join(d, STATE_FILE), map_location="cpu", weights_only=False)


def _public(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.startswith("_")}


def _report_with_checkpoint(report, metrics: dict, state_fn) -> None:
    """Report an epoch with its checkpoint, and the node it trained on (the GPU node, for a DDP trial)."""
    import ray
    from ray.tune import Checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        _save_checkpoint_dir(tmp, state_fn(), metrics)
        report({**_public(metrics), "train_node_id": ray.get_runtime_context().get_node_id()},
               checkpoint=Checkpoint.from_directory(tmp))


def train_run_name(experiment: str, trial_id: str) -> str:
    """A distributed trial's TorchTrainer run: a folder beside the Tune experiment's, in the same storage."""
    return f"{experiment}-{trial_id}"


def release_memory() -> bool:
    """Hand the heap a finished trial freed back to the OS (glibc `malloc_trim`); False where unavailable.

    Why: with `reuse_actors` one actor process runs trial after trial, each in a new thread, and
    glibc keeps what each thread's arena freed. Measured on the real ablations sweep: an actor's
    RSS grew by about 0.5 GB a trial until Ray's OOM killer stopped the sweep at 22 of 24 GB; with
    `malloc_trim(0)` after each fit, five fits in fresh threads stay at 0.5 GB.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def use_cache_source(source: str | None) -> None:
    """Where this node's `prepare` copies published caches from (data.cachesync), if the sweep published."""
    from beat_ray.data.cachesync import SOURCE_ENV
    if source:
        os.environ[SOURCE_ENV] = source


class NoCudaError(RuntimeError):
    """A trial that Ray gave a GPU found no CUDA device."""


def trial_device(cfg: TrialConfig, train_worker: bool = True) -> torch.device:
    """The device Ray assigned to this Train worker (or, `train_worker=False`, to this Tune function trial:
    Ray sets its CUDA_VISIBLE_DEVICES to the GPU it holds, so that is cuda:0); never a silent CPU run for a
    trial that asked for a GPU."""
    import ray

    if not cfg.use_gpu:
        return torch.device("cpu")
    if torch.cuda.is_available():
        if not train_worker:
            return torch.device("cuda", 0)
        import ray.train.torch
        return ray.train.torch.get_device()
    where = f"node {ray.util.get_node_ip_address()}, Ray GPU ids {ray.get_gpu_ids()}, CUDA_VISIBLE_DEVICES=" \
            f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}, torch {torch.__version__} (CUDA build: {torch.version.cuda})"
    if cfg.allow_cpu_fallback:
        print(f"beat-ray: trial given {cfg.gpus_per_trial} GPU finds no CUDA ({where}); training on CPU "
              "as --allow-cpu-fallback asks (the row records device cpu)", flush=True)
        return torch.device("cpu")
    raise NoCudaError(f"this trial was given {cfg.gpus_per_trial} GPU by Ray but torch finds no CUDA device "
                      f"({where}). Check the node's NVIDIA driver and that the image has a CUDA build of torch; "
                      "pass --allow-cpu-fallback to train such trials on CPU instead (recorded in the row), "
                      "or --gpus-per-trial 0 for CPU trials.")


def train_worker(config: dict[str, Any]) -> None:
    """TorchTrainer worker loop: the same `fit`, sharded by rank; rank 0 writes checkpoints."""
    import ray.train
    import ray.train.torch

    cfg = TrialConfig.from_dict(config["trial"])
    use_cache_source(config.get("cache_source"))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = trial_device(cfg)

    def on_epoch(metrics: dict, state_fn) -> None:
        if rank == 0:
            _report_with_checkpoint(ray.train.report, metrics, state_fn)
        else:
            ray.train.report(_public(metrics))

    try:
        fit(cfg, _load_state(ray.train.get_checkpoint()), on_epoch, rank=rank, world_size=world,
            wrap_model=lambda m: ray.train.torch.prepare_model(m, move_to_device=False), device=device)
    finally:
        release_memory()


def trainable(config: dict[str, Any]) -> None:
    """Tune function trainable. `config["trial"]` is a `TrialConfig` dict (one grid cell)."""
    from ray import tune

    cfg = TrialConfig.from_dict(config["trial"])
    use_cache_source(config.get("cache_source"))
    if not cfg.distributed:
        try:
            fit(cfg, _load_state(tune.get_checkpoint()),
                lambda m, state_fn: _report_with_checkpoint(tune.report, m, state_fn),
                device=trial_device(cfg, train_worker=False))
        finally:
            release_memory()
        return
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    ctx = tune.get_context()
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"trial": cfg.to_dict(), "cache_source": config.get("cache_source")},
        scaling_config=scaling_config(cfg),
        # one world-size-1 worker needs no collectives; NCCL only where ranks talk to each other on GPUs
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu and cfg.workers > 1 else "gloo"),
        # the Tune run's own storage (filesystem included, so s3:// stays s3://); TuneReportCallback
        # forwards each report's checkpoint location as metrics["checkpoint_path"] (runner reads it).
        # Retries: one policy. Train does not retry (TRAIN_MAX_FAILURES = 0); Tune retries the trial
        # (run_study's FailureConfig), and the new TorchTrainer, with the same name and storage,
        # restores its run's checkpoint manager and resumes from the latest registered checkpoint.
        run_config=RunConfig(name=train_run_name(ctx.get_experiment_name(), ctx.get_trial_id()),
                             storage_path=ctx.get_storage().storage_fs_path,
                             storage_filesystem=ctx.get_storage().storage_filesystem,
                             callbacks=[TuneReportCallback()],
                             failure_config=FailureConfig(max_failures=TRAIN_MAX_FAILURES),
                             checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT)),
    )
    trainer.fit()


def worker_resources(cfg: TrialConfig) -> dict[str, float]:
    """What each TorchTrainer worker of a distributed trial asks for (one bundle per worker)."""
    return {"CPU": float(cfg.threads), "GPU": cfg.gpus_per_trial} if cfg.use_gpu else {"CPU": float(cfg.threads)}


def scaling_config(cfg: TrialConfig):
    """The TorchTrainer's ScalingConfig for a distributed trial: `workers` workers, each `worker_resources`."""
    from ray.train import ScalingConfig
    return ScalingConfig(num_workers=cfg.workers, use_gpu=cfg.use_gpu, resources_per_worker=worker_resources(cfg))


def trial_resources(cfg: TrialConfig) -> dict[str, float]:
    """What one trial asks Ray for; the cluster configs are checked against this (issue F)."""
    if not cfg.distributed:       # the function trial trains itself: its CPUs, and its GPU (fraction) if any
        return worker_resources(cfg)
    return {"CPU": 0.01}          # a driver that only launches a TorchTrainer; its workers ask for the rest
