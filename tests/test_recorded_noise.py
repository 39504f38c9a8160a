"""Table 5b on planted predictions: a model made worse on the annotated noisy records shows a Δ whose CI
excludes 0, an unaffected one a Δ whose CI covers 0, and the paired ΔΔ finds the difference."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from beat_ray.report import analysis as an
from beat_ray.report import recorded_noise as rn
from beat_ray.report.load import read_study

N, CLASSES = 600, ("MI", "NORM")


def _write(root, noisy: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    rid = np.array([str(i + 1) for i in range(N)])
    fold = np.arange(N) % 10 + 1
    labels = (rng.random((N, 2)) < 0.4).astype(np.uint8)
    folder = root / "benchmark" / "real"
    (folder / "predictions").mkdir(parents=True)
    rows = []
    for model in ("beatnet", "resnet1d_wang"):
        scores = 0.6 * labels + rng.random((N, 2))
        if model == "resnet1d_wang":
            scores[noisy] = rng.random((int(noisy.sum()), 2))       # learned nothing on the noisy records
        for k in range(1, 11):
            idx = np.flatnonzero(fold == k)
            tid = f"{model[:3]}_{k:02d}"
            np.savez_compressed(folder / "predictions" / f"{tid}.npz", record_id=rid[idx], scores=scores[idx],
                                labels=labels[idx], classes=np.array(CLASSES))
            auc = np.mean([roc_auc_score(labels[idx, c], scores[idx, c]) for c in range(2)])
            rows.append({"study": "benchmark", "preset": "real", "trial_id": tid, "seed": 0, "git_commit": "c" * 40,
                         "git_dirty": False, "finished_at": "2026-12-01T00:00:00", "config/model": model,
                         "config/model_kwargs": json.dumps({}), "config/dataset": "ptbxl",
                         "config/task": "superdiagnostic", "config/test_fold": k, "config/recipe": "default",
                         "epoch": 15, "train_seconds": 1.0, "n_params": 10, "n_train": 48, "n_test": len(idx),
                         "test/macro_auc": float(auc), "predictions_file": f"predictions/{tid}.npz"})
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet", index=False)


def test_a_model_worse_on_noisy_records_is_found_and_an_unaffected_one_is_not(tmp_path):
    noisy = np.zeros(N, bool)
    noisy[np.random.default_rng(1).choice(N, 150, replace=False)] = True
    _write(tmp_path, noisy)
    flags = pd.DataFrame({c: False for c in rn.COLUMNS}, index=[str(i + 1) for i in range(N)])
    flags.loc[flags.index[noisy], "static_noise"] = True
    flags[rn.ANY] = flags[list(rn.COLUMNS)].any(axis=1)
    study = read_study(tmp_path, "benchmark", "real", problems := [])
    assert not problems
    arms = {a.model: a for a in rn.analyse(study, flags, an.Bootstrap(200, 0))}
    ok, bad = arms["beatnet"].groups[0], arms["resnet1d_wang"].groups[0]
    assert ok.name == bad.name == rn.ANY and ok.n_noisy == 150 and ok.n_clean == 450
    assert [g.name for g in arms["beatnet"].groups] == [rn.ANY, "static_noise"]    # the others have < 20 records
    assert ok.delta.lo < 0 < ok.delta.hi                      # unaffected: its CI covers 0
    assert bad.delta.hi < 0 and bad.delta_mix.hi < 0         # made worse: its CI excludes 0
    assert bad.vs_ref.lo > 0                                 # beatnet loses less, paired
    assert "beatnet loses less" in rn.verdict(list(arms.values()))[0]


def test_annotations_read_the_four_columns(tmp_path):
    db = tmp_path / "ptbxl_database.csv"
    pd.DataFrame({"ecg_id": [1, 2, 3], "baseline_drift": [" , V1", None, None], "static_noise": [None, None, None],
                  "burst_noise": [None, "I-V1", None], "electrodes_problems": [None, None, " , "]}).to_csv(db, index=False)
    f = rn.annotations(db)
    assert f[rn.ANY].tolist() == [True, True, False]          # " , " is an empty annotation
    assert f.loc["2", "burst_noise"] and not f.loc["1", "burst_noise"]
