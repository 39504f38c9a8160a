"""CPSC2018 and Chapman-Shaoxing(-Ningbo) sources in the PhysioNet/CinC Challenge layout.

Why here and not ad hoc in experiments: both datasets are distributed as Challenge records
(``.hea`` with ``# Dx:`` SNOMED-CT codes + MATLAB v4 ``.mat`` holding ``val``), and their
label sets are defined by SNOMED code lists that must be written down once, with the
record-level rules (which codes count, which records are dropped and why).

CPSC2018 (Challenge 2020 release, ``A*.hea``), task ``all``: the 9 CPSC classes

    NSR 426783006   AF 164889003   I-AVB 270492004   LBBB 164909002
    RBBB 59118001 or 713427006 (complete RBBB)   PAC 284470004   PVC 427172004
    STD 429622005   STE 164931005

Other codes are ignored (counted in ``unknown_codes``); a record with none of the 9 is
dropped as ``no_label_in_task``.

Chapman-Shaoxing/CSN (Challenge 2021 layout ``WFDBRecords/NN/NNN/JS*.hea``):

* task ``rhythm``: the 11 rhythms of Zheng et al. (Sci Data 2020), by SNOMED code::

      SB 426177001 sinus bradycardia      SR 426783006 sinus rhythm
      AFIB 164889003 atrial fibrillation  ST 427084000 sinus tachycardia
      AFL 164890007 atrial flutter (the paper's "AF")
      SA 427393009 sinus irregularity     SVT 426761007 supraventricular tachycardia
      AT 713422000 atrial tachycardia     AVNRT 233896004 AV node reentrant tachycardia
      AVRT 233897008 AV reentrant tachycardia
      SAAWR 195101003 sinus atrium to atrial wandering rhythm

* task ``rhythm_groups``: the paper's 4 merged groups, SB = SB; AFIB = AFIB + AFL;
  GSVT = SVT + AT + SAAWR + ST + AVNRT + AVRT; SR = SR + SA.
* task ``dx``: multi-label over every Dx code present in at least ``min_count`` records
  (default 100); classes are the SNOMED codes themselves.

Chapman has one record per patient, so ``patient_id = record_id``. Neither dataset defines
folds (``fold=None``); `prepare` assigns stratified, seeded folds. Records are read at their
native rate (500 Hz); `read` never resamples.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from beat_ray.data.errors import RecordError
from beat_ray.data.sources import RecordRef, SourceIndex, register_source
from beat_ray.data.wfdb_io import read_challenge, read_dx

CPSC2018_CLASSES: dict[str, str] = {
    "426783006": "NSR", "164889003": "AF", "270492004": "I-AVB", "164909002": "LBBB",
    "59118001": "RBBB", "713427006": "RBBB", "284470004": "PAC", "427172004": "PVC",
    "429622005": "STD", "164931005": "STE",
}

CHAPMAN_RHYTHMS: dict[str, str] = {
    "426177001": "SB", "426783006": "SR", "164889003": "AFIB", "427084000": "ST",
    "164890007": "AFL", "427393009": "SA", "426761007": "SVT", "713422000": "AT",
    "233896004": "AVNRT", "233897008": "AVRT", "195101003": "SAAWR",
}

CHAPMAN_RHYTHM_GROUPS: dict[str, str] = {
    "SB": "SB", "AFIB": "AFIB", "AFL": "AFIB", "SVT": "GSVT", "AT": "GSVT", "SAAWR": "GSVT",
    "ST": "GSVT", "AVNRT": "GSVT", "AVRT": "GSVT", "SR": "SR", "SA": "SR",
}


def find_headers(root: Path, pattern: str) -> list[Path]:
    """All headers matching ``pattern`` under ``root`` (recursively), sorted; an empty tree is an error."""
    root = Path(root)
    if not root.is_dir():
        raise RecordError(root, "dataset root is not a directory", reason="missing_file")
    headers = sorted(root.rglob(pattern))
    if not headers:
        raise RecordError(root, f"no {pattern} records found", reason="empty_directory")
    return headers


def _dx_all(headers: list[Path]) -> tuple[list[tuple[Path, list[str]]], list[tuple[str, str, str]]]:
    """Dx codes of every header; unreadable headers go to ``dropped`` with their reason."""
    ok: list[tuple[Path, list[str]]] = []
    dropped: list[tuple[str, str, str]] = []
    for hea in headers:
        try:
            ok.append((hea, read_dx(hea)))
        except RecordError as err:
            dropped.append((hea.stem, err.reason, str(err)))
    return ok, dropped


def _ref(hea: Path, labels: set[str]) -> RecordRef:
    rid = hea.stem
    return RecordRef(record_id=rid, patient_id=rid, path=str(hea.with_suffix("")), labels=tuple(sorted(labels)))


class _ChallengeSource:
    """Shared reading for Challenge-layout sources (12 leads, .mat v4, gain from header)."""

    name = ""
    tasks: tuple[str, ...] = ()

    def __init__(self, fs: float | None = None, require_all: bool = True) -> None:
        # ``fs`` is accepted so `prepare` can construct every source alike; records are read at 500 Hz.
        self.fs = fs
        self.require_all = require_all
        self.unknown_codes: Counter[str] = Counter()

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise ValueError(f"{self.name}: unknown task {task!r}; expected one of {self.tasks}")

    def read(self, ref: RecordRef) -> tuple[np.ndarray, float]:
        """(12, T) mV in standard order at the record's own rate."""
        return read_challenge(ref.path, require_all=self.require_all)


@register_source("cpsc2018")
class CPSC2018Source(_ChallengeSource):
    """CPSC2018 (China Physiological Signal Challenge 2018) as released for the CinC Challenge 2020."""

    name = "cpsc2018"
    tasks = ("all",)
    classes = ("AF", "I-AVB", "LBBB", "NSR", "PAC", "PVC", "RBBB", "STD", "STE")

    def index(self, root: Path, task: str = "all") -> SourceIndex:
        """Every ``A*.hea`` under ``root`` labelled with the 9 classes."""
        self._check_task(task)
        pairs, dropped = _dx_all(find_headers(root, "A*.hea"))
        self.unknown_codes = Counter()
        refs = []
        for hea, codes in pairs:
            labels = {CPSC2018_CLASSES[c] for c in codes if c in CPSC2018_CLASSES}
            self.unknown_codes.update(c for c in codes if c not in CPSC2018_CLASSES)
            if not labels:
                dropped.append((hea.stem, "no_label_in_task", f"{hea}: Dx {codes} has none of the 9 classes"))
                continue
            refs.append(_ref(hea, labels))
        return SourceIndex(refs=refs, classes=list(self.classes), dropped=dropped)


@register_source("chapman")
class ChapmanSource(_ChallengeSource):
    """Chapman-Shaoxing + Ningbo (PhysioNet ecg-arrhythmia / Challenge 2021 ``WFDBRecords`` tree)."""

    name = "chapman"
    tasks = ("rhythm", "rhythm_groups", "dx")

    def __init__(self, fs: float | None = None, require_all: bool = True, min_count: int = 100) -> None:
        super().__init__(fs=fs, require_all=require_all)
        if min_count < 1:
            raise ValueError(f"chapman: min_count must be >= 1, got {min_count}")
        self.min_count = int(min_count)

    def index(self, root: Path, task: str) -> SourceIndex:
        """Every ``JS*.hea`` under ``root`` labelled for ``task``."""
        self._check_task(task)
        pairs, dropped = _dx_all(find_headers(root, "JS*.hea"))
        self.unknown_codes = Counter()
        if task == "dx":
            counts = Counter(c for _, codes in pairs for c in set(codes))
            keep = {c for c, n in counts.items() if n >= self.min_count}

            def to_labels(codes: list[str]) -> set[str]:
                return {c for c in codes if c in keep}
        else:
            groups = task == "rhythm_groups"

            def to_labels(codes: list[str]) -> set[str]:
                names = {CHAPMAN_RHYTHMS[c] for c in codes if c in CHAPMAN_RHYTHMS}
                return {CHAPMAN_RHYTHM_GROUPS[n] for n in names} if groups else names

        refs = []
        for hea, codes in pairs:
            labels = to_labels(codes)
            if task != "dx":
                self.unknown_codes.update(c for c in codes if c not in CHAPMAN_RHYTHMS)
            if not labels:
                dropped.append((hea.stem, "no_label_in_task", f"{hea}: Dx {codes} has no {task} class"))
                continue
            refs.append(_ref(hea, labels))
        classes = sorted({c for r in refs for c in r.labels})
        return SourceIndex(refs=refs, classes=classes, dropped=dropped)
