"""Data-stage throughput: `synth` generation and `prepare` on a generated PTB-XL tree.

    python benchmarks/data.py [--n 2000] [--out benchmarks/out/data.json]

Targets (issue A): synth >= 500 records/s for 10 s x 12 leads at 100 Hz, single process.
Prepare is measured on a real-format tree (WFDB .hea/.dat + ptbxl_database.csv) of >= 2,000
records written from synth, read back through the PTB-XL reader, with 1 and 2 workers.
"""
from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py shadows the stdlib `tokenize` (used by inspect/linecache) when this folder
# is sys.path[0], as it is for `python benchmarks/data.py`: keep the folder off the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from beat_ray.data.export import write_ptbxl
from beat_ray.data.prepare import prepare
from beat_ray.data.synth import CLASSES_ALL, SynthConfig, generate


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_synth(n: int, fs: int, repeats: int = 3) -> dict:
    """Best of `repeats` full generations (signals, labels, ground truth and folds)."""
    generate(SynthConfig(n_records=64, fs=fs, seed=1))             # warm caches / imports
    dt = min(_timed(generate, SynthConfig(n_records=n, fs=fs, seed=0))[1] for _ in range(repeats))
    return {"records": n, "fs": fs, "seconds": round(dt, 3), "records_per_s": round(n / dt, 1)}


def bench_prepare(n: int, workdir: Path) -> dict:
    ds = generate(SynthConfig(n_records=n, fs=100, seed=0))
    root, t_write = _timed(write_ptbxl, ds, workdir / "ptbxl", classes=list(CLASSES_ALL),
                           labels=ds.extras["labels_all"])
    out = {"records": n, "fs": 100, "write_tree_s": round(t_write, 2)}
    for workers in (1, 2):
        cache = workdir / f"cache{workers}"
        _, dt = _timed(prepare, "ptbxl", root=root, task="superdiagnostic", fs=100, cache_dir=cache,
                       workers=workers, progress=False)
        out[f"workers_{workers}"] = {"seconds": round(dt, 2), "records_per_s": round(n / dt, 1)}
        shutil.rmtree(cache)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "data.json"))
    a = ap.parse_args()
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "synth_100hz": bench_synth(a.n, 100), "synth_500hz": bench_synth(max(a.n // 5, 100), 500)}
    with tempfile.TemporaryDirectory() as tmp:
        result["prepare_ptbxl_tree"] = bench_prepare(a.n, Path(tmp))
    result["targets"] = {"synth_records_per_s_at_100hz": 500,
                         "met": result["synth_100hz"]["records_per_s"] >= 500}
    print(json.dumps(result, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
