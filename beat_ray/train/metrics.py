"""Multi-label test metrics with scikit-learn, as in the PTB-XL benchmark.

Thresholds for F1 are chosen per class on the validation split and then applied to test, so
the test split never tunes anything. A class with only one label value in a split has no
defined AUC; it is left out of the macro average and counted, never silently scored as 0.5.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score


def per_class_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC per class; NaN where the class is all-positive or all-negative in `y`."""
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        if 0 < y[:, c].sum() < len(y):
            out[c] = roc_auc_score(y[:, c], scores[:, c])
    return out


def macro_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUC over classes that have both label values (NaN if none do)."""
    auc = per_class_auc(y, scores)
    return float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")


def best_thresholds(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per class, the score threshold maximising F1 of `scores >= t` on (validation) data.

    Exact over every distinct score, in one sort per class (F1 from cumulative TP/FP counts);
    0.5 where a class has no positive record. Ties keep the highest threshold.
    """
    y = np.asarray(y).astype(bool)
    th = np.full(y.shape[1], 0.5)
    for c in range(y.shape[1]):
        pos = int(y[:, c].sum())
        if pos == 0:
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        s, t = scores[order, c], y[order, c]
        tp, fp = np.cumsum(t), np.cumsum(~t)
        f1 = 2 * tp / (2 * tp + fp + (pos - tp))
        last_of_tie = np.r_[s[1:] != s[:-1], True]      # `>= s[i]` selects the whole run of equal scores
        th[c] = float(s[int(np.argmax(np.where(last_of_tie, f1, -1.0)))])
    return th


def evaluate(y_test: np.ndarray, s_test: np.ndarray, classes: list[str], y_val: np.ndarray | None = None,
             s_val: np.ndarray | None = None, groups: dict[str, list[int]] | None = None) -> dict[str, float]:
    """Flat metrics dict: macro-AUC, per-class AUC, macro-F1 at val thresholds, accuracy, group AUCs.

    `accuracy` is label-wise (mean over records and classes of correct binary decisions);
    `exact_match` is the stricter subset accuracy.
    """
    y_test = np.asarray(y_test).astype(int)
    auc = per_class_auc(y_test, s_test)
    th = best_thresholds(np.asarray(y_val).astype(int), s_val) if y_val is not None else np.full(len(classes), 0.5)
    pred = (s_test >= th).astype(int)
    out = {"macro_auc": float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan"),
           "n_classes_without_auc": int(np.isnan(auc).sum()),
           "macro_f1": float(f1_score(y_test, pred, average="macro", zero_division=0)),
           "accuracy": float((pred == y_test).mean()),
           "exact_match": float((pred == y_test).all(1).mean())}
    for c, name in enumerate(classes):
        out[f"auc/{name}"] = float(auc[c])
    for g, cols in (groups or {}).items():
        vals = auc[cols]
        out[f"group_auc/{g}"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    return out
