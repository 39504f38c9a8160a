"""A one-cell sweep driver that the fault-injection tests start as a real subprocess.

    python tests/sweep_driver.py STORAGE RESULTS '{"model": "resnet1d_wang", ...}' [NUM_CPUS]

It runs the library's own `run_study` (Tune, checkpoints, FailureConfig, result rows) on a fresh
local Ray instance, exactly as an experiment script does, with one grid cell given as JSON.
NUM_CPUS sets the instance's logical CPUs: a 2-worker TorchTrainer trial needs 2 CPUs for its
workers plus a little for the Tune trial that drives it, more than this 2-core machine reports.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beat_ray.train.runner import run_study  # noqa: E402

if __name__ == "__main__":
    storage, results, cell = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if len(sys.argv) > 4:
        import ray
        ray.init(address="local", num_cpus=int(sys.argv[4]), log_to_driver=False)
    out = run_study([cell], study="faults", preset="test", storage_path=storage, name="faults",
                    results_root=results, max_concurrent_trials=1)
    print(f"DONE {out}")
