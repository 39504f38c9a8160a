"""Metrics against brute force with scikit-learn: AUC handling of absent classes, val-chosen F1 thresholds."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from beat_ray.train.metrics import best_thresholds, evaluate, macro_auc, per_class_auc


def test_best_thresholds_match_brute_force():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 4)) < [0.5, 0.2, 0.05, 0.0]).astype(int)
    s = np.round(np.clip(y * 0.3 + rng.random((300, 4)) * 0.8, 0, 1), 2)      # rounding makes ties
    th = best_thresholds(y, s)
    for c in range(3):
        brute = max(f1_score(y[:, c], s[:, c] >= t) for t in np.unique(s[:, c]))
        assert f1_score(y[:, c], s[:, c] >= th[c]) == pytest.approx(brute)
    assert th[3] == 0.5                                                       # no positive record


def test_absent_class_is_left_out_of_macro_auc_and_counted():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.4], [0.8, 0.1, 0.6], [0.3, 0.2, 0.7]])
    auc = per_class_auc(y, s)
    assert auc[0] == 1.0 and np.isnan(auc[1]) and np.isnan(auc[2])
    assert macro_auc(y, s) == 1.0
    m = evaluate(y, s, ["a", "b", "c"], y, s, groups={"g": [0, 1]})
    assert m["n_classes_without_auc"] == 2 and m["macro_auc"] == 1.0 and m["group_auc/g"] == 1.0
    assert m["auc/a"] == roc_auc_score(y[:, 0], s[:, 0])
