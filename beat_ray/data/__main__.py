"""CLI: `python -m beat_ray.data prepare --dataset NAME --root PATH --fs 100|500`."""
from __future__ import annotations

import argparse
import json
import sys

from beat_ray.data.dataset import ECGDataset
from beat_ray.data.errors import RecordError
from beat_ray.data.prepare import format_report, prepare


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m beat_ray.data")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="read, resample and cache a dataset once; print its data report")
    p.add_argument("--dataset", required=True, help="synth | ptbxl | cpsc2018 | chapman")
    p.add_argument("--root", default=None, help="folder holding the dataset files (not needed for synth)")
    p.add_argument("--task", default=None)
    p.add_argument("--fs", type=int, default=100, choices=[100, 250, 500])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-records", type=int, default=None, help="synth only: number of records")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--force", action="store_true")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    a = ap.parse_args(argv)
    kwargs = {"n_records": a.n_records} if a.n_records else {}
    try:
        path = prepare(a.dataset, root=a.root, task=a.task, fs=a.fs, seconds=a.seconds, seed=a.seed,
                       cache_dir=a.cache_dir, workers=a.workers, force=a.force, **kwargs)
    except (RecordError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = ECGDataset.open(path).report
    print(json.dumps(report, indent=1, default=str) if a.json else format_report(report))
    print(f"cache: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
