"""Memory of preparation and of one trial at 2,000 and at 21,799 records (issue K): does RSS grow with N?

    .venv/bin/python benchmarks/cluster_memory.py            # ~10 min on 2 cores -> benchmarks/out/cluster_memory.json

A PTB-XL-layout tree (records100/, ptbxl_database.csv) of each size is written from synth by
`beat_ray.data.export` (21,799 = the PTB-XL 1.0.3 record count). Each step runs in a fresh process:
- prepare: peak RSS (VmHWM) against the signals array it writes; preparation streams rows to the
  file (data/npywriter.py), so the ratio must stay <= 1.3 even though the array is ~1 GiB at N=21,799;
- one trial (`fit`, resnet1d_wang width 16, 1 epoch, 2 threads; beatnet tiny with its token cache
  built first): peak VmHWM and peak anonymous RSS (RssAnon, sampled every 0.1 s). Memory-mapped
  signal pages read in an epoch count in VmHWM but are reclaimable file cache; RssAnon is what the
  process itself holds (the standardiser streams the training split in chunks: data/signal.py).
"""
from __future__ import annotations

import json
import os
import sys

# this folder holds tokenize.py, which would shadow the standard library's when run as a script
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import platform
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "cluster_memory.json"
# 2,000 and 21,799 as issue K asks; 4,000 too, the smallest size whose val split (10%) fills predict's
# 256-record eval batches, so that growth from 4,000 to 21,799 is growth with N alone
SIZES = tuple(int(x) for x in os.environ.get("BEAT_RAY_MEM_SIZES", "2000,4000,21799").split(","))

PROBE = r"""
import json, os, sys, threading, time
peak = {"anon": 0}
def sample():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak["anon"] = max(peak["anon"], int(line.split()[1]))
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
exec(sys.argv[1])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("PROBE " + json.dumps({"wall_s": time.perf_counter() - t0, "vmhwm_mib": hwm / 1024,
                             "rss_anon_peak_mib": peak["anon"] / 1024, **globals().get("extra", {})}))
"""

PREPARE = """
from beat_ray.data import load
ds = load("ptbxl", root=os.environ["TREE"], task="superdiagnostic", fs=100, progress=False)
extra = {"n_records": len(ds), "signals_mib": ds.signals.nbytes / 2**20}
"""

TOKENS = """
from beat_ray.data import load
from beat_ray.tokenize import TokenizerConfig
from beat_ray.tokenize.corpus import tokens_for
ds = load("ptbxl", root=os.environ["TREE"], task="superdiagnostic", fs=100, progress=False)
tokens_for(ds, TokenizerConfig())
"""

TRIAL = """
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit
m = fit(TrialConfig(dataset="ptbxl", root=os.environ["TREE"], task="superdiagnostic", model=os.environ["MODEL"],
                    model_kwargs=json.loads(os.environ["KW"]), epochs=1, batch_size=64, threads=2))
extra = {"n_train": m["n_train"], "test_macro_auc": m["test/macro_auc"]}
"""


def probe(code: str, env: dict) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, code], cwd=REPO, env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    line = next(x for x in run.stdout.splitlines() if x.startswith("PROBE "))
    return json.loads(line[6:])


def write_tree(n: int, root: Path, cache: Path) -> float:
    from beat_ray.data import load
    from beat_ray.data.export import write_ptbxl
    from beat_ray.data.synth import CLASSES_ALL
    t0 = time.perf_counter()
    ds = load("synth", fs=100, n_records=n, cache_dir=cache)
    write_ptbxl(ds, root, classes=list(CLASSES_ALL), labels=ds.extras["labels_all"])
    return time.perf_counter() - t0


def main() -> int:
    sys.path.insert(0, str(REPO))
    rows = []
    with tempfile.TemporaryDirectory(prefix="beat_ray_mem_") as tmp:
        for n in SIZES:
            tree, cache = Path(tmp) / f"tree{n}", Path(tmp) / f"cache{n}"
            write_s = write_tree(n, tree, Path(tmp) / "synth_cache")
            rows_note = "val split >= the 256-record eval batch" if n >= 2560 else \
                "val split < the 256-record eval batch: evaluation batches are smaller than at larger N"
            env = {"TREE": str(tree), "BEAT_RAY_CACHE": str(cache)}
            prep = probe(PREPARE, env)
            prep["peak_rss_over_signals"] = prep["vmhwm_mib"] / prep["signals_mib"]
            probe(TOKENS, env)
            trials = {}
            for model, kw in (("resnet1d_wang", {"width": 16}), ("beatnet", {"size": "tiny"})):
                trials[model] = probe(TRIAL, {**env, "MODEL": model, "KW": json.dumps(kw)})
            rows.append({"records": n, "write_tree_s": write_s, "prepare": prep, "trial": trials, "note": rows_note})
            print(json.dumps(rows[-1], indent=1), flush=True)
    out = {"what": __doc__.split("\n")[0], "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    for r in rows:
        t = r["trial"]
        print(f"N={r['records']:>6}: prepare peak {r['prepare']['vmhwm_mib']:.0f} MiB for {r['prepare']['signals_mib']:.0f} "
              f"MiB of signals (ratio {r['prepare']['peak_rss_over_signals']:.2f}); trial RssAnon peak "
              + ", ".join(f"{m} {v['rss_anon_peak_mib']:.0f} MiB (VmHWM {v['vmhwm_mib']:.0f})" for m, v in t.items()))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
