"""A sweep driver that the fault-injection and cluster tests start as a real subprocess.

    python tests/sweep_driver.py STORAGE RESULTS CELL_JSON [NUM_CPUS] [--connect] [--gpus-per-trial X]
                                 [--allow-cpu-fallback] [--max-concurrent N] [--name NAME]

It runs the library's own `run_study` (Tune, checkpoints, FailureConfig, result rows), exactly as an
experiment script does, with the grid given as JSON (one cell, or a list of cells). NUM_CPUS starts a
fresh local Ray instance with that many logical CPUs (a 2-worker TorchTrainer trial needs 2 CPUs for
its workers plus a little for the Tune trial that drives it, more than this 2-core machine reports);
`--connect` joins the cluster at $RAY_ADDRESS instead.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beat_ray.train.runner import run_study

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("storage")
    ap.add_argument("results")
    ap.add_argument("cells")
    ap.add_argument("num_cpus", nargs="?", type=int, default=None)
    ap.add_argument("--connect", action="store_true")
    ap.add_argument("--gpus-per-trial", type=float, default=None)
    ap.add_argument("--allow-cpu-fallback", action="store_true")
    ap.add_argument("--max-concurrent", type=int, default=1, help="0: run_study sizes it from the cluster")
    ap.add_argument("--name", default="faults")
    ap.add_argument("--num-gpus", type=int, default=None, help="declared (fake) GPUs of the local instance")
    ap.add_argument("--max-failures", type=int, default=2)
    a = ap.parse_args()
    cells = json.loads(a.cells)
    cells = cells if isinstance(cells, list) else [cells]
    import ray
    if a.connect:
        pass                        # run_study joins $RAY_ADDRESS itself (and forwards BEAT_RAY_CACHE)
    elif a.num_cpus is not None:
        ray.init(address="local", num_cpus=a.num_cpus, num_gpus=a.num_gpus, log_to_driver=False)
    out = run_study(cells, study="faults", preset="test", storage_path=a.storage, name=a.name,
                    results_root=a.results, max_concurrent_trials=a.max_concurrent or None,
                    gpus_per_trial=a.gpus_per_trial, allow_cpu_fallback=a.allow_cpu_fallback,
                    max_failures=a.max_failures)
    print(f"DONE {out}")
