"""Per-class AUC of an encoder ablation against BEAT-Net, from committed predictions (issue J part 3; no training).

Table 2 gives each class group's macro-AUC; this splits a group into its classes, to see *which* evidence an
ablation reads better or worse (e.g. whether the morphology control fails on the fragmented-QRS class or on
the ST-T classes). Same records and seeds, paired 95% two-level bootstrap CI over test records and seeds, as the report.

    .venv/bin/python benchmarks/ablation_per_class.py                    # cpu ablations, beatnet_no_morphology
    .venv/bin/python benchmarks/ablation_per_class.py --ablation beatnet_no_shape

Official-split presets only (the report pools fold rotation itself). Writes benchmarks/out/ablation_per_class.json
(the default ablation) or ablation_per_class_<ablation>.json, so one ablation's figures never replace another's.
"""
from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the stdlib `tokenize` when this folder is sys.path[0]
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
from pathlib import Path

import numpy as np

from beat_ray.data.synth import CLASS_GROUPS
from beat_ray.report import stats
from beat_ray.report.load import ResultsError, cells, read_study

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
DEFAULT = "beatnet_no_morphology"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--ablation", default=DEFAULT)
    ap.add_argument("--results", default=str(REPO / "results"))
    a = ap.parse_args()
    problems: list[str] = []
    study = read_study(Path(a.results), "ablations", a.preset, problems)
    if study is None:
        raise ResultsError(problems)
    plain = {c.key[0]: c for c in cells(study, ("_model", "config/dataset", "config/task", "config/synth"))
             if c.key[3] in ("{}", "", None)}
    ref, abl = plain["beatnet"], plain[a.ablation]
    if not np.array_equal(ref.record_id, abl.record_id):
        raise ResultsError([f"beatnet and {a.ablation} were tested on different records"])
    y, (sa, sb) = ref.labels, (ref.scores(), abl.scores())
    w, _ = stats.valid_resamples(y)
    rows = []
    print(f"ablations/{a.preset}: beatnet vs {a.ablation}, {len(y)} test records, {len(ref.preds)} seeds")
    print(f"{'class':>6} {'group':>11} {'pos':>4} {'beatnet':>8} {'ablated':>8}   Δ beatnet − ablated [95% CI]")
    for j, cl in enumerate(ref.classes):
        d, lo, hi = stats.paired_delta(y, sa, sb, w, [j])
        r = {"class": cl, "group": CLASS_GROUPS.get(cl, ""), "positives": int(y[:, j].sum()),
             "beatnet": stats.macro_point(y, sa, [j]), "ablated": stats.macro_point(y, sb, [j]),
             "delta": d, "lo": lo, "hi": hi}
        rows.append(r)
        print(f"{cl:>6} {r['group']:>11} {r['positives']:>4} {r['beatnet']:8.3f} {r['ablated']:8.3f}   "
              f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    compared = study.rows[study.rows["_model"].isin(["beatnet", a.ablation])]  # the two models' own commits
    commits = sorted(set(compared["git_commit"].astype(str))) if "git_commit" in compared else []
    out = OUT / ("ablation_per_class.json" if a.ablation == DEFAULT else f"ablation_per_class_{a.ablation}.json")
    OUT.mkdir(exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"preset": a.preset, "ablation": a.ablation, "test_records": len(y),
                               "seeds": len(ref.preds), "commits": commits, "rows": rows}, indent=1))
    tmp.replace(out)                            # atomic: a crash never leaves half a JSON
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
