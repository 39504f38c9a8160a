"""Issue L: the hyperparameter search (experiments/hparams.py) and what consumes its best.json.

The search test runs the real thing: Ray Tune with OptunaSearch and ASHA on the smoke preset,
SIGKILLed mid-search and resumed, then a study trained from its best.json.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from procs import kill_pids, load_presets, marked_pids, private_ray

from beat_ray.train.config import TrialConfig
from beat_ray.train.inputs import build_inputs, load_dataset
from beat_ray.train.loop import build_model, fit
from beat_ray.train.search import apply, apply_hparams

REPO = Path(__file__).resolve().parents[1]


def _reports(cfg: TrialConfig, flip_test: bool) -> list[dict]:
    ds = load_dataset(cfg)
    ds = dataclasses.replace(ds, labels=ds.labels.copy())
    if flip_test:
        ds.labels[ds.indices("test", cfg.test_fold)] ^= 1
    out: list[dict] = []
    fit(cfg, on_epoch=lambda m, _state: out.append({k: v for k, v in m.items()
                                                    if k not in ("train_seconds", "data_origin")}),
        data=build_inputs(cfg, build_model(cfg, len(ds.classes)), ds))
    return out


def test_a_test_fold_label_never_reaches_the_tuner(beat_ray_cache):
    """A search trial (score_test=False) reports the same numbers whatever its test fold's labels are,
    and reports nothing about the test fold; a study trial with the same flip does see it."""
    cfg = TrialConfig(model="resnet1d_wang", model_kwargs={"width": 16}, n_records=200, epochs=2, batch_size=32,
                      test_fold=3, score_test=False)
    clean, flipped = _reports(cfg, False), _reports(cfg, True)
    assert clean == flipped
    assert not [k for m in clean for k in m if k.startswith(("test/", "_", "noise/"))]
    scored = dataclasses.replace(cfg, score_test=True)
    a, b = _reports(scored, False)[-1], _reports(scored, True)[-1]
    assert a["val_macro_auc"] == b["val_macro_auc"] and a["test/macro_auc"] != b["test/macro_auc"]


def _best(models: dict) -> dict:
    return {"data": {"dataset": "synth", "task": "all", "fs": 100, "n_records": None, "data_seed": 0},
            "models": models}


def test_best_json_is_applied_per_test_fold_and_refuses_what_would_leak(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps(_best({"beatnet": {"10": {"params": {"lr": 1e-3, "model_kwargs.size": "small",
                                                                    "max_beats": 24}}}})))
    cell = {**TrialConfig().to_dict(), "model_kwargs": {"size": "tiny", "dropout": 0.1}}
    [tuned] = apply_hparams([cell], best)
    assert tuned["lr"] == 1e-3 and tuned["max_beats"] == 24
    assert tuned["model_kwargs"] == {"size": "small", "dropout": 0.1}       # searched keys win, others stay
    assert tuned["hparams"].startswith(f"{best}#") and TrialConfig.from_dict(tuned).hparams == tuned["hparams"]
    with pytest.raises(SystemExit, match=r"tuned for test folds \['10'\] only"):
        apply_hparams([{**cell, "test_fold": 3}], best)                     # fold 3's search never ran
    with pytest.raises(SystemExit, match="no tuned config for resnet1d_wang"):
        apply_hparams([{**cell, "model": "resnet1d_wang"}], best)
    with pytest.raises(SystemExit, match="task='rhythm'"):
        apply_hparams([{**cell, "task": "rhythm"}], best)
    with pytest.raises(ValueError, match="unknown trial config keys"):
        apply(cell, {"learning_rate": 1.0})
    # the tag names the cell's own entry: a search that adds fold 3 leaves fold 10's rows matching their cells,
    # while another config for fold 10 is another cell
    doc = json.loads(best.read_text())
    doc["models"]["beatnet"]["3"] = {"params": {"lr": 5e-3}}
    best.write_text(json.dumps(doc))
    assert apply_hparams([cell], best)[0]["hparams"] == tuned["hparams"]
    doc["models"]["beatnet"]["10"]["params"]["lr"] = 2e-3
    best.write_text(json.dumps(doc))
    assert apply_hparams([cell], best)[0]["hparams"] != tuned["hparams"]


def _exp_results(storage: Path, exp: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in (storage / exp).glob("*/result.json"):
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        if lines:
            out[lines[0]["trial_id"]] = lines
    return out


@pytest.mark.ray
def test_smoke_search_finds_the_planted_config_resumes_after_a_kill_and_feeds_a_study(beat_ray_cache, tmp_path):
    search = load_presets("hparams")["smoke"]
    ray_tmp, marker, env = private_ray("hparams", beat_ray_cache)
    res, storage = tmp_path / "results", tmp_path / "storage"
    cmd = [sys.executable, "experiments/hparams.py", "--preset", "smoke", "--name", "hp", "--storage-path",
           str(storage), "--results-root", str(res), "--max-concurrent-trials", "1"]
    first_exp = f"hp-{search.models[0]}-f10"
    try:
        with open(tmp_path / "run1.log", "w") as log:
            first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            deadline = time.monotonic() + 240
            while not any(r[-1].get("done") for r in _exp_results(storage, first_exp).values()):
                assert first.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no search trial finished in 240 s"
                time.sleep(0.2)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        kill_pids(marked_pids(marker))
        before = _exp_results(storage, first_exp)
        assert 1 <= len(before) < search.num_samples * len(search.models)

        again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400, check=False)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        rows = pd.read_parquet(res / "hparams" / "smoke" / "trials.parquet")
        # equal budget: every model the same number of trials, maximum epochs and scheduler
        per = rows.groupby("search/model").agg(n=("trial_id", "nunique"), samples=("search/num_samples", "max"),
                                               epochs=("search/max_epochs", "max"), sched=("search/scheduler", "max"))
        assert list(per["n"]) == [search.num_samples] * 2 and list(per["samples"]) == [search.num_samples] * 2
        assert per["epochs"].nunique() == 1 and per["sched"].nunique() == 1
        assert not [c for c in rows.columns if c.startswith("test/")] and not rows["config/score_test"].any()
        # resumed, not restarted: the trials that ran before the kill are still the search's trials
        first_rows = rows[rows["search/model"] == search.models[0]]
        assert set(before) <= set(first_rows["trial_id"]) and len(first_rows) == search.num_samples
        # ...and Optuna's study, restored from the searcher state, holds every trial once
        from ray.tune.search.optuna import OptunaSearch
        s = OptunaSearch()
        s.restore_from_dir(str(storage / first_exp))
        assert len([t for t in s._ot_study.trials if t.state.is_finished()]) == search.num_samples
        # the planted answer: lr 1e-7 cannot learn in 3 epochs, 3e-3 can; both were evaluated
        best = json.loads((res / "hparams" / "smoke" / "best.json").read_text())
        for m in search.models:
            lrs = rows.loc[rows["search/model"] == m, "config/lr"]
            assert {1e-7, 3e-3} <= set(lrs)
            assert best["models"][m]["10"]["params"] == {"lr": 3e-3}
            auc = rows[rows["search/model"] == m].groupby("config/lr")["best_val_macro_auc"].max()
            assert auc[3e-3] > auc[1e-7] + 0.1
        # a study trains every model with its tuned config, and its rows say so
        study = subprocess.run([sys.executable, "experiments/data_efficiency.py", "--preset", "smoke", "--name",
                                "tuned", "--storage-path", str(storage), "--results-root", str(res), "--hparams",
                                str(res / "hparams" / "smoke" / "best.json"), "--set", "epochs=1",
                                "--set", "n_records=300"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=400, check=False)
        assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]
        brows = pd.read_parquet(res / "data_efficiency" / "smoke" / "trials.parquet")
        assert (brows["config/lr"] == 3e-3).all() and brows["config/hparams"].str.contains("best.json#").all()
        assert set(np.unique(brows["config/model"])) == set(search.models)
    finally:
        kill_pids(marked_pids(marker))
        shutil.rmtree(ray_tmp, ignore_errors=True)
