"""Patient-safe stratified folds and nested label-fraction subsets.

Folds group by patient so no patient is in two splits; multi-label stratification uses each
record's rarest positive class as its stratum (the usual cheap approximation, via sklearn's
StratifiedGroupKFold). Label-fraction subsets are nested (5% inside 10% inside ...), keep
every class present, and are fixed by the seed, so data-efficiency curves compare like with like.
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def rarest_class_strata(labels: np.ndarray) -> np.ndarray:
    """Per record, the index of its rarest positive class (C for records with no label)."""
    labels = np.asarray(labels, dtype=bool)
    freq = labels.sum(0).astype(float)
    score = np.where(labels, freq[None, :], np.inf)
    strata = score.argmin(1)
    strata[~labels.any(1)] = labels.shape[1]
    return strata


def stratified_group_folds(labels: np.ndarray, groups: Sequence[str], n_folds: int = 10,
                           seed: int = 0) -> np.ndarray:
    """Fold number 1..n_folds per record, stratified by label, grouped by patient."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < n_folds:
        raise ValueError(f"need at least {n_folds} records for {n_folds} folds, got {n}")
    strata = rarest_class_strata(labels)
    groups = np.asarray(groups)
    if len(np.unique(groups)) < n_folds:
        raise ValueError(f"need at least {n_folds} patients for {n_folds} folds, got {len(np.unique(groups))}")
    if np.bincount(strata).max() < n_folds:
        # Too small to stratify (sklearn refuses): deal shuffled patients round-robin instead.
        rng = np.random.default_rng(seed)
        uniq = rng.permutation(np.unique(groups))
        fold_of = {g: i % n_folds + 1 for i, g in enumerate(uniq)}
        return np.array([fold_of[g] for g in groups], dtype=np.int64)
    # StratifiedGroupKFold warns when a stratum has fewer members than folds; that is expected for rare classes.
    sgkf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.zeros(n, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test_idx) in enumerate(sgkf.split(np.zeros(n), strata, groups=groups)):
            folds[test_idx] = k + 1
    return folds


def write_folds_csv(path: str | Path, record_ids: Sequence[str], patient_ids: Sequence[str],
                    folds: np.ndarray) -> Path:
    """Publishable fold assignment, so a split can be reproduced without this code."""
    path = Path(path)
    pd.DataFrame({"record_id": record_ids, "patient_id": patient_ids, "fold": folds}).to_csv(path, index=False)
    return path


def nested_label_fractions(labels: np.ndarray, fractions: Sequence[float], seed: int = 0) -> dict[float, np.ndarray]:
    """Indices (into `labels`, i.e. the training split) of nested, seeded, class-covering subsets.

    One seeded permutation defines the order; each class's first positive record is moved to
    the front, so every class is present even in the smallest subset. A fraction f takes the
    first ceil(f * n) of that order, hence subsets are nested by construction.
    """
    labels = np.asarray(labels, dtype=bool)
    n = len(labels)
    if any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be in (0, 1], got {list(fractions)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    must: list[int] = []
    for c in np.argsort(labels.sum(0)):           # rarest class first
        if labels[:, c].any() and not labels[must, c].any():
            must.append(int(order[np.flatnonzero(labels[order, c])[0]]))
    rest = order[~np.isin(order, must)]
    order = np.concatenate([np.asarray(must, dtype=np.int64), rest])
    out = {}
    for f in sorted(fractions):
        k = max(int(np.ceil(f * n)), len(must))
        out[float(f)] = np.sort(order[:k])
    return out


def record_set_hash(record_ids: Sequence[str]) -> str:
    """16 hex digits of SHA-256 over the sorted record ids: equal hashes = the same record set.

    Results rows carry it for their test split, and the report for its pooled record set, so
    "every model was scored on the same records" can be checked from the files alone.
    """
    text = "\n".join(sorted(str(r) for r in record_ids))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
