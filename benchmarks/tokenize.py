"""Tokenizer speed (not a test): records/s vs reading the record with wfdb.rdsamp and vs
neurokit2.ecg_peaks on one lead, plus the PTB-XL-sized corpus time on 2 cores.

    .venv/bin/python benchmarks/tokenize.py [--corpus 21799] [--jobs 2]

Writes benchmarks/out/tokenize.json. Records come from `synth` (10 s x 12 leads).
"""
from __future__ import annotations

import os
import sys

# this file is named like the stdlib `tokenize` module: keep its folder off sys.path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.modules.pop("tokenize", None) if getattr(sys.modules.get("tokenize"), "__file__", "").startswith(_HERE) else None

import argparse
import json
import platform
import shutil
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import wfdb

from beat_ray.data.synth import SynthConfig, generate
from beat_ray.tokenize import TokenizerConfig, tokenize, tokenize_corpus
from beat_ray.tokenize.corpus import CHUNK, CHUNK_SAMPLES
from beat_ray.tokenize.score import score_records

OUT = Path(__file__).resolve().parent / "out" / "tokenize.json"


CPU = {}      # fn name -> CPU seconds per call (best of the passes), filled by per_record


def per_record(fn, items, key: str = "", passes: int = 5) -> float:
    """Wall seconds per call, best of `passes` passes over the items (less noise from other
    jobs). The process CPU time per call is kept in CPU[key] too: on a shared 2-core machine
    wall time swings 2x with the neighbours' load, CPU time much less (all of it is
    single-threaded here)."""
    best, best_cpu = np.inf, np.inf
    for _ in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for it in items:
            fn(it)
        best = min(best, (time.perf_counter() - t0) / len(items))
        best_cpu = min(best_cpu, (time.process_time() - c0) / len(items))
    CPU[key] = best_cpu
    return best


def bench_rate(fs: int, n: int, tmp: Path) -> dict:
    ds = generate(SynthConfig(n_records=max(n, 10), fs=fs, seed=1))
    x = ds.signals[:n]
    names = [f"r{i:05d}" for i in range(n)]
    for i, name in enumerate(names):     # 16-bit WFDB at 1000 adu/mV, like PTB-XL
        wfdb.wrsamp(name, fs=fs, units=["mV"] * 12, sig_name=list(ds.leads), p_signal=x[i].T.astype(np.float64),
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp))
    cfg = TokenizerConfig()
    read = per_record(lambda nm: wfdb.rdsamp(str(tmp / nm)), names, "read")
    one = per_record(lambda i: tokenize(x[i:i + 1], fs, cfg), range(n), "one")
    batch = per_record(lambda _: tokenize(x, fs, cfg), [None], "batch") / n
    CPU["batch"] /= n
    # the opt-in quality-selected detector (tokenize/select.py): its cost decides whether it can be the default
    sel = per_record(lambda _: tokenize(x, fs, replace(cfg, detector="select")), [None], "select", passes=2) / n
    CPU["select"] /= n
    tk = tokenize(x, fs, cfg)
    import neurokit2 as nk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk_one = per_record(lambda i: nk.ecg_peaks(x[i, 1], sampling_rate=fs), range(min(n, 100)), "nk")
    peaks = [r[r >= 0] for r in tk.r_peaks]
    acc = score_records(ds.extras["r_peaks"], ds.extras["r_offsets"][:n + 1], peaks, fs)
    return {"fs": fs, "records": n, "rdsamp_s_per_record": read,
            "tokenize_one_record_s": one, "tokenize_batched_s_per_record": batch,
            "records_per_s_one_by_one": 1 / one, "records_per_s_batched": 1 / batch,
            "ratio_tokenize_one_to_rdsamp": one / read, "ratio_tokenize_batched_to_rdsamp": batch / read,
            "nk_ecg_peaks_one_lead_s": nk_one, "ratio_tokenize_one_to_nk_one_lead": one / nk_one,
            "ratio_tokenize_batched_to_nk_one_lead": batch / nk_one,
            "tokenize_batched_select_s_per_record": sel, "ratio_select_to_consensus_batched": sel / batch,
            "cpu_s_per_record": dict(CPU),
            "cpu_ratio_tokenize_one_to_rdsamp": CPU["one"] / CPU["read"],
            "cpu_ratio_tokenize_batched_to_rdsamp": CPU["batch"] / CPU["read"],
            "cpu_ratio_tokenize_one_to_nk_one_lead": CPU["one"] / CPU["nk"],
            "cpu_ratio_tokenize_batched_to_nk_one_lead": CPU["batch"] / CPU["nk"],
            "synth_se": acc["se"], "synth_ppv": acc["ppv"], "flagged": int(sum(bool(f) for f in tk.flags))}


def bench_corpus(n: int, jobs: int, tmp: Path) -> dict:
    t0 = time.perf_counter()
    ds = generate(SynthConfig(n_records=n, fs=100, seed=2))
    gen = time.perf_counter() - t0
    cfg = TokenizerConfig()
    t0 = time.perf_counter()
    tk = tokenize_corpus(ds.signals, 100, cfg, n_jobs=jobs, out_dir=tmp / "corpus-tokens")
    wall = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in (tmp / "corpus-tokens").iterdir())
    return {"records": n, "fs": 100, "n_jobs": jobs, "pool_task_unit": CHUNK, "batch_samples": CHUNK_SAMPLES, "synth_generate_s": gen,
            "tokenize_corpus_s": wall, "records_per_s": n / wall, "target_s": 60.0, "met": wall < 60.0,
            "tokens_gb_on_disk": size / 1e9, "flagged": int(sum(bool(f) for f in tk.flags)),
            "cropped": tk.n_cropped}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="records per rate for the per-record timings")
    ap.add_argument("--corpus", type=int, default=21799)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="beat-ray-bench-"))
    try:
        res = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "rates": [bench_rate(fs, args.n, tmp / f"wfdb{fs}") if (tmp / f"wfdb{fs}").mkdir() is None else None
                         for fs in (100, 500)]}
        for r in res["rates"]:
            print(f"{r['fs']:>4} Hz: tokenize {r['records_per_s_one_by_one']:.0f} rec/s one by one, "
                  f"{r['records_per_s_batched']:.0f} rec/s batched; rdsamp {1 / r['rdsamp_s_per_record']:.0f} rec/s; "
                  f"ratio to rdsamp {r['ratio_tokenize_one_to_rdsamp']:.2f} (batched {r['ratio_tokenize_batched_to_rdsamp']:.2f}); "
                  f"ratio to nk.ecg_peaks(1 lead) {r['ratio_tokenize_one_to_nk_one_lead']:.2f} "
                  f"(batched {r['ratio_tokenize_batched_to_nk_one_lead']:.2f}); detector=select batched "
                  f"{1 / r['tokenize_batched_select_s_per_record']:.0f} rec/s ({r['ratio_select_to_consensus_batched']:.1f}x "
                  f"the consensus); CPU-time ratios to rdsamp "
                  f"{r['cpu_ratio_tokenize_one_to_rdsamp']:.2f} (batched {r['cpu_ratio_tokenize_batched_to_rdsamp']:.2f}), "
                  f"to nk {r['cpu_ratio_tokenize_one_to_nk_one_lead']:.2f} (batched {r['cpu_ratio_tokenize_batched_to_nk_one_lead']:.2f})")
        if args.corpus:
            c = bench_corpus(args.corpus, args.jobs, tmp)
            res["corpus"] = c
            print(f"corpus {c['records']} x 10 s at 100 Hz, {c['n_jobs']} workers: {c['tokenize_corpus_s']:.1f} s "
                  f"({c['records_per_s']:.0f} rec/s), target < 60 s: {'met' if c['met'] else 'MISSED'}; "
                  f"{c['tokens_gb_on_disk']:.2f} GB of tokens")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=1))
        print(f"wrote {OUT}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
