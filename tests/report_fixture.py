"""A small results tree for the report tests: four studies, hand-chosen scores, known AUCs.

8 test records, 4 classes (synth groups: SR, AFIB rhythm; LVH morphology; IMI territory), each
class 4 positives and 4 negatives. `scores_for(y, k)` gives one class an AUC of exactly k/16:
negatives score 0.1-0.4, and the positives together sit above k negative scores. Row metrics
are computed from the same scores with scikit-learn, as the trainer does.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

CLASSES = ("SR", "AFIB", "LVH", "IMI")
GROUPS = {"rhythm": (0, 1), "morphology": (2,), "territory": (3,)}
RECORDS = np.array([f"synth_{i:06d}" for i in range(8)])
LABELS = np.array([[1, 1, 1, 1, 0, 0, 0, 0],     # SR
                   [0, 0, 0, 0, 1, 1, 1, 1],     # AFIB
                   [1, 0, 1, 0, 1, 0, 1, 0],     # LVH
                   [0, 1, 1, 0, 0, 1, 1, 0]],    # IMI
                  dtype=np.uint8).T
PERFECT = (16, 16, 16, 16)
CONSTANT = None                                  # every score 0.5: AUC 0.5 in every resample
ONE_SWAP = (16, 16, 16, 15)                      # one misordered pair in IMI
# lead-II attention per record: SR and AFIB records average 0.4, LVH and IMI records 0.3
LEAD_II = np.array([0.5, 0.5, 0.1, 0.5, 0.5, 0.5, 0.1, 0.5])
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def scores_for(y: np.ndarray, k: int) -> np.ndarray:
    """Scores of one class with AUC exactly k/16 (4 positives, 4 negatives)."""
    s = np.zeros(len(y))
    s[y == 0] = [0.1, 0.2, 0.3, 0.4]
    q, r = divmod(k, 4)
    above = [q + (i < r) for i in range(4)]          # negatives below each positive
    s[y == 1] = [0.05 + 0.1 * a for a in above]
    return s


def predictions(ks: tuple[int, ...] | None) -> np.ndarray:
    if ks is None:
        return np.full(LABELS.shape, 0.5, np.float32)
    return np.stack([scores_for(LABELS[:, c], k) for c, k in enumerate(ks)], 1).astype(np.float32)


def attention() -> np.ndarray:
    att = np.repeat(((1 - LEAD_II) / 11)[:, None], 12, 1)
    att[:, 1] = LEAD_II
    return att


def _row(study: str, tid: str, model: str, seed: int, scores: np.ndarray, task: str = "all",
         fraction: float = 1.0, extra: dict | None = None) -> dict:
    auc = [roc_auc_score(LABELS[:, c], scores[:, c]) for c in range(len(CLASSES))]
    row = {"study": study, "preset": "cpu", "trial_id": tid, "seed": seed, "git_commit": COMMIT,
           "git_dirty": study == "ablations", "finished_at": f"2026-01-01T00:00:{seed:02d}",
           "config/model": model, "config/model_kwargs": json.dumps({}), "config/dataset": "synth",
           "config/task": task, "config/label_fraction": fraction, "config/seed": seed, "config/epochs": 10,
           "epoch": 10, "train_seconds": 4.0 + 2 * seed, "time_total_s": 10.0 + 2 * seed, "n_params": 1000,
           "n_train": 100, "n_val": 8, "n_test": 8, "val_macro_auc": 0.9, "best_epoch": 10,
           "test/macro_auc": float(np.mean(auc)), "predictions_file": f"predictions/{tid}.npz"}
    row.update({f"test/auc/{c}": a for c, a in zip(CLASSES, auc)})
    row.update({f"test/group_auc/{g}": float(np.mean([auc[i] for i in cols])) for g, cols in GROUPS.items()})
    row.update(extra or {})
    return row


def attribution() -> np.ndarray:
    """(8, 4, 12): every class's lead-II share is the record's LEAD_II value, NaN off its positives."""
    a = np.repeat(attention()[:, None, :], len(CLASSES), 1)
    a[LABELS == 0] = np.nan
    return a


def _save(folder: Path, tid: str, scores: np.ndarray, att: np.ndarray | None = None, shuffle: bool = False,
          attr: np.ndarray | None = None, noise: dict[str, np.ndarray] | None = None):
    order = np.arange(len(RECORDS))[::-1] if shuffle else np.arange(len(RECORDS))
    z = {"record_id": RECORDS[order], "scores": scores[order], "labels": LABELS[order],
         "classes": np.array(CLASSES)}
    if noise:
        z["noise_specs"] = np.array(list(noise))
        z["noise_scores"] = np.stack([v[order] for v in noise.values()])
    if att is not None:
        z["lead_attention"] = att[order].astype(np.float32)
    if attr is not None:
        z["lead_attribution"] = attr[order].astype(np.float32)
    (folder / "predictions").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "predictions" / f"{tid}.npz", **z)


FIXTURE_COMMAND = "python experiments/benchmark.py --preset cpu --name fixture"


def _write(root: Path, study: str, cells: list[tuple], with_predictions: bool = True) -> None:
    """cells: (model, task, fraction, [per-seed class-AUC numerators or None], attention?, extra)."""
    folder = root / study / "cpu"
    folder.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for model, task, fraction, per_seed, att, extra in cells:
        for seed, ks in enumerate(per_seed):
            tid = f"{study[:3]}_{n:05d}"
            n += 1
            s = predictions(ks)
            ex = dict((extra or [{}] * 9)[seed])
            noise = {spec: predictions(k) for spec, k in ex.pop("_noise", {}).items()}
            for spec, ns in noise.items():
                kind, snr = spec.split(":")
                ex[f"noise/{kind}/{float(snr):g}/macro_auc"] = float(np.mean(
                    [roc_auc_score(LABELS[:, c], ns[:, c]) for c in range(len(CLASSES))]))
            rows.append(_row(study, tid, model, seed, s, task, fraction, ex))
            if with_predictions:
                _save(folder, tid, s, attention() if att else None, shuffle=seed == 1,
                      attr=attribution() if study == "lead_attribution" else None, noise=noise)
    df = pd.DataFrame(rows)
    if study == "benchmark":        # rows that record their launch command; the others predate the column
        df["command"] = FIXTURE_COMMAND
    if not with_predictions:
        df = df.drop(columns=["predictions_file"])
    df.to_parquet(folder / "trials.parquet", index=False)
    df.to_csv(folder / "trials.csv", index=False)


def noise_extra(per_snr: dict[str, tuple]) -> dict:
    """Noisy predictions ("kind:snr" -> class-AUC numerators) for bw and ma at 24, 0, -6 dB; the row's
    noise/<kind>/<snr>/macro_auc columns are computed from them by _write."""
    return {"_noise": per_snr}


# beatnet loses 0 / 0.125 / 0.375 (bw) and 0 / 0.25 / 0.5 (ma); resnet1d_wang 0 / 0.25 / 0.5 (both types)
NOISE_BEATNET = {"bw:24": PERFECT, "bw:0": (16, 16, 12, 12), "bw:-6": (12, 12, 8, 8),
                 "ma:24": PERFECT, "ma:0": (12, 12, 12, 12), "ma:-6": (8, 8, 8, 8)}
NOISE_RESNET = {"bw:24": PERFECT, "bw:0": (12, 12, 12, 12), "bw:-6": (8, 8, 8, 8),
                "ma:24": PERFECT, "ma:0": (12, 12, 12, 12), "ma:-6": (8, 8, 8, 8)}


def make_results(root: Path) -> Path:
    """Write results/{benchmark,ablations,data_efficiency,noise_robustness,lead_attribution}/cpu under root."""
    _write(root, "benchmark", [
        ("beatnet", "all", 1.0, [(16, 12, 8, 14), (16, 16, 12, 12)], True, None),
        ("resnet1d_wang", "all", 1.0, [(12, 12, 12, 12), (14, 14, 14, 14)], False, None),
        ("xresnet1d101", "all", 1.0, [(16, 16, 16, 16), (16, 16, 12, 14)], False, None),
        ("beatnet", "rhythm", 1.0, [(16, 16, 16, 16), (16, 16, 16, 16)], True, None),
        ("resnet1d_wang", "rhythm", 1.0, [(16, 16, 16, 16), (16, 16, 16, 16)], False, None),
    ])
    _write(root, "ablations", [
        ("beatnet", "all", 1.0, [(16, 16, 12, 12)] * 2, False, None),
        ("beatnet_no_temporal", "all", 1.0, [(8, 10, 12, 12)] * 2, False, None),
    ])
    _write(root, "data_efficiency", [
        ("beatnet", "all", 0.05, [CONSTANT, CONSTANT], False, None),
        ("beatnet", "all", 0.2, [CONSTANT, PERFECT], False, None),
        ("beatnet", "all", 0.5, [PERFECT, PERFECT], False, None),
        ("beatnet", "all", 1.0, [PERFECT, PERFECT], False, None),
        ("resnet1d_wang", "all", 0.05, [CONSTANT, CONSTANT], False, None),
        ("resnet1d_wang", "all", 0.2, [PERFECT, PERFECT], False, None),
        ("resnet1d_wang", "all", 0.5, [CONSTANT, PERFECT], False, None),
        ("resnet1d_wang", "all", 1.0, [PERFECT, PERFECT], False, None),
        ("inception1d", "all", 0.05, [CONSTANT, CONSTANT], False, None),
        ("inception1d", "all", 0.2, [PERFECT, ONE_SWAP], False, None),
        ("inception1d", "all", 0.5, [PERFECT, ONE_SWAP], False, None),
        ("inception1d", "all", 1.0, [PERFECT, PERFECT], False, None),
    ])
    _write(root, "noise_robustness", [
        ("beatnet", "all", 1.0, [PERFECT, PERFECT], False, [noise_extra(NOISE_BEATNET)] * 2),
        ("resnet1d_wang", "all", 1.0, [PERFECT, PERFECT], False, [noise_extra(NOISE_RESNET)] * 2),
    ])
    _write(root, "lead_attribution", [
        ("beatnet", "all", 1.0, [PERFECT, PERFECT], True, None),
        ("resnet1d_wang", "all", 1.0, [PERFECT, PERFECT], False, None),
    ])
    return root
