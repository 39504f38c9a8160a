"""PTB-XL v1.0.3 source: labels and folds exactly as the PTB-XL benchmark defines them.

Why re-implement rather than import: results are only comparable with the published PTB-XL
benchmark (Strodthoff et al. 2021, helme/ecg_ptbxl_benchmarking) if the label aggregation
is the same. The rules, as in the benchmark's ``compute_label_aggregations``:

* every key of ``scp_codes`` counts, whatever its likelihood value (0.0 included);
* ``diagnostic``: codes whose ``scp_statements.diagnostic == 1``;
* ``subdiagnostic`` / ``superdiagnostic``: those diagnostic codes mapped through
  ``diagnostic_subclass`` / ``diagnostic_class`` (missing values skipped), e.g. 5 classes
  NORM, MI, STTC, CD, HYP;
* ``form`` / ``rhythm``: codes whose ``form == 1`` / ``rhythm == 1``;
* ``all``: every key of ``scp_codes`` (all of which are statements of ``scp_statements.csv``);
* ``superdiagnostic_rhythm`` (ours, not a benchmark task): the superdiagnostic classes and the rhythm
  statements together, so one model decides both and the lead-attribution study can compare rhythm and
  non-rhythm decisions on the same records (``all``'s 71 classes do not train on the 987-record release).

Records with no label in the task are dropped (``no_label_in_task``), classes are sorted
alphabetically (as sklearn's MultiLabelBinarizer orders them) and ``strat_fold`` gives the
folds (1-8 train, 9 val, 10 test). The benchmark's optional ``min_samples`` class filter
is 0 (a no-op) in its experiments and is not applied here.

The signals come in two rates: ``filename_lr`` (records100/, 100 Hz) and ``filename_hr``
(records500/, 500 Hz). The constructor's ``fs`` picks the nearer of the two; `prepare`
resamples from there.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from beat_ray.data.errors import RecordError
from beat_ray.data.sources import RecordRef, SourceIndex, register_source
from beat_ray.data.wfdb_io import read_wfdb

TASKS: tuple[str, ...] = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm",
                          "superdiagnostic_rhythm")
DATABASE_COLUMNS: tuple[str, ...] = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
STATEMENT_COLUMNS: tuple[str, ...] = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")
NATIVE_FS: tuple[int, ...] = (100, 500)


def _read_csv(path: Path, required: tuple[str, ...], **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise RecordError(path, "file not found", reason="missing_file")
    try:
        df = pd.read_csv(path, **kwargs)
    except Exception as exc:
        raise RecordError(path, f"unreadable CSV: {type(exc).__name__}: {exc}", reason="bad_csv") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise RecordError(path, f"missing columns {missing}", reason="missing_columns")
    return df


def _flag(col: pd.Series) -> pd.Series:
    """Statement flag columns hold 1.0 or blank; anything numeric equal to 1 is set."""
    return pd.to_numeric(col, errors="coerce") == 1


def task_maps(statements: pd.DataFrame) -> dict[str, dict[str, str] | None]:
    """Per task, scp code -> class name (``None`` for ``all``: every code is its own class)."""
    diag = statements[_flag(statements["diagnostic"])]

    def mapped(column: str) -> dict[str, str]:
        return {str(code): str(val) for code, val in diag[column].items() if pd.notna(val)}

    def identity(frame: pd.DataFrame) -> dict[str, str]:
        return {str(code): str(code) for code in frame.index}

    return {
        "all": None,
        "diagnostic": identity(diag),
        "subdiagnostic": mapped("diagnostic_subclass"),
        "superdiagnostic": mapped("diagnostic_class"),
        "form": identity(statements[_flag(statements["form"])]),
        "rhythm": identity(statements[_flag(statements["rhythm"])]),
        # rhythm statements are never diagnostic, so the two maps share no code
        "superdiagnostic_rhythm": {**mapped("diagnostic_class"), **identity(statements[_flag(statements["rhythm"])])},
    }


def parse_scp_codes(text: object) -> dict[str, float] | None:
    """``"{'NORM': 100.0, 'SR': 0.0}"`` -> dict; ``None`` when the cell is not such a dict."""
    if not isinstance(text, str):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return None
    return value


def labels_for(codes: dict[str, float], mapping: dict[str, str] | None) -> tuple[str, ...]:
    """Sorted, de-duplicated class names of one record under one task's mapping."""
    if mapping is None:
        return tuple(sorted(set(codes)))
    return tuple(sorted({mapping[c] for c in codes if c in mapping}))


@register_source("ptbxl")
class PTBXLSource:
    """PTB-XL v1.0.3 from its release tree (``ptbxl_database.csv``, ``scp_statements.csv``, records*/)."""

    name = "ptbxl"
    tasks = TASKS

    def __init__(self, fs: float = 100, require_all: bool = True, only_at_fs: int | None = None) -> None:
        """`only_at_fs` (100 or 500): keep only the records whose file at that stored rate exists, so two
        rates can be compared on the same records (e.g. 100 Hz on the records a partial records500/ has)."""
        if not fs or fs <= 0:
            raise ValueError(f"ptbxl: fs must be positive, got {fs!r}")
        if only_at_fs not in (None, *NATIVE_FS):
            raise ValueError(f"ptbxl: only_at_fs must be one of {NATIVE_FS}, got {only_at_fs!r}")
        self.fs = float(fs)
        self.require_all = require_all
        self.only_at_fs = only_at_fs

    @property
    def record_fs(self) -> int:
        """The stored rate read for the requested ``fs``: 100 or 500, whichever is nearer (ties: 500)."""
        return min(NATIVE_FS, key=lambda f: (abs(f - self.fs), -f))

    def index(self, root: Path, task: str) -> SourceIndex:
        """List the records of ``task`` with their labels and ``strat_fold`` folds."""
        if task not in TASKS:
            raise ValueError(f"ptbxl: unknown task {task!r}; expected one of {TASKS}")
        root = Path(root)
        db_path, st_path = root / "ptbxl_database.csv", root / "scp_statements.csv"
        db = _read_csv(db_path, DATABASE_COLUMNS)
        statements = _read_csv(st_path, STATEMENT_COLUMNS, index_col=0)
        statements.index = statements.index.astype(str).str.strip()
        mapping = task_maps(statements)[task]
        file_col = "filename_lr" if self.record_fs == 100 else "filename_hr"

        folds = pd.to_numeric(db["strat_fold"], errors="coerce")
        patients = pd.to_numeric(db["patient_id"], errors="coerce")
        refs: list[RecordRef] = []
        dropped: list[tuple[str, str, str]] = []
        for row, fold, pid in zip(db.itertuples(index=False), folds, patients):
            rid = str(row.ecg_id)
            codes = parse_scp_codes(row.scp_codes)
            if codes is None:
                cell = str(row.scp_codes)[:60]
                dropped.append((rid, "bad_scp_codes", f"{db_path}: scp_codes {cell!r} is not a dict"))
                continue
            labels = labels_for(codes, mapping)
            if not labels:
                dropped.append((rid, "no_label_in_task", f"codes {sorted(codes)} have no {task} class"))
                continue
            if pd.isna(fold) or float(fold) != int(fold) or not 1 <= int(fold) <= 10:
                dropped.append((rid, "bad_fold", f"{db_path}: strat_fold {row.strat_fold!r} not in 1..10"))
                continue
            fname = getattr(row, file_col)
            if not isinstance(fname, str) or not fname.strip():
                dropped.append((rid, "missing_filename", f"{db_path}: empty {file_col}"))
                continue
            if self.only_at_fs:
                other = getattr(row, "filename_lr" if self.only_at_fs == 100 else "filename_hr")
                if not isinstance(other, str) or not (root / f"{other.strip()}.hea").is_file():
                    dropped.append((rid, f"not_at_{self.only_at_fs}hz", f"no {self.only_at_fs}-Hz file ({other})"))
                    continue
            refs.append(RecordRef(record_id=rid, patient_id=_patient(pid, row.patient_id, rid),
                                  path=str(root / fname.strip()), labels=labels, fold=int(fold)))
        classes = sorted({c for r in refs for c in r.labels})
        return SourceIndex(refs=refs, classes=classes, dropped=dropped)

    def read(self, ref: RecordRef) -> tuple[np.ndarray, float]:
        """(12, T) mV in standard order at the stored rate (100 or 500 Hz)."""
        return read_wfdb(ref.path, require_all=self.require_all)


def _patient(num: float, value: object, record_id: str) -> str:
    """PTB-XL stores patient_id as a float (``15709.0``); keep it as an integer string."""
    if pd.isna(num):
        if isinstance(value, str) and value.strip():
            return value.strip()
        return f"record-{record_id}"          # unknown patient: its own group, never merged with others
    return str(int(num)) if float(num) == int(num) else str(value)
