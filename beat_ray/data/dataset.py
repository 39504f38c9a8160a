"""`ECGDataset`: the one object every source returns, and its on-disk cache.

The cache is a directory of .npy files (signals are memory-mapped, so Ray trials on one
node share pages instead of copying) plus JSON/CSV metadata. It is written to a temp dir
and renamed into place, so a crash never leaves a half-written cache behind.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beat_ray.data.leads import LEADS

SPLITS = ("train", "val", "test")
N_FOLDS = 10
OFFICIAL_TEST_FOLD = 10


def fold_layout(test_fold: int = OFFICIAL_TEST_FOLD, n_folds: int = N_FOLDS) -> tuple[tuple[int, ...], int, int]:
    """(train folds, val fold, test fold) for one position of the fold rotation.

    The validation fold is the one before the test fold, cyclically, so test_fold=10 is the
    PTB-XL benchmark convention used for every dataset (train 1-8, val 9, test 10) and
    test_fold=1 validates on fold 10.
    """
    k = int(test_fold)
    val = (k - 2) % n_folds + 1
    return tuple(f for f in range(1, n_folds + 1) if f not in (k, val)), val, k


def fold_to_split(folds: np.ndarray, test_fold: int = OFFICIAL_TEST_FOLD) -> np.ndarray:
    """'train' / 'val' / 'test' per record for `fold_layout(test_fold)` (default: the official split)."""
    _, val, test = fold_layout(test_fold)
    folds = np.asarray(folds)
    return np.where(folds == test, "test", np.where(folds == val, "val", "train")).astype(object)


@dataclass
class ECGDataset:
    """Signals in mV, standard lead order, fixed length; multi-hot labels; patient-safe folds."""

    name: str
    task: str
    signals: np.ndarray                 # (N, 12, T) float32, mV
    labels: np.ndarray                  # (N, C) uint8 multi-hot
    classes: list[str]
    fs: int
    record_ids: np.ndarray              # (N,) str
    patient_ids: np.ndarray             # (N,) str
    folds: np.ndarray                   # (N,) int 1..10
    class_groups: dict[str, str] = field(default_factory=dict)   # class -> group (synth: rhythm/morphology/territory)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # ground truth, e.g. synth R peaks
    report: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    leads: tuple[str, ...] = LEADS
    path: Path | None = None            # the cache dir it was opened from; derived caches (tokens) live inside

    def __post_init__(self) -> None:
        n = len(self.signals)
        if self.signals.ndim != 3 or self.signals.shape[1] != len(self.leads):
            raise ValueError(f"{self.name}: signals must be (N, 12, T), got {self.signals.shape}")
        for attr in ("labels", "record_ids", "patient_ids", "folds"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{self.name}: {attr} has {len(getattr(self, attr))} rows, signals {n}")
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.classes):
            raise ValueError(f"{self.name}: labels {self.labels.shape} vs {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.signals)

    @property
    def split(self) -> np.ndarray:
        """'train' / 'val' / 'test' per record."""
        return fold_to_split(self.folds)

    def indices(self, split: str, test_fold: int = OFFICIAL_TEST_FOLD) -> np.ndarray:
        """Record indices of one split (of `fold_layout(test_fold)`), in a stable order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero(fold_to_split(self.folds, test_fold) == split)

    def group_classes(self, group: str) -> list[int]:
        """Column indices of the classes in one class group (e.g. synth 'rhythm')."""
        return [i for i, c in enumerate(self.classes) if self.class_groups.get(c) == group]

    # ------------------------------------------------------------------ cache I/O
    def save(self, path: str | Path, signals_file: str | Path | None = None) -> Path:
        """Write atomically: build in a sibling temp dir, then rename over `path`.

        `signals_file`: a finished signals .npy on the same filesystem (what `prepare` streamed);
        it is moved into place instead of being copied from `self.signals`.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            if signals_file is not None:
                os.replace(signals_file, tmp / "signals.npy")
            else:
                sig = np.lib.format.open_memmap(tmp / "signals.npy", mode="w+", dtype=np.float32,
                                                shape=self.signals.shape)
                sig[:] = self.signals
                sig.flush()
                del sig
            np.save(tmp / "labels.npy", self.labels.astype(np.uint8))
            if self.extras:
                np.savez(tmp / "extras.npz", **self.extras)
            pd.DataFrame({"record_id": self.record_ids, "patient_id": self.patient_ids,
                          "fold": self.folds, "split": self.split}).to_csv(tmp / "records.csv", index=False)
            meta = {"name": self.name, "task": self.task, "classes": list(self.classes), "fs": int(self.fs),
                    "class_groups": self.class_groups, "config": self.config, "leads": list(self.leads)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            (tmp / "report.json").write_text(json.dumps(self.report, indent=1, sort_keys=True, default=str))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def open(cls, path: str | Path, mmap: bool = True) -> ECGDataset:
        """Open a cache dir; signals are memory-mapped read-only unless ``mmap=False``."""
        path = Path(path)
        if not (path / "meta.json").exists():
            raise FileNotFoundError(f"{path}: not a beat_ray dataset cache (no meta.json)")
        meta = json.loads((path / "meta.json").read_text())
        rec = pd.read_csv(path / "records.csv", dtype={"record_id": str, "patient_id": str})
        extras = {}
        if (path / "extras.npz").exists():
            with np.load(path / "extras.npz", allow_pickle=False) as z:
                extras = {k: z[k] for k in z.files}
        report = json.loads((path / "report.json").read_text()) if (path / "report.json").exists() else {}
        return cls(name=meta["name"], task=meta["task"],
                   signals=np.load(path / "signals.npy", mmap_mode="r" if mmap else None),
                   labels=np.load(path / "labels.npy"), classes=meta["classes"], fs=meta["fs"],
                   record_ids=rec["record_id"].to_numpy(dtype=object),
                   patient_ids=rec["patient_id"].to_numpy(dtype=object),
                   folds=rec["fold"].to_numpy(dtype=np.int64), class_groups=meta.get("class_groups", {}),
                   extras=extras, report=report, config=meta.get("config", {}),
                   leads=tuple(meta.get("leads", LEADS)), path=path)
