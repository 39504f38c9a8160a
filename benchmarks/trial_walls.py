"""Wall time per trial of a committed study, by model and sampling rate, read from its rows.

    .venv/bin/python benchmarks/trial_walls.py results/benchmark/real500   # -> benchmarks/out/real500_trial_walls.json

Why from the rows: a study's own trials are the measurement that matters (2 at a time on this 2-core
machine, 1 thread each, validation and test scoring included), and every row already carries its Tune wall
time (`time_total_s`) and its in-trial training time (`train_seconds`). Peak RSS is not in the rows: a reused
trial process only grows its peak, so `trial_memory.py --fs 500` measures it in a fresh process per model.
"""
from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def walls(rows: pd.DataFrame) -> list[dict]:
    """Per (model, fs): trials, median / max wall and median training seconds, and the commits they ran at."""
    out = []
    for (model, fs), g in rows.groupby(["config/model", "config/fs"], sort=True):
        out.append({"model": model, "fs": int(fs), "trials": len(g),
                    "wall_s_median": float(g["time_total_s"].median()), "wall_s_max": float(g["time_total_s"].max()),
                    "train_s_median": float(g["train_seconds"].median()),
                    "train_s_per_epoch_median": float((g["train_seconds"] / g["epoch"]).median()),
                    "n_train_median": int(g["n_train"].median()), "git_commits": sorted(set(g["git_commit"]))})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="a results folder, e.g. results/benchmark/real500")
    ap.add_argument("--out", default=None, help="default benchmarks/out/<preset>_trial_walls.json")
    a = ap.parse_args()
    folder = Path(a.folder)
    rows = pd.read_parquet(folder / "trials.parquet")
    preset = str(rows["preset"].iloc[0])
    res = walls(rows)
    for r in res:
        print(f"{r['model']:14s} {r['fs']} Hz: {r['trials']} trials, wall median {r['wall_s_median']:6.0f} s "
              f"(max {r['wall_s_max']:.0f}), training {r['train_s_per_epoch_median']:.1f} s/epoch")
    doc = {"what": f"wall time per trial of {folder} (Tune's time_total_s: 2 trials at a time, 1 thread each, "
                   "scoring included)", "folder": str(folder), "rows": res}
    out = Path(a.out) if a.out else REPO / "benchmarks" / "out" / f"{preset}_trial_walls.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
