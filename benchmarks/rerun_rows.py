"""Retrain committed rows at this checkout and compare their test macro-AUC with the stored one.

    .venv/bin/python benchmarks/rerun_rows.py results/benchmark/real --model beatnet --cells 0:2 0:4 1:2
    # -> benchmarks/out/rerun_benchmark_real_beatnet.json

Why: a study that grows over sessions (seed 0 first, seeds 1-2 days later) mixes commits, so a difference
between seeds could be code drift, not seed variance. Retraining a few old cells at the new commit tells
the two apart: a row of the current code reproduces exactly (same seed and config, same numbers on CPU);
an older row that moves by less than the seed spread leaves the seed effect standing. One trial at a time,
1 thread, in this process (no Ray): the numbers are the rows', not the walls.
"""
from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from beat_ray.train.results import git_info, read_rows, row_config


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="a results folder, e.g. results/benchmark/real")
    ap.add_argument("--model", required=True)
    ap.add_argument("--cells", nargs="+", required=True, metavar="SEED:FOLD")
    ap.add_argument("--data-root", default=None, help="the rows' data root if it moved")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from beat_ray.train.loop import fit
    rows = read_rows(a.folder)
    rows = rows[(rows["config/model"] == a.model) & (rows["config/recipe"] == "default")]
    if "config/detector" in rows:
        rows = rows[rows["config/detector"].fillna("consensus") == "consensus"]
    commit, dirty = git_info(str(REPO))
    out = []
    for cell in a.cells:
        seed, fold = map(int, cell.split(":"))
        hit = rows[(rows["config/seed"] == seed) & (rows["config/test_fold"] == fold)]
        if len(hit) != 1:
            raise SystemExit(f"{a.folder}: {len(hit)} rows of {a.model} at seed {seed}, test fold {fold} (need 1)")
        row = hit.iloc[0]
        cfg = replace(row_config(row), eval_noise=(), attribution_steps=0, **({"root": a.data_root} if a.data_root else {}))
        t0 = time.perf_counter()
        m = fit(cfg)
        out.append({"seed": seed, "test_fold": fold, "stored": float(row["test/macro_auc"]),
                    "stored_commit": row["git_commit"], "now": float(m["test/macro_auc"]),
                    "stored_best_epoch": int(row["best_epoch"]), "now_best_epoch": int(m["best_epoch"]),
                    "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(out[-1]), flush=True)
    path = Path(a.out or REPO / "benchmarks/out" / f"rerun_{Path(a.folder).parent.name}_{Path(a.folder).name}_{a.model}.json")
    doc = {"folder": a.folder, "model": a.model, "commit": commit, "dirty_tree": dirty,
           "command": "python benchmarks/rerun_rows.py " + " ".join(sys.argv[1:]), "cells": out}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
