"""Result rows: the contract between `train` and `report`, and their atomic, de-duplicated storage.

One row per finished trial in `results/<study>/<preset>/trials.parquet` (+ a CSV twin). A write
goes to a temp file in the same folder and is renamed over the old file, so a crash mid-write
leaves either the old or the new file, never a torn one. Rows are keyed by `trial_id`: writing
a row twice (e.g. after a resumed sweep reconciles) keeps one. Each row also carries
`config_hash` (every TrialConfig field), and the report refuses to merge rows of one table cell
whose configs differ in anything but seed, fold and device (beat_ray/report/load.py).
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Columns every row has; metric columns ("test/...", "val_...") and "config/..." columns come on top.
PROVENANCE_COLUMNS = ("study", "preset", "trial_id", "seed", "git_commit", "git_dirty", "finished_at")
REQUIRED_COLUMNS = (*PROVENANCE_COLUMNS, "train_seconds", "n_params", "test/macro_auc", "val_macro_auc", "best_epoch",
                    "epoch")
PREDICTIONS_DIR = "predictions"


def launch_command() -> str:
    """The command line that launched this driver, the script named from the repo root: a row says how to make it
    again. Rows are made in the driver (a `ray job submit` entrypoint, a study's `main`), so sys.argv is it."""
    argv = list(sys.argv) or [""]
    script = Path(argv[0]).resolve()
    root = Path(__file__).resolve().parents[2]
    if argv[0] and script.is_relative_to(root):
        argv[0] = str(script.relative_to(root))
    return shlex.join(["python", *argv])


@lru_cache(maxsize=1)
def git_info(repo: str | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the code that runs; ('unknown', True) outside a git checkout.

    Ray jobs ship the working dir without .git, so the launcher passes BEAT_RAY_GIT_COMMIT /
    BEAT_RAY_GIT_DIRTY through the runtime env; they win when set.
    """
    if os.environ.get("BEAT_RAY_GIT_COMMIT"):
        return os.environ["BEAT_RAY_GIT_COMMIT"], os.environ.get("BEAT_RAY_GIT_DIRTY", "1") == "1"
    cwd = repo or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        # results/ and paper_figures/ are what studies write: a resumed sweep finds its own earlier rows
        # there, which says nothing about the code that runs
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                     ":(exclude)results", ":(exclude)paper_figures"], cwd=cwd,
                                    capture_output=True, text=True, check=True).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True


def results_dir(root: str | Path, study: str, preset: str) -> Path:
    return Path(root) / study / preset


def _atomic_write(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_rows(folder: str | Path) -> pd.DataFrame:
    path = Path(folder) / "trials.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def row_config(row: pd.Series):
    """The TrialConfig a row was trained with, from its config columns; fields added since the row was
    written take their defaults (how each was introduced)."""
    from beat_ray.train.config import TrialConfig
    defaults = TrialConfig().to_dict()
    cfg = {}
    for col, v in row.items():
        k = col.removeprefix("config/")
        if col == k or k not in defaults:
            continue
        v = v.item() if isinstance(v, np.generic) else v
        if v is None or (isinstance(v, float) and np.isnan(v) and not isinstance(defaults[k], float)):
            continue                    # a column that came after this row: its default
        if isinstance(v, float) and v.is_integer() and not isinstance(defaults[k], float):
            v = int(v)                  # an int column that a missing value turned float
        cfg[k] = json.loads(v) if isinstance(defaults[k], (dict, list, tuple)) and isinstance(v, str) else v
    return TrialConfig.from_dict(cfg)


def done_hashes(rows: pd.DataFrame) -> set[str]:
    """Config hashes of the cells `rows` hold, recomputed from their config columns (`row_config`). A row's
    stored `config_hash` is not used: it changed whenever a field was added (only LATER_FIELDS are exempt)."""
    return {row_config(row).config_hash() for _, row in rows.iterrows()}


def append_rows(folder: str | Path, rows: list[dict[str, Any]], required: tuple[str, ...] = REQUIRED_COLUMNS,
                order: tuple[str, ...] = ("trial_id",)) -> pd.DataFrame:
    """Add rows (replacing any with the same trial_id) and rewrite parquet + CSV atomically, sorted by `order`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    missing = [c for c in required if c not in new.columns]
    if missing:
        raise ValueError(f"result rows lack required columns {missing}")
    old = read_rows(folder)
    if len(old):
        old = old[~old["trial_id"].isin(new["trial_id"])]
        new = pd.concat([old, new], ignore_index=True)
    new = new.sort_values(list(order)).reset_index(drop=True)
    _atomic_write(new, folder / "trials.parquet")
    _atomic_write(new, folder / "trials.csv")
    return new


def make_row(config: dict[str, Any], metrics: dict[str, Any], trial_id: str) -> dict[str, Any]:
    """Flatten a trial's config and its final metrics into one row with provenance."""
    from beat_ray.train.config import TrialConfig

    cfg = TrialConfig.from_dict(config)
    commit, dirty = git_info()
    row = {"study": cfg.study, "preset": cfg.preset, "trial_id": trial_id, "seed": cfg.seed,
           "git_commit": commit, "git_dirty": dirty, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "hostname": socket.gethostname(), "command": launch_command()}
    row["config_hash"] = cfg.config_hash()
    row.update(cfg.flat())
    for k, v in metrics.items():
        if k.startswith("_") or isinstance(v, (dict, list, np.ndarray)):
            continue
        row[k] = v.item() if isinstance(v, np.generic) else v
    return row


def save_predictions(folder: str | Path, trial_id: str, predictions: dict[str, np.ndarray]) -> Path:
    """Per-record test scores of one trial (for bootstrap CIs in the report), written atomically."""
    out = Path(folder) / PREDICTIONS_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{trial_id}.npz"
    tmp = out / f".{trial_id}.{uuid.uuid4().hex[:8]}.tmp.npz"
    np.savez_compressed(tmp, **predictions)
    os.replace(tmp, path)
    return path
