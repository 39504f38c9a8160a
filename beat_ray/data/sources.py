"""The contract between a dataset reader and the preparation step.

A file-based source lists its records (with labels and, if the dataset defines them,
folds) and reads one record at a time. `prepare` does everything else the same way for
every source: resampling, fixed length, bad-record masking, folds, cache and report.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RecordRef:
    """One record as listed by a source's index; `labels` are class names of the task."""

    record_id: str
    patient_id: str
    path: str                      # record path without extension (as wfdb wants it)
    labels: tuple[str, ...]
    fold: int | None = None        # dataset-defined fold (PTB-XL strat_fold); None -> stratified


@dataclass
class SourceIndex:
    """What a source's `index` returns: usable refs, the class list, and records dropped while indexing."""

    refs: list[RecordRef]
    classes: list[str]
    dropped: list[tuple[str, str, str]] = field(default_factory=list)   # (record_id, reason, detail)
    class_groups: dict[str, str] = field(default_factory=dict)


class Source(Protocol):
    """A file-based dataset reader (PTB-XL, CPSC2018, Chapman, plain WFDB dirs)."""

    name: str
    tasks: tuple[str, ...]

    def index(self, root: Path, task: str) -> SourceIndex: ...

    def read(self, ref: RecordRef) -> tuple[np.ndarray, float]:
        """(12, T) float array in mV in standard lead order (NaN rows for absent leads), and its fs."""
        ...


SOURCES: dict[str, Callable[..., Source]] = {}


def register_source(name: str):
    """Decorator: make a source constructible by name, so datasets are strings in every grid."""
    def deco(factory: Callable[..., Source]) -> Callable[..., Source]:
        SOURCES[name] = factory
        return factory
    return deco


def default_realdata() -> Path:
    """$BEAT_RAY_REALDATA, else `<repo>/../shared/realdata` (CI clones the repo beside shared/).

    The shared real records: the report's Fig. 4 record and the `real` presets' PTB-XL subset.
    """
    import os

    env = os.environ.get("BEAT_RAY_REALDATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "realdata"
