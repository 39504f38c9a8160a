"""Read `results/<study>/<preset>/` (rows + per-record test predictions) and check it is complete.

Why one loader that collects every problem before anything is drawn: a paper build that stops
at the first missing file makes the user rerun it once per file, and one that draws what it
can leaves a half-updated figure set. So every study, column and predictions file is checked
first, and all that is missing is reported in one `ResultsError` (exit code 2, no traceback).

The report reads result files only: no Ray, no `beat_ray.train` import (the column names it
needs are listed here, against the row contract in `beat_ray/train/results.py`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from beat_ray.report.stats import macro_point

STUDIES: tuple[str, ...] = ("benchmark", "ablations", "data_efficiency", "noise_robustness", "lead_attribution")
# Row columns each study must have (a subset of what beat_ray.train.results writes).
COMMON_COLUMNS: tuple[str, ...] = ("study", "preset", "trial_id", "seed", "git_commit", "git_dirty",
                                   "config/model", "config/dataset", "config/task", "test/macro_auc")
STUDY_COLUMNS: dict[str, tuple[str, ...]] = {
    "benchmark": ("predictions_file", "n_params", "n_train", "epoch", "train_seconds"),
    "ablations": ("predictions_file",),
    "data_efficiency": ("predictions_file", "config/label_fraction"),
    "noise_robustness": ("predictions_file",),
    "lead_attribution": ("predictions_file",),
}
NO_COMMAND = "(not recorded: written before rows carried their command; the study's docstring lists its launches)"
NOISE_COLUMN = re.compile(r"^noise/([^/]+)/([^/]+)/macro_auc$")
PREDICTION_KEYS: tuple[str, ...] = ("record_id", "scores", "labels", "classes")
# A stored predictions file must reproduce its row's sklearn test/macro_auc to this tolerance.
AUC_TOLERANCE = 1e-6
REALDATA_RECORD = ("ptbdb", "s0010_re")


class ResultsError(Exception):
    """Missing or partial inputs; `problems` lists each one (the CLI prints them, exit code 2)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(self.message())

    def message(self) -> str:
        items = "\n".join(f"  - {p}" for p in self.problems)
        return (f"cannot build the paper figures: {len(self.problems)} missing or partial input(s):\n{items}\n"
                "Nothing was written.")


@dataclass(frozen=True)
class Predictions:
    """One trial's test predictions, rows sorted by record_id so seeds and models line up."""

    record_id: np.ndarray           # (n,) str, sorted
    scores: np.ndarray              # (n, C) float64
    labels: np.ndarray              # (n, C) int8
    classes: tuple[str, ...]
    lead_attention: np.ndarray | None = None    # (n, 12), rows sum to 1 (BEAT-Net token models)
    lead_attribution: np.ndarray | None = None  # (n, C, 12) lead shares per class, NaN off its positives
    noise: dict[str, np.ndarray] | None = None  # "kind:snr" -> (n, C) scores under that test noise


@dataclass
class Study:
    """One study folder: its rows (with a `_model` label column) and predictions by trial_id."""

    name: str
    preset: str
    folder: Path
    rows: pd.DataFrame
    predictions: dict[str, Predictions] = field(default_factory=dict)

    def provenance(self) -> list[tuple[str, bool, int]]:
        """(commit, dirty, n_rows) per distinct code version the rows came from, sorted."""
        g = self.rows.groupby(["git_commit", "git_dirty"], sort=True).size()
        return [(str(c), bool(d), int(n)) for (c, d), n in g.items()]

    def launches(self) -> list[tuple[str, str, int]]:
        """(commit, command, n_rows) per launch the rows came from; rows written before rows carried their
        command (issue 34) say so instead of guessing one."""
        cmd = self.rows["command"] if "command" in self.rows else pd.Series("", index=self.rows.index)
        cmd = cmd.fillna("").replace("", NO_COMMAND)
        g = self.rows.assign(_command=cmd).groupby(["git_commit", "_command"], sort=True).size()
        return [(str(c), str(m), int(n)) for (c, m), n in g.items()]


@dataclass(frozen=True)
class Cell:
    """The seeds of one table cell (same study, model, data, task[, fraction]), aligned by record."""

    key: tuple
    rows: pd.DataFrame              # sorted by seed
    preds: tuple[Predictions, ...]

    @property
    def record_id(self) -> np.ndarray:
        return self.preds[0].record_id

    @property
    def labels(self) -> np.ndarray:
        return self.preds[0].labels

    @property
    def classes(self) -> tuple[str, ...]:
        return self.preds[0].classes

    def scores(self) -> np.ndarray:
        """(seeds, n, C)."""
        return np.stack([p.scores for p in self.preds])

    def attention(self) -> np.ndarray | None:
        """(seeds, n, 12), or None when any seed lacks lead attention."""
        if any(p.lead_attention is None for p in self.preds):
            return None
        return np.stack([p.lead_attention for p in self.preds])


# A table cell: these columns (with `_model`, which names the model, its kwargs, recipe and train noise;
# `config/synth` names a synth variant such as a positive control, shown with the data).
CELL_COLUMNS: tuple[str, ...] = ("_model", "config/dataset", "config/task", "config/synth", "config/label_fraction")
# Config fields that may differ between the rows of one cell: what a cell pools over (seed, test fold),
# where it ran (devices, data path), and what was only measured after training (extra test noise,
# attributions). Any other difference means two experiments, which the report refuses to merge.
FREE_FIELDS: frozenset[str] = frozenset({"seed", "test_fold", "threads", "workers", "use_gpu", "gpus_per_trial",
                                         "allow_cpu_fallback", "root", "study", "preset", "eval_noise",
                                         "attribution_steps"})
# ...and, in a tuned cell (one best.json), what a search sets per test fold.
TUNED_FIELDS: frozenset[str] = frozenset({"lr", "weight_decay", "batch_size", "model_kwargs", "max_beats",
                                          "token_mode", "schedule"})


# Config fields added after rows were first committed, with the value rows written before them ran with.
LATER_FIELDS: dict[str, object] = {"config/recipe": "default", "config/budget": "epochs", "config/synth": "{}",
                                   "config/test_fold": 10, "config/attribution_steps": 0, "config/hparams": "",
                                   "config/score_test": True, "config/noise_source": "synthetic",
                                   "config/detector": "consensus", "config/precision": "fp32",
                                   "config/gpu_deterministic": False, "config/records_at_fs": 0}


def fill_later_fields(rows: pd.DataFrame) -> pd.DataFrame:
    """Old rows get the defaults they ran with, so an old and a new row of one config compare equal."""
    rows = rows.copy()
    for col, value in LATER_FIELDS.items():
        rows[col] = rows[col].astype(object).where(rows[col].notna(), value) if col in rows else value
    return rows


def _model_labels(rows: pd.DataFrame) -> pd.Series:
    """Model name, plus its kwargs only where one study runs the same model with several kwargs, plus
    its training recipe where that is not the default (e.g. 'xresnet1d101 (benchmark recipe)'), plus
    its training noise where it had some (e.g. 'beatnet (train noise ma:12)'), its tokenizer's detector where
    that is not the consensus ('beatnet (select detector)'), its sampling rate where the study has several
    ('beatnet (500 Hz)'), and '(tuned)' where it took its hyperparameters from a search's best.json."""
    tuned = rows["config/hparams"].fillna("").astype(str) != "" if "config/hparams" in rows \
        else pd.Series(False, rows.index)
    kw = rows["config/model_kwargs"].map(kwargs_text) if "config/model_kwargs" in rows else pd.Series("", rows.index)
    model = rows["config/model"].astype(str)
    # tuned rows take their kwargs per test fold from best.json: those never split a model into cells
    plain = pd.DataFrame({"m": model, "k": kw})[~tuned]
    multi = model.map(plain.groupby("m")["k"].nunique()).fillna(0) > 1
    label = model.where(~multi | tuned, model + " (" + kw + ")")
    if "config/recipe" in rows:
        recipe = rows["config/recipe"].fillna("default").astype(str)      # rows from before recipes
        label = label.where(recipe == "default", label + " (" + recipe + " recipe)")
    if "config/train_noise" in rows:
        noise = rows["config/train_noise"]
        label = label.where(noise.isna() | (noise.astype(str) == ""), label + " (train noise " + noise.astype(str) + ")")
    if "config/detector" in rows:
        det = rows["config/detector"].fillna("consensus").astype(str)
        label = label.where(det == "consensus", label + " (" + det + " detector)")
    if "config/fs" in rows and rows["config/fs"].nunique() > 1:      # a study at several rates: '(500 Hz)'
        label = label + " (" + rows["config/fs"].astype(int).astype(str) + " Hz)"
    return label.where(~tuned, label + " (tuned)")


def mixed_cells(rows: pd.DataFrame, study: str) -> list[str]:
    """One problem per cell whose rows differ in a config field outside FREE_FIELDS.

    Why: rows used to be keyed by model, data and seed, so a rerun with other epochs, lr, fs or
    budget replaced (or was pooled with) the first. Rows older than `config_hash` are checked the
    same way, from their config columns.
    """
    keys = [c for c in CELL_COLUMNS if c in rows]
    fields = [c for c in rows.columns if c.startswith("config/") and c not in keys
              and c.split("/", 1)[1] not in FREE_FIELDS]
    out = []
    for key, g in rows.groupby(keys, sort=True, dropna=False):
        tuned = "config/hparams" in g and (g["config/hparams"].fillna("").astype(str) != "").all()
        exempt = TUNED_FIELDS | {"hparams"} if tuned else frozenset()
        differ = {c: sorted(map(str, g[c].astype(object).where(g[c].notna(), None).unique()))
                  for c in fields if g[c].astype(object).where(g[c].notna(), None).nunique(dropna=False) > 1
                  and c.split("/", 1)[1] not in exempt}
        # a tuned row's tag names one best.json entry: one file per cell, one entry per test fold
        if tuned and (g["config/hparams"].str.split("#").str[0].nunique() > 1
                      or g.groupby("config/test_fold")["config/hparams"].nunique().gt(1).any()):
            differ["config/hparams"] = sorted(map(str, g["config/hparams"].unique()))
        if differ:
            cell = ", ".join(map(str, key if isinstance(key, tuple) else (key,)))
            what = "; ".join(f"{c.split('/', 1)[1]}: {' vs '.join(v)}" for c, v in differ.items())
            out.append(f"{study}: the rows of cell ({cell}) ran different configs ({what}); the report will not "
                       "merge them. Give the other run its own results folder (--results-root) or preset, or "
                       "drop the superseded rows")
    return out


def read_predictions(path: Path, problems: list[str]) -> Predictions | None:
    """Load and sort one npz; append a problem (and return None) if it is missing or malformed."""
    if not path.is_file():
        problems.append(f"predictions file missing: {path}")
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in PREDICTION_KEYS if k not in z.files]
            if missing:
                problems.append(f"predictions file {path} lacks {missing}")
                return None
            rid, scores = z["record_id"].astype(str), z["scores"].astype(np.float64)
            labels, classes = z["labels"].astype(np.int8), tuple(z["classes"].astype(str).tolist())
            att = z["lead_attention"].astype(np.float64) if "lead_attention" in z.files else None
            attr = z["lead_attribution"].astype(np.float64) if "lead_attribution" in z.files else None
            specs = z["noise_specs"].astype(str).tolist() if "noise_specs" in z.files else []
            noisy = z["noise_scores"].astype(np.float64) if specs else None
    except (OSError, ValueError) as exc:
        problems.append(f"predictions file {path} is unreadable ({type(exc).__name__}: {exc})")
        return None
    n = len(rid)
    if n == 0 or scores.shape != (n, len(classes)) or labels.shape != scores.shape or \
            (att is not None and att.shape != (n, 12)) or \
            (attr is not None and attr.shape != (n, len(classes), 12)) or \
            (noisy is not None and noisy.shape != (len(specs), n, len(classes))):
        problems.append(f"predictions file {path} has inconsistent shapes: record_id {rid.shape}, "
                        f"scores {scores.shape}, labels {labels.shape}, classes {len(classes)}")
        return None
    order = np.argsort(rid, kind="stable")
    return Predictions(rid[order], scores[order], labels[order], classes,
                       None if att is None else att[order], None if attr is None else attr[order],
                       None if noisy is None else {k: v[order] for k, v in zip(specs, noisy)})


def read_study(root: Path, name: str, preset: str, problems: list[str]) -> Study | None:
    """Rows and predictions of one study; every gap becomes a line in `problems`."""
    folder = Path(root) / name / preset
    path = folder / "trials.parquet"
    if not path.is_file():
        problems.append(f"{name}: no results file {path}")
        return None
    try:
        rows = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError for torn or foreign files
        problems.append(f"{name}: cannot read {path} ({type(exc).__name__}: {exc})")
        return None
    if rows.empty:
        problems.append(f"{name}: {path} has no rows")
        return None
    need = COMMON_COLUMNS + STUDY_COLUMNS[name]
    missing = [c for c in need if c not in rows.columns]
    if name == "noise_robustness" and not any(NOISE_COLUMN.match(c) for c in rows.columns):
        missing.append("noise/<kind>/<snr>/macro_auc")
    if missing:
        problems.append(f"{name}: {path} lacks column(s) {missing}")
        return None
    bad = rows.loc[rows["test/macro_auc"].isna(), "trial_id"].tolist()
    if bad:
        problems.append(f"{name}: rows with no test/macro_auc (trials {bad})")
        return None
    rows = fill_later_fields(rows.sort_values(["trial_id"]).reset_index(drop=True))
    rows["_model"] = _model_labels(rows)
    if mixed := mixed_cells(rows, name):
        problems.extend(mixed)
        return None
    study = Study(name, preset, folder, rows)
    if "predictions_file" in STUDY_COLUMNS[name]:
        n_before = len(problems)
        for tid, rel in zip(rows["trial_id"], rows["predictions_file"]):
            if not isinstance(rel, str) or not rel:
                problems.append(f"{name}: trial {tid} names no predictions file")
                continue
            p = read_predictions(folder / rel, problems)
            if p is not None:
                study.predictions[str(tid)] = p
        if len(problems) > n_before:
            return None
        _check_row_auc(study, problems)
    return study


def _check_row_auc(study: Study, problems: list[str]) -> None:
    """Each predictions file must give its row's macro-AUC: the numbers trace back to the row."""
    for tid, row_auc in zip(study.rows["trial_id"], study.rows["test/macro_auc"]):
        p = study.predictions[str(tid)]
        got = macro_point(p.labels, p.scores[None])
        if not abs(got - float(row_auc)) <= AUC_TOLERANCE:
            problems.append(f"{study.name}: predictions of trial {tid} give macro-AUC {got:.6f}, "
                            f"its row says {float(row_auc):.6f}")


def cells(study: Study, keys: tuple[str, ...], problems: list[str] | None = None) -> list[Cell]:
    """Group a study's rows into cells by `keys` (row columns); seeds within a cell share records.

    Where a (cell, seed) has several rows (a rerun), the one finished last is used.
    """
    rows = study.rows
    if "config/test_fold" in rows and rows["config/test_fold"].nunique() > 1 and "config/test_fold" not in keys:
        raise ResultsError([f"{study.name}: rows span several test folds (fold rotation); per-seed cells cannot "
                            "pool them: build with `python -m beat_ray.report --all` (make figures)"])
    if "finished_at" in rows:
        rows = rows.sort_values(["finished_at", "trial_id"])
    rows = rows.drop_duplicates(list(keys) + ["seed"], keep="last")
    out, errs = [], []
    for key, g in rows.groupby(list(keys), sort=True, dropna=False):
        g = g.sort_values("seed")
        preds = tuple(study.predictions[str(t)] for t in g["trial_id"]) if study.predictions else ()
        for p in preds[1:]:
            if not (np.array_equal(p.record_id, preds[0].record_id) and p.classes == preds[0].classes
                    and np.array_equal(p.labels, preds[0].labels)):
                errs.append(f"{study.name}: seeds of {key} were tested on different records or classes")
                break
        out.append(Cell(tuple(key) if isinstance(key, tuple) else (key,), g.reset_index(drop=True), preds))
    if errs:
        if problems is None:
            raise ResultsError(errs)
        problems.extend(errs)
    return out


def pooled(study: Study, rows: pd.DataFrame, what: str) -> Predictions:
    """One seed's test predictions pooled over its test folds (the last finished row per fold), sorted.

    Under a fold rotation every record is then predicted once, by a model that never saw its patient.
    """
    if "finished_at" in rows:
        rows = rows.sort_values(["finished_at", "trial_id"])
    if "config/test_fold" in rows:
        rows = rows.drop_duplicates(["config/test_fold"], keep="last")
    parts = [study.predictions[str(t)] for t in rows["trial_id"]]
    rid = np.concatenate([p.record_id for p in parts])
    if len(np.unique(rid)) != len(rid):
        raise ResultsError([f"{study.name}: {what}: a record has two test predictions in one rotation (one seed's folds)"])
    if len({p.classes for p in parts}) != 1:
        raise ResultsError([f"{study.name}: {what}: test folds of one seed have different classes"])
    order = np.argsort(rid, kind="stable")

    def cat(name: str):
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)[order]

    noise = None
    if all(p.noise is not None for p in parts) and len({tuple(p.noise) for p in parts}) == 1:
        noise = {k: np.concatenate([p.noise[k] for p in parts])[order] for k in parts[0].noise}
    return Predictions(rid[order], cat("scores"), cat("labels"), parts[0].classes, cat("lead_attention"),
                       cat("lead_attribution"), noise)


def noise_columns(rows: pd.DataFrame) -> dict[str, list[tuple[float, str]]]:
    """Noise kind -> [(snr_db, column)], SNR descending, from `noise/<kind>/<snr>/macro_auc`."""
    out: dict[str, list[tuple[float, str]]] = {}
    for c in rows.columns:
        m = NOISE_COLUMN.match(c)
        if m:
            out.setdefault(m.group(1), []).append((float(m.group(2)), c))
    return {k: sorted(v, reverse=True) for k, v in out.items()}


def read_realdata(realdata: Path, problems: list[str]) -> tuple[np.ndarray, float] | None:
    """The PTB record s0010_re as (12, T) mV and fs, read by the library's own WFDB reader."""
    from beat_ray.data.errors import RecordError
    from beat_ray.data.wfdb_io import read_wfdb

    path = Path(realdata).joinpath(*REALDATA_RECORD)
    if not path.with_suffix(".hea").is_file():
        problems.append(f"real record for Fig. 4 missing: {path}.hea (set --realdata or BEAT_RAY_REALDATA)")
        return None
    try:
        return read_wfdb(path)
    except RecordError as exc:
        problems.append(f"real record for Fig. 4 unreadable: {exc}")
        return None


@dataclass
class Inputs:
    """Everything the report draws from, checked complete."""

    results: Path
    preset: str
    studies: dict[str, Study]
    record: tuple[np.ndarray, float]
    realdata: Path


def load_all(results: Path, preset: str, realdata: Path) -> Inputs:
    """Read all four studies and the real record, or raise one ResultsError naming every gap."""
    problems: list[str] = []
    results = Path(results)
    if not results.is_dir():
        raise ResultsError([f"results folder {results} does not exist"])
    studies = {}
    for name in STUDIES:
        s = read_study(results, name, preset, problems)
        if s is not None:
            studies[name] = s
    if "lead_attribution" in studies and not _has_attribution(studies["lead_attribution"]):
        problems.append("lead_attribution: a trial without lead_attribution in its predictions "
                        "(needed for Table 6 and Fig. 3; rerun with attribution_steps > 0)")
    record = read_realdata(realdata, problems)
    if problems:
        raise ResultsError(problems)
    return Inputs(results, preset, studies, record, Path(realdata))


def _has_attribution(study: Study) -> bool:
    return all(p.lead_attribution is not None for p in study.predictions.values())


def kwargs_text(value: object) -> str:
    """config/model_kwargs as compact text, e.g. 'size=tiny' (rows store it as a JSON string)."""
    try:
        d = json.loads(value) if isinstance(value, str) else dict(value or {})
    except (TypeError, ValueError):
        return str(value)
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()))
