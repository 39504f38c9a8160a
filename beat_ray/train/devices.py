"""Where trials run: the GPU decision, taken from the cluster (not the driver), and concurrency.

Why not `torch.cuda.is_available()` on the driver: a Ray job's driver runs on the head, and every
cluster we ship gives the head no GPU, so that check turned every GPU sweep into CPU trials placed
on GPU nodes with the GPUs idle. What counts is what the cluster has, or can autoscale to: the
alive nodes' resources plus the worker node types of the autoscaler's config (found through
$BEAT_RAY_AUTOSCALER_CONFIG, the `--autoscaling-config` of the head's autoscaler monitor process, or
`~/ray_bootstrap_config.yaml`, which `ray up` writes on the head). KubeRay runs its autoscaler in a
sidecar whose config the head cannot read, so its RayJob passes `--gpus-per-trial` explicitly.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

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
