"""Issue I: label efficiency at a matched optimisation budget, recovery as a paired test."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from beat_ray.report import efficiency
from beat_ray.report.analysis import Bootstrap
from beat_ray.report.load import Predictions, ResultsError, Study
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit


@pytest.mark.parametrize("model,kwargs", [("beatnet", {"size": "tiny"}), ("resnet1d_wang", {"width": 16})])
def test_matched_budget_gives_every_fraction_the_full_runs_steps(model, kwargs):
    base = TrialConfig(model=model, model_kwargs=kwargs, dataset="synth", n_records=300, epochs=2, batch_size=32,
                       budget="matched")
    rows = {f: fit(TrialConfig(**{**base.to_dict(), "label_fraction": f})) for f in (0.1, 0.35, 1.0)}
    full = rows[1.0]
    assert full["n_train"] == full["n_train_full"] > 200
    want = 2 * math.ceil(full["n_train_full"] / 32)
    assert {r["optimizer_steps"] for r in rows.values()} == {want}
    assert rows[0.1]["n_train"] < 0.15 * full["n_train"] and not rows[0.1]["budget_capped"]
    # the old budget (one pass over the subset per epoch) gives the 10% subset a tenth of the steps
    old = fit(TrialConfig(**{**base.to_dict(), "label_fraction": 0.1, "budget": "epochs"}))
    assert old["optimizer_steps"] == 2 * math.ceil(rows[0.1]["n_train"] / 32) < want / 5


def _study(scores_by_fraction: dict[float, list[np.ndarray]], labels: np.ndarray) -> Study:
    rid = np.array([f"r{i:04d}" for i in range(len(labels))])
    rows, preds = [], {}
    for f, per_seed in scores_by_fraction.items():
        for seed, s in enumerate(per_seed):
            tid = f"t{f:g}_{seed}"
            preds[tid] = Predictions(rid, s.astype(np.float64), labels.astype(np.int8), ("A", "B"))
            rows.append({"trial_id": tid, "_model": "beatnet", "config/dataset": "synth", "config/task": "all",
                         "config/label_fraction": f, "seed": seed, "config/test_fold": 10, "n_train": 1000 * f,
                         "optimizer_steps": 120, "best_epoch": 9, "config/epochs": 12,
                         "finished_at": "2026-12-01T00:00:00"})
    return Study("data_efficiency", "test", None, pd.DataFrame(rows), preds)


def test_paired_recovery_on_hand_built_predictions():
    """Known answers: a fraction whose scores are the full run's plus a tiny jitter recovers (Δ ≈ 0 with a
    tight paired CI) although each AUC alone has a CI of about ±0.04; one that loses 0.05 of AUC does not."""
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random((n, 2)) < 0.3).astype(np.int8)
    full = [y + rng.normal(0, 0.8, y.shape) for _ in range(3)]                  # AUC ~0.8, three seeds
    near = [s + rng.normal(0, 0.02, s.shape) for s in full]                       # the same model, jittered
    worse = [s + rng.normal(0, 0.6, s.shape) for s in full]                       # extra noise: lower AUC
    boot = Bootstrap(n_boot=300, margin=0.01)
    c = efficiency.curves(_study({0.1: worse, 0.35: near, 1.0: full}, y), boot)[0]
    p10, p35, p100 = c.points
    assert p35.recovers(0.01) and abs(p35.delta.mean) < 0.005 and p35.delta.hi - p35.delta.lo < 0.02
    assert p100.auc.hi - p100.auc.lo > 0.05                                     # unpaired CIs are wide
    assert not p10.recovers(0.01) and p10.delta.hi < -0.03
    assert c.recovery == 0.35 and c.recovery_ci == (0.35, 0.35)
    # the same jittered fraction does not "recover" when the margin is too small to absorb the jitter
    assert not efficiency.curves(_study({0.35: near, 1.0: full}, y), Bootstrap(n_boot=300, margin=1e-5))[0] \
        .points[0].recovers(1e-5)
    # every larger fraction must recover too: a good 10% below a bad 35% does not count
    c2 = efficiency.curves(_study({0.1: near, 0.35: worse, 1.0: full}, y), boot)[0]
    assert c2.points[0].recovers(0.01) and c2.recovery == 1.0


def test_unpaired_fractions_are_refused():
    rng = np.random.default_rng(1)
    y = (rng.random((50, 2)) < 0.4).astype(np.int8)
    s = [y + rng.normal(0, 1, y.shape) for _ in range(2)]
    study = _study({0.5: s[:1], 1.0: s}, y)                      # 50% has one seed, 100% two
    with pytest.raises(ResultsError, match="must be paired"):
        efficiency.curves(study, Bootstrap(n_boot=50))
