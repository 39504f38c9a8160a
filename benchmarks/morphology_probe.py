"""Why does the morphology positive control fail? (issue J part 3; a probe, not a study or a test).

On the graded synth, `beatnet_no_morphology` (a linear map of each R-aligned window) scores higher than
BEAT-Net on the morphology group (Table 2, cpu). This trains BEAT-Net with BeatCNN variants on the small
preset of tests/test_ablation_control.py (1,500 records, 8 epochs, seed 0, the official split: 150 test
records, by default) and prints each group's macro-AUC with its paired 95% bootstrap CI against the default
BEAT-Net and against the linear map (whichever of the two are among --probes).
One seed and 150 records: it says which way to look, not how large an effect is.

    .venv/bin/python benchmarks/morphology_probe.py          # 3 min on 2 cores
    .venv/bin/python benchmarks/morphology_probe.py --n-records 3000 --epochs 12 --seeds 0 1 2 \
        --probes 0 1 4 --out benchmarks/out/morphology_probe_cpu.json    # the cpu ablation budget

Two questions about the generator and the sampling rate (issue J part 3), each against the linear map:

    .venv/bin/python benchmarks/morphology_probe.py --n-records 3000 --epochs 12 --seeds 0 1 2 --probes 0 1 4 \
        --synth '{"notch_mv": 0.8}' --out benchmarks/out/morphology_probe_notch08.json   # LVH notch x2.7; 16 min
    .venv/bin/python benchmarks/morphology_probe.py --fs 500 --n-records 3000 --epochs 12 --seeds 0 \
        --probes 1 4 --out benchmarks/out/morphology_probe_500hz.json                      # 500 Hz; 19.5 min
    .venv/bin/python benchmarks/morphology_probe.py --fs 500 --n-records 3000 --epochs 12 --seeds 0 1 2 \
        --probes 1 4 --keep /tmp/probe_preds --out benchmarks/out/morphology_probe_500hz_3seeds.json  # ~70 min (shared CPUs)

Also per class (`per_class` in the JSON; morphology classes printed), against beatnet and against the linear
map. At the cpu budget the default and linear-map rows reproduce the committed ablation study's predictions
to three decimals (same seeds, records and code path).

With several seeds every model's scores are stacked per seed and the bootstrap CI resamples test records and
seeds (stats.paired_delta, as the report does). The 3-seed JSONs (morphology_probe_cpu, _notch08,
_500hz_3seeds) were rerun on 2026-12-04 at commit 66a4707 for that: until then they held CIs over records
only, seeds averaged. The AUCs reproduced the earlier files to 0.001; only the CIs widened. Each JSON carries
its command and commit.

Writes benchmarks/out/morphology_probe.json.
"""
from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the stdlib `tokenize` when this folder is sys.path[0]
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import dataclasses
import hashlib
import json
import shlex
import time
from pathlib import Path

import numpy as np

from beat_ray.data.synth import CLASS_GROUPS
from beat_ray.report.stats import macro_point, paired_delta, valid_resamples
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit
from beat_ray.train.results import git_info

OUT = Path(__file__).resolve().parent / "out" / "morphology_probe.json"
PROBES: tuple[tuple[str, dict], ...] = (
    ("beatnet", {}),                                    # global avg+max pooling, 0.23-s receptive field
    ("beatnet_no_morphology", {}),                      # the ablation that wins
    ("beatnet", {"cnn_bins": 9}),                       # keeps where in the window (9 ordered bins)
    ("beatnet", {"rf_s": 0.45}),                        # sees QRS and ST together (issue L's tuned field)
    ("beatnet", {"rf_s": 0.45, "cnn_bins": 9}),
    ("beatnet", {"token_norm": "baseline"}),
    ("beatnet", {"rf_s": 0.45, "cnn_bins": 9, "cnn_strides": (5, 2, 2)}),   # 500 Hz: the first conv decimates
)
GROUPS = ("rhythm", "territory", "morphology")


def _deltas(row: dict, refs: list[str]) -> str:
    return "   ".join(f"minus {r} {row[f'minus_{r}'][0]:+.3f} [{row[f'minus_{r}'][1]:+.3f}, {row[f'minus_{r}'][2]:+.3f}]"
                       for r in refs)


def _predict(cfg: TrialConfig, keep: Path | None) -> dict:
    """fit(cfg)'s test predictions, from `keep` when this exact config (and code commit) already ran."""
    if keep is None:
        return fit(cfg)["_predictions"]
    tag = hashlib.sha256(json.dumps([dataclasses.asdict(cfg), git_info()[0]], sort_keys=True, default=str).encode())
    path = keep / f"{cfg.model}-s{cfg.seed}-{tag.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    pred = fit(cfg)["_predictions"]
    keep.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{k: np.asarray(pred[k]) for k in ("labels", "scores", "classes", "record_id")})
    tmp.replace(path)
    return pred


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-records", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--probes", type=int, nargs="+", default=None, help="indices into PROBES (default all)")
    ap.add_argument("--synth", type=json.loads, default={}, help='SynthConfig overrides as JSON, e.g. \'{"notch_mv": 0.8}\'')
    ap.add_argument("--fs", type=int, default=100, help="sampling rate of synth and tokens (100 or 500)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--keep", type=Path, default=None,
                    help="folder for each (probe, seed)'s test predictions: reused when present, so a killed "
                         "or extended run (more seeds) retrains only what is missing")
    a = ap.parse_args(argv)
    probes = [PROBES[i] for i in sorted(set(a.probes or range(len(PROBES))))]
    preds, seconds = {}, {}
    for name, kw in probes:
        key = name + (json.dumps(kw, sort_keys=True) if kw else "")
        t = time.perf_counter()
        preds[key] = [_predict(TrialConfig(model=name, model_kwargs={"size": "tiny", **kw}, dataset="synth", task="all",
                                           fs=a.fs, synth=a.synth, n_records=a.n_records, epochs=a.epochs, batch_size=64,
                                           seed=s), a.keep)
                      for s in a.seeds]
        seconds[key] = time.perf_counter() - t
    ref = next(iter(preds.values()))[0]
    y, classes = ref["labels"], list(ref["classes"])
    assert all(list(p["record_id"]) == list(ref["record_id"]) for ps in preds.values() for p in ps)   # same records
    scores = {k: np.stack([p["scores"] for p in ps]) for k, ps in preds.items()}   # (seeds, records, classes)
    w, _ = valid_resamples(y, 1000, 0)
    # against the default BEAT-Net and against the linear map, whichever of the two ran
    refs = [k for k in scores if k == "beatnet" or k.startswith("beatnet_no_morphology")]
    rows, per_class = [], []
    for g in GROUPS:
        cols = [i for i, c in enumerate(classes) if CLASS_GROUPS[c] == g]
        for key, sc in scores.items():
            row = {"group": g, "model": key, "auc": macro_point(y, sc, cols)}
            for r in refs:
                row[f"minus_{r}"] = list(paired_delta(y, sc, scores[r], w, cols))
            rows.append(row)
            print(f"{g:11s} {key:45s} AUC {row['auc']:.3f}   " + _deltas(row, refs))
    # per class: which evidence (notch, ST level, T polarity) each BeatCNN reads
    for j, c in enumerate(classes):
        for key, sc in scores.items():
            row = {"class": c, "group": CLASS_GROUPS[c], "model": key, "auc": macro_point(y, sc, [j])}
            for r in refs:
                row[f"minus_{r}"] = list(paired_delta(y, sc, scores[r], w, [j]))
            per_class.append(row)
            if CLASS_GROUPS[c] == "morphology":
                print(f"{c:11s} {key:45s} AUC {row['auc']:.3f}   " + _deltas(row, refs))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    commit, dirty = git_info()
    args = sys.argv[1:] if argv is None else argv
    tmp.write_text(json.dumps({"command": shlex.join(["python", "benchmarks/morphology_probe.py", *args]),
                               "git_commit": commit, "git_dirty": dirty,
                               "ci": f"records{' and seeds' if len(a.seeds) > 1 else ''} (stats.paired_delta)",
                               "synth": a.synth, "fs": a.fs, "n_records": a.n_records, "epochs": a.epochs,
                               "seeds": a.seeds, "test_records": len(y),
                               "seconds": seconds, "rows": rows, "per_class": per_class}, indent=1))
    tmp.replace(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
