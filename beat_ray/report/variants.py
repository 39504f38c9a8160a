"""The BEAT-Net variants table (experiments/beatnet_variants.py): validation AUC only, paired per fold.

Its rows were never scored on a test fold (`score_test=False`), so this is the one table whose numbers
are validation macro-AUCs, and its caption says so. Pairing: the same test fold's layout (same training
and validation records, same tuned optimiser settings, same seed) for every variant.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from beat_ray.report.load import ResultsError
from beat_ray.report.tables import Table

STUDY = "beatnet_variants"
REFERENCE = "original"


def label(model_kwargs: str | dict) -> str:
    """A row's variant from the design kwargs it set (the tuned size/dropout are not a variant)."""
    kw = json.loads(model_kwargs) if isinstance(model_kwargs, str) else dict(model_kwargs)
    parts = []
    if kw.get("token_norm", "raw") != "raw":
        parts.append(f"tokens {kw['token_norm']}")
    if kw.get("rf_s") is not None:
        parts.append(f"rf {kw['rf_s']:g} s")
    if kw.get("rr_norm", "seconds") != "seconds":
        parts.append(f"rr {kw['rr_norm']}")
    if kw.get("cnn_bins"):
        parts.append(f"bins {kw['cnn_bins']}")
    return " + ".join(parts) or REFERENCE


def paired(rows: pd.DataFrame) -> pd.DataFrame:
    """(variant x (test_fold, seed)) best validation macro-AUC; refuses a variant missing a pair."""
    rows = rows.assign(variant=rows["config/model_kwargs"].map(label))
    wide = rows.pivot_table(index="variant", columns=["config/test_fold", "seed"], values="best_val_macro_auc",
                            aggfunc="last")
    if REFERENCE not in wide.index:
        raise ResultsError([f"{STUDY}: no '{REFERENCE}' rows to pair the variants with"])
    holes = wide.columns[wide.isna().any()].tolist()
    if holes:
        raise ResultsError([f"{STUDY}: (test fold, seed) {holes} lack some variant's row; finish the run"])
    return wide


def load(folder: str | Path) -> pd.DataFrame:
    """The study's rows; refuses a missing file and any row that scored a test fold."""
    path = Path(folder) / "trials.parquet"
    if not path.is_file():
        raise ResultsError([f"no rows at {path}"])
    rows = pd.read_parquet(path)
    if rows["test/macro_auc"].notna().any():
        raise ResultsError([f"{path}: rows scored a test fold; variants are chosen on validation only"])
    return rows


def table(rows: pd.DataFrame) -> Table:
    wide = paired(rows)
    ref = wide.loc[REFERENCE]
    order = [REFERENCE] + sorted(v for v in wide.index if v != REFERENCE)
    body, kept = [], []
    best = max((v for v in order if v != REFERENCE), key=lambda v: (wide.loc[v] - ref).mean(), default=None)
    for v in order:
        vals = wide.loc[v]
        if v == REFERENCE:
            body.append([v, str(len(vals)), f"{vals.mean():.3f}", "–", "–", "–"])
            continue
        d = (vals - ref).to_numpy()
        half = st.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        keep = d.mean() > 0
        kept += [v] if keep else []
        body.append([v, str(len(d)), f"{vals.mean():.3f}", f"{d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]",
                     f"{int((d > 0).sum())} of {len(d)}", ("yes, best" if v == best else "yes") if keep else "no"])
    folds = sorted({int(k) for k, _ in wide.columns})
    commits = sorted(set(rows["git_commit"].str[:7]))
    caption = (f"BEAT-Net design variants, best validation macro-AUC (never a test number: score_test=False). "
               f"Each variant trains on top of BEAT-Net's tuned config for test folds {folds} "
               f"({rows['config/hparams'].iloc[0] or 'untuned'}), {int(rows['config/epochs'].iloc[0])} epochs, "
               f"seeds {sorted(set(rows['seed']))}; validation is the fold before each test fold. Δ vs {REFERENCE}: "
               f"paired per (test fold, seed), mean with a 95% t interval over the pairs. Kept: mean Δ > 0, the rule "
               f"fixed before the run; of the kept ones the largest mean Δ (best) is the one the tuned studies use "
               f"(a tie-break added once two passed). The search behind the tuned config did not include these variants, so this is "
               f"a second, sequential look at validation data that only BEAT-Net got. Kept here: "
               f"{', '.join(kept) or 'none'}. Rows: {len(rows)}, commit {', '.join(commits)}.")
    return Table("table_beatnet_variants", "BEAT-Net variants (validation)", caption,
                 ["Variant", "Pairs", "Mean val macro-AUC", f"Δ vs {REFERENCE} [95% CI]", "Improved", "Kept"], body)
