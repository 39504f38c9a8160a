"""Can a linear classifier of the R-aligned windows solve the synth's morphology group? (issue J part 3; no training of networks)

The issue's test of a too-simple positive control: "if a class group can be solved by a linear map of an
R-aligned window, its morphology is too simple". `beatnet_no_morphology` is not that test: its linear map of
each window feeds the lead and rhythm transformers, which read it nonlinearly. This is the literal one:
per record, each lead's token windows averaged over the record's beats (12 x W numbers, still a linear map of
the windows), then one L2 logistic regression per class (scikit-learn, standardised features). C is chosen
per class on the validation fold (9) only; the model is refitted on the training folds (1-8) and scored once
on test fold 10, the same 300 records as the committed cpu ablation study, whose beatnet and
beatnet_no_morphology predictions (3 seeds) it is compared with: paired 95% bootstrap CI over test records
(and those seeds), as the report.

    .venv/bin/python benchmarks/linear_window_probe.py                 # synth cpu; 1 min on 2 cores
    .venv/bin/python benchmarks/linear_window_probe.py --preset real   # real PTB-XL, fold rotation; ~3 min

`--preset real` asks the same of real PTB-XL superdiagnostic, against the committed real benchmark (beatnet and
the three CNNs): for each test fold k the classifier trains on the 8 training folds, C is chosen on the fold
before k (the rotation of `experiments/benchmark.py --preset real`), and its probabilities on fold k are
pooled over k = 1..10, as Table 1 pools every model's; paired CI over the same 975 records. The pooled
probabilities come from ten refitted classifiers, so, as for the networks, their calibration differences count.

Writes benchmarks/out/linear_window_probe[_real].json (atomically).
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
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from beat_ray.data.synth import CLASS_GROUPS
from beat_ray.report import stats
from beat_ray.report.load import ResultsError, cells, pooled, read_study
from beat_ray.report.rotation import rotation_seed
from beat_ray.tokenize.corpus import tokens_for
from beat_ray.tokenize.layout import TokenizerConfig
from beat_ray.train.config import TrialConfig
from beat_ray.train.inputs import load_dataset
from beat_ray.train.results import git_info
from beat_ray.train.study import shared_ptbxl

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "linear_window_probe.json"
C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
GROUPS = ("rhythm", "morphology", "territory")


def mean_windows(cfg: TrialConfig) -> tuple[np.ndarray, object]:
    """(N, 12 * W): each lead's windows averaged over the record's valid beats (zeros if it has none)."""
    ds = load_dataset(cfg)
    tk = tokens_for(ds, TokenizerConfig(mode=cfg.token_mode, max_beats=cfg.max_beats, detector=cfg.detector))
    m = tk.beat_mask.astype(np.float64)[..., None, None]                       # (N, B, 1, 1)
    x = (tk.tokens * m).sum(1) / np.maximum(m.sum(1), 1.0)                      # (N, 12, W)
    return x.reshape(len(x), -1), ds


def fit_class(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray) -> tuple[object, float]:
    """The model, fitted on the training folds, whose C has the best validation AUC (never the test fold)."""
    fits = {c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x[tr], y[tr])
            for c in C_GRID}
    best = max(C_GRID, key=lambda c: roc_auc_score(y[va], fits[c].decision_function(x[va])))
    return fits[best], best


def fold_scores(x: np.ndarray, ds, classes: list[str], test_fold: int) -> tuple[np.ndarray, dict]:
    """(n_test, C) probabilities on `test_fold` and the C chosen per class on that rotation's val fold."""
    tr, va, te = (ds.indices(s, test_fold) for s in ("train", "val", "test"))
    out, chosen = np.zeros((len(te), len(classes))), {}
    for j, cl in enumerate(classes):
        clf, chosen[cl] = fit_class(x, ds.labels[:, list(ds.classes).index(cl)], tr, va)
        out[:, j] = clf.predict_proba(x[te])[:, 1]
    return out, chosen


def reference(preset: str, results: Path):
    """The committed predictions to compare with: {model: (record_id, labels, (S, N, C) scores)}, and classes."""
    problems: list[str] = []
    study = read_study(results, "ablations" if preset == "cpu" else "benchmark", preset, problems)
    if study is None:
        raise ResultsError(problems)
    if preset == "cpu":                                       # official split, 3 seeds
        plain = {c.key[0]: c for c in cells(study, ("_model", "config/dataset", "config/task", "config/synth"))
                 if c.key[3] in ("{}", "", None)}
        refs = {m: (plain[m].record_id, plain[m].labels, plain[m].scores()) for m in ("beatnet", "beatnet_no_morphology")}
        return refs, list(plain["beatnet"].classes), study
    rows = study.rows
    refs = {}
    for m in ("beatnet", "resnet1d_wang", "xresnet1d101", "inception1d"):
        r = rows[(rows["_model"] == m) & (rows["seed"] == rotation_seed(rows[rows["_model"] == m]))]
        p = pooled(study, r, m)
        refs[m] = (p.record_id, p.labels, p.scores[None])
    return refs, list(p.classes), study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("cpu", "real"), default="cpu")
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--data-root", default=None, help="real PTB-XL (default: ../shared/realdata/ptbxl)")
    a = ap.parse_args()
    refs, classes, study = reference(a.preset, Path(a.results))
    row = study.rows[study.rows["_model"] == "beatnet"].iloc[0]
    if a.preset == "cpu":
        cfg = TrialConfig(dataset="synth", task="all", n_records=int(row["config/n_records"]))
    else:
        cfg = TrialConfig(dataset="ptbxl", root=a.data_root or shared_ptbxl(), task=str(row["config/task"]))
    x, ds = mean_windows(cfg)
    folds = [10] if a.preset == "cpu" else sorted(int(k) for k in study.rows["config/test_fold"].unique())
    parts = [(ds.indices("test", k), *fold_scores(x, ds, classes, k)) for k in folds]
    te = np.concatenate([p[0] for p in parts])
    rid = ds.record_ids[te].astype(str)
    order = np.argsort(rid, kind="stable") if a.preset == "real" else np.arange(len(rid))
    scores, rid = np.concatenate([p[1] for p in parts])[order], rid[order]
    chosen = {k: p[2] for k, p in zip(folds, parts)}
    y = refs["beatnet"][1]
    for m, (ids, _, _) in refs.items():
        if not np.array_equal(rid, np.asarray(ids).astype(str)):
            raise ResultsError([f"the regenerated {cfg.dataset} test records are not those {m} was tested on"])
    w, _ = stats.valid_resamples(y)
    groups = [g for g in GROUPS if any(CLASS_GROUPS.get(c) == g for c in classes)] if a.preset == "cpu" else ["all"]
    out = {"preset": a.preset, "dataset": f"{cfg.dataset}/{cfg.task}", "test_records": len(rid),
           "test_folds": folds, "features": int(x.shape[1]), "C_chosen_on_val": chosen,
           "commit": git_info()[0] + (" (dirty)" if git_info()[1] else ""), "groups": {}, "per_class": {}}
    print(f"{cfg.dataset}/{cfg.task}, test folds {folds}: {len(rid)} records; "
          f"logistic regression on {x.shape[1]} mean-window features")
    for g in groups:
        cols = [j for j, c in enumerate(classes) if g == "all" or CLASS_GROUPS[c] == g]
        res = {"linear_classifier": stats.macro_point(y, scores[None], cols)}
        line = f"{g:>11}  linear classifier {res['linear_classifier']:.3f}"
        for m, (_, _, s) in refs.items():
            d = stats.paired_delta(y, s, scores[None], w, cols)
            res[m], res[f"{m}_minus_classifier"] = stats.macro_point(y, s, cols), d
            line += f" | {m} {res[m]:.3f}, minus it {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
        out["groups"][g] = res
        print(line)
    for j, cl in enumerate(classes):
        out["per_class"][cl] = {"linear_classifier": stats.macro_point(y, scores[None], [j]),
                                **{m: stats.macro_point(y, s, [j]) for m, (_, _, s) in refs.items()}}
    dest = OUT if a.preset == "cpu" else OUT.with_name("linear_window_probe_real.json")
    dest.parent.mkdir(exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=float))
    tmp.replace(dest)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
