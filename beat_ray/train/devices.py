"""Where trials run: the GPU decision, taken from the cluster (not the driver), and concurrency.

Why not `torch.cuda.is_available()` on the driver: a Ray job's driver runs on the head, and every
cluster we ship gives the head no GPU, so that check turned every GPU sweep into CPU trials placed
on GPU nodes with the GPUs idle. What counts is what the cluster has, or can autoscale to: the
alive nodes' resources plus the worker node types of the autoscaler's config (found through
$BEAT_RAY_AUTOSCALER_CONFIG, the `--autoscaling-config` of the head's autoscaler monitor process, or
`~/ray_bootstrap_config.yaml`, which `ray up` writes on the head). KubeRay runs its autoscaler in a
sidecar whose config the head cannot read, so its RayJob passes `--gpus-per-trial` explicitly.

The second half is how a trial then uses its device (plain torch, no Ray): precision, the cuDNN and
cuBLAS settings behind GPU determinism, and batches built ahead of the device in pinned memory.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml

# cuBLAS is only reproducible with a fixed workspace layout, and it reads this when CUDA starts in the
# process. Set on import (tune_fn -> loop -> here), before any trial starts CUDA, so a gpu_deterministic
# trial is exact even in a reused Ray worker; it changes nothing else (8 x 4 MiB of GEMM workspace).
CUBLAS_WORKSPACE = ":4096:8"
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
PRECISIONS = ("fp32", "bf16")
T = TypeVar("T")

BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
HEAD_KEY = "node:__internal_head__"


def _monitor_config_paths() -> list[Path]:
    """`--autoscaling-config=PATH` of autoscaler monitor processes on this machine (the head)."""
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(a.endswith(b"monitor.py") for a in argv):
            continue
        for a in argv:
            if a.startswith(b"--autoscaling-config="):
                out.append(Path(os.path.expanduser(a.split(b"=", 1)[1].decode())))
    return out


def autoscaler_config() -> tuple[dict | None, str]:
    """The autoscaler's cluster config (a dict with available_node_types) and where it came from."""
    env = os.environ.get("BEAT_RAY_AUTOSCALER_CONFIG")
    candidates = ([Path(env)] if env else []) + _monitor_config_paths() + [Path(os.path.expanduser(BOOTSTRAP_CONFIG))]
    for path in candidates:
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
            if isinstance(cfg, dict) and cfg.get("available_node_types"):
                return cfg, str(path)
    return None, "no autoscaler config found"


@dataclass(frozen=True)
class Capacity:
    """The largest cluster this sweep can get: one resource dict per node (alive or launchable)."""

    nodes: tuple[dict, ...]
    source: str                                   # how it was found, for messages and rows
    gpus_now: float = 0.0

    @property
    def gpus_max(self) -> float:
        return sum(n.get("GPU", 0.0) for n in self.nodes)

    def slots(self, bundle: dict[str, float]) -> int:
        """How many copies of `bundle` the largest cluster holds, packed node by node."""
        need = {k: v for k, v in bundle.items() if v > 0}
        return sum(min(math.floor(n.get(k, 0.0) / v + 1e-9) for k, v in need.items()) for n in self.nodes)


def cluster_capacity() -> Capacity:
    """Alive nodes' resources, plus every launchable worker of the autoscaler config (needs ray.init)."""
    import ray

    alive = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    gpus_now = float(ray.cluster_resources().get("GPU", 0.0))
    cfg, where = autoscaler_config()
    if cfg is None:
        return Capacity(tuple(alive), f"alive nodes only ({where})", gpus_now)
    head_type = cfg.get("head_node_type")
    launch = [r for k, v in cfg["available_node_types"].items() if k != head_type
              for r in [dict(v.get("resources") or {})] * int(v.get("max_workers", cfg.get("max_workers", 0)) or 0)]
    head = [n for n in alive if HEAD_KEY in n]
    return Capacity(tuple(head + launch), f"head + autoscaler node types ({where})", gpus_now)


def decide_gpu(cells: list[dict], capacity: Capacity, gpus_per_trial: float | None,
               allow_cpu_fallback: bool = False) -> list[dict]:
    """Each cell's `use_gpu` / `gpus_per_trial`, from the flag or from what the cluster can give.

    A flag wins (`0` = CPU trials). Otherwise cells that ask for GPUs keep them when the cluster has
    or can autoscale to GPUs, and the sweep stops with a message when it cannot: never a silent CPU run.
    """
    out = []
    for c in cells:
        c = dict(c, allow_cpu_fallback=bool(allow_cpu_fallback or c.get("allow_cpu_fallback", False)))
        if gpus_per_trial is not None:
            c.update(use_gpu=gpus_per_trial > 0, gpus_per_trial=float(gpus_per_trial) if gpus_per_trial > 0
                     else c.get("gpus_per_trial", 1.0))
        out.append(c)
    wants = [c for c in out if c.get("use_gpu")]
    if wants and gpus_per_trial is None and capacity.gpus_max <= 0:
        raise SystemExit(f"{len(wants)} trial(s) ask for GPUs (use_gpu, {wants[0].get('gpus_per_trial')} per "
                         f"worker), but this cluster has no GPU and can autoscale to none ({capacity.source}). "
                         "Pass --gpus-per-trial 0 to train them on CPUs, or run on a cluster with GPU nodes "
                         "(cluster/README.md).")
    return out


def max_concurrent(workers: list[tuple[dict, int]], capacity: Capacity) -> int:
    """A cap for distributed trials from (worker bundle, n_workers) per cell: how many trials' workers
    the largest cluster holds, packed node by node. The 0.01-CPU trial drivers are left out: they fit
    beside anything, and counting them per node would make a 4-CPU, 1-GPU node hold no 4-CPU trial."""
    return max(1, max((capacity.slots(b) // max(n, 1) for b, n in workers), default=1))


# ---------------------------------------------------------------------------------------------
# how a trial uses its device

def autocast(precision: str, device) -> AbstractContextManager:
    """The forward's precision: fp32 (no autocast at all, so fp32 rows stay bit-identical) or bf16
    autocast (no loss scaling needed: bf16 has fp32's exponent range)."""
    import torch

    if precision == "fp32":
        return nullcontext()
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; known: {PRECISIONS}")
    device = torch.device(device)
    if device.type == "cuda" and not _cuda_bf16(device.index):
        raise RuntimeError(f"precision bf16 on {torch.cuda.get_device_name(device)}, which has no bf16; use fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16)


@cache
def _cuda_bf16(index: int | None) -> bool:
    """Whether the GPU has bf16 (A100, H100: yes; V100, T4: no); asked once, not every step."""
    import torch

    with torch.cuda.device(index if index is not None else torch.cuda.current_device()):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def configure_cuda(deterministic: bool, fixed_shapes: bool) -> None:
    """cuDNN/cuBLAS settings of a GPU trial; nothing on a machine without CUDA (CPU kernels are
    deterministic already, and the call below would import torch._dynamo for 2.7 s per Ray worker).

    deterministic: deterministic kernels (warn_only: an op without one warns instead of failing the
    trial) and cuDNN autotuning off. Otherwise cuDNN autotunes, but only for fixed input shapes (the
    CNNs' 2.5-s crops): BEAT-Net's number of valid beats changes every batch, and each new shape
    would be autotuned again."""
    import torch

    if not torch.cuda.is_available():
        return
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = fixed_shapes and not deterministic


def _pin(x):
    if isinstance(x, dict):
        return {k: _pin(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(_pin(v) for v in x)
    return x.pin_memory() if hasattr(x, "pin_memory") else x


def prefetched(build: Callable[[object], T], items: Sequence, pin: bool = False) -> Iterator[T]:
    """build(item) for each item in order, each built in a background thread while the caller uses the
    previous one. Why: the device otherwise waits for the host's batch every step. `pin` puts the
    tensors in page-locked memory, so `.to(cuda, non_blocking=True)` really is asynchronous (only with
    CUDA). One build at a time, in item order, so a numpy Generator that `build` draws from gives the
    same numbers as a plain loop; an exception in `build` is raised here, at its item."""
    with ThreadPoolExecutor(1, thread_name_prefix="beat-ray-batches") as pool:
        job = (lambda it: _pin(build(it))) if pin else build
        ahead = pool.submit(job, items[0]) if len(items) else None
        for i in range(len(items)):
            current = ahead.result()
            ahead = pool.submit(job, items[i + 1]) if i + 1 < len(items) else None
            yield current
