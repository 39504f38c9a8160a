"""Peak memory and time of one real-data trial per model, each in a fresh process.

    .venv/bin/python benchmarks/trial_memory.py                  # the shared PTB-XL subset, 2 epochs
    .venv/bin/python benchmarks/trial_memory.py --epochs 1 --models beatnet inception1d
    .venv/bin/python benchmarks/trial_memory.py --fs 500 --out benchmarks/out/trial_memory_500hz.json
        # the real500 preset's trials: the 477 records with a 500-Hz file, at 500 Hz

Why a fresh process per model: peak RSS (`ru_maxrss`) only grows, so one process measuring four
models would report the largest for all. Each child runs `fit` on the `real` presets' config
(superdiagnostic, test fold 10, published sizes, 1 thread), then prints its own peak RSS, the
wall time and the per-epoch training time. The dataset and token caches are warm (prepared once
before), as in a sweep where the driver prepares them. Writes benchmarks/out/trial_memory.json.
"""
from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit
cfg = TrialConfig.from_dict(json.loads(sys.argv[1]))
t0 = time.perf_counter()
m = fit(cfg)
wall = time.perf_counter() - t0
print("RESULT", json.dumps({"wall_s": wall, "train_s_per_epoch": m["train_seconds"] / cfg.epochs,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n_train": m["n_train"],
      "n_params": m["n_params"], "test_macro_auc": m["test/macro_auc"]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["beatnet", "resnet1d_wang", "xresnet1d101", "inception1d"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--fs", type=int, default=100, help="500: the real500 preset's records and rate")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "trial_memory.json"))
    a = ap.parse_args()
    from beat_ray.train.study import shared_ptbxl
    rows = []
    for model in a.models:
        cfg = {"model": model, "dataset": "ptbxl", "task": "superdiagnostic", "root": shared_ptbxl(),
               "epochs": a.epochs, "batch_size": 64, "threads": 1, "fs": a.fs,
               "records_at_fs": 500 if a.fs == 500 else 0}
        p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=REPO, capture_output=True,
                           text=True, check=True)
        res = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("RESULT"))[7:])
        rows.append({"model": model, **res})
        print(f"{model:14s} peak RSS {res['peak_rss_mib']:7.0f} MiB  wall {res['wall_s']:6.1f} s  "
              f"train {res['train_s_per_epoch']:5.1f} s/epoch  ({res['n_train']} training records)", flush=True)
    from beat_ray.train.results import git_info
    data = ("../shared/realdata/ptbxl (975 superdiagnostic records, 100 Hz), test fold 10" if a.fs == 100 else
            f"../shared/realdata/ptbxl, the records with a 500-Hz file, at {a.fs} Hz (real500 preset), test fold 10")
    commit, dirty = git_info()
    doc = {"what": "one trial of the real presets' config, fresh process per model", "epochs": a.epochs,
           "threads": 1, "fs": a.fs, "data": data, "git_commit": commit, "git_dirty": dirty,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
