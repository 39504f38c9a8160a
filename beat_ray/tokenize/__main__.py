"""CLI: `python -m beat_ray.tokenize prepare --dataset synth --mode fixed` (prepares the data first).

Tokens are cached inside the dataset's cache dir, keyed by the tokenizer config; the printed
token report says how many records are flagged (no usable beats) and why, and how many were cropped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from beat_ray.data import RecordError, load
from beat_ray.tokenize.corpus import token_report, tokens_for
from beat_ray.tokenize.layout import TokenizerConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m beat_ray.tokenize")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="prepare a dataset (if needed) and cache its beat tokens")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", default=None)
    p.add_argument("--task", default=None)
    p.add_argument("--fs", type=int, default=100)
    p.add_argument("--n-records", type=int, default=None, help="synth only")
    p.add_argument("--mode", default="fixed", choices=["fixed", "adaptive", "patch"])
    p.add_argument("--max-beats", type=int, default=TokenizerConfig.max_beats)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    kwargs = {"n_records": a.n_records} if a.n_records else {}
    try:
        ds = load(a.dataset, root=a.root, task=a.task, fs=a.fs, cache_dir=a.cache_dir, **kwargs)
        tokens = tokens_for(ds, TokenizerConfig(mode=a.mode, max_beats=a.max_beats), n_jobs=a.jobs)
    except (RecordError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(token_report(tokens), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
