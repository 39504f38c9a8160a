"""The numbers behind every table and figure, computed once from the checked inputs.

Point estimates are means over seeds of the rows' own sklearn metrics (`test/macro_auc`,
`test/group_auc/<g>`), so each printed number traces to result rows; the stored predictions
only supply the bootstrap distributions around them (see stats.py).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from beat_ray.data.synth import CLASS_GROUPS
from beat_ray.report import stats
from beat_ray.report.load import Cell, ResultsError, Study, cells

REFERENCE_MODEL = "beatnet"
# Rhythm classes of the real datasets (Fig. 3), beside synth's own "rhythm" group: PTB-XL's
# statements flagged rhythm == 1, CPSC2018's rhythm labels, Chapman's rhythm task (and groups).
REAL_RHYTHM_CLASSES: frozenset[str] = frozenset({
    "SR", "AFIB", "STACH", "SARRH", "SBRAD", "PACE", "SVARR", "BIGU", "AFLT", "SVTAC", "PSVT", "TRIGU",
    "NSR", "AF", "PAC", "PVC",
    "SB", "ST", "AFL", "SA", "SVT", "AT", "AVNRT", "AVRT", "SAAWR", "GSVT"})
ATTENTION_LEAD = "II"


def is_rhythm_class(name: str) -> bool:
    """Synth classes of the 'rhythm' group, plus the documented real-dataset rhythm labels."""
    return CLASS_GROUPS.get(name) == "rhythm" or name in REAL_RHYTHM_CLASSES


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95 % bootstrap interval (NaN bounds where there is none)."""

    mean: float
    lo: float = float("nan")
    hi: float = float("nan")


@dataclass
class CellResult:
    """One cell: macro-AUC and per-group AUC, each a mean over seeds, with bootstrap CIs."""

    model: str
    data: str                      # "<dataset>/<task>"
    n_seeds: int
    macro: Estimate
    groups: dict[str, Estimate]
    dist: np.ndarray               # (B,) bootstrap distribution of the macro-AUC
    group_dist: dict[str, np.ndarray]
    record_id: np.ndarray
    fraction: float = 1.0


class Bootstrap:
    """Resample weights shared by every cell with the same test labels (the same records), and the
    non-inferiority margin every "matches"/"recovers" verdict uses (the report's --margin).

    Resamples that leave a class without a positive or a negative are redrawn (stats.valid_resamples);
    `redrawn` counts them per label set, for the captions."""

    def __init__(self, n_boot: int = stats.N_BOOT, seed: int = stats.SEED, margin: float = stats.MARGIN):
        self.n_boot, self.seed, self.margin = n_boot, seed, margin
        self._w: dict[tuple, np.ndarray] = {}
        self.redrawn: dict[tuple, int] = {}

    def weights(self, labels: np.ndarray, stream: int = 0) -> np.ndarray:
        """(n_boot, n) draw counts for test records with these (n, C) labels. `stream` > 0 gives an
        independent stream (one per test fold in perfold.py, so folds never share draws)."""
        y = np.ascontiguousarray(np.asarray(labels).astype(np.int8))
        key = (y.shape, hashlib.sha1(y.tobytes()).hexdigest(), stream)
        if key not in self._w:
            seed = [self.seed, stream] if stream else self.seed
            self._w[key], self.redrawn[key] = stats.valid_resamples(y, self.n_boot, seed)
        return self._w[key]

    def seeds(self, n_seeds: int) -> np.ndarray:
        """(n_boot, n_seeds) seed draw counts: the second level of every CI (stats.macro)."""
        return stats.seed_weights(n_seeds, self.n_boot, self.seed)

    def redraw_text(self) -> str:
        """'12 of 3,000 resamples (3 test sets) were redrawn' for the report's protocol section."""
        n, r = len(self.redrawn), sum(self.redrawn.values())
        return (f"{r:,} draw{'s' if r != 1 else ''} rejected and redrawn over the {n} test set{'s' if n != 1 else ''} "
                f"of this build ({n * self.n_boot:,} resamples kept)")


def _groups(cell: Cell) -> dict[str, list[int]]:
    """Class groups reported for a cell: those with a `test/group_auc/<g>` value in its rows."""
    out = {}
    for col in sorted(c for c in cell.rows.columns if c.startswith("test/group_auc/")):
        g = col.split("/", 2)[2]
        cols = [i for i, c in enumerate(cell.classes) if CLASS_GROUPS.get(c) == g]
        if cols and cell.rows[col].notna().all():
            out[g] = cols
    return out


def cell_result(cell: Cell, boot: Bootstrap, fraction: float = 1.0) -> CellResult:
    aucs = stats.class_auc(cell.labels, cell.scores(), boot.weights(cell.labels))
    groups = _groups(cell)
    sw = boot.seeds(len(aucs))
    dist = stats.macro(aucs, seed_w=sw)
    gdist = {g: stats.macro(aucs, cols, seed_w=sw) for g, cols in groups.items()}
    r = cell.rows
    return CellResult(
        model=str(r["_model"].iloc[0]), data=f"{r['config/dataset'].iloc[0]}/{r['config/task'].iloc[0]}",
        n_seeds=len(r), macro=Estimate(float(r["test/macro_auc"].mean()), *stats.ci(dist)),
        groups={g: Estimate(float(r[f"test/group_auc/{g}"].mean()), *stats.ci(d)) for g, d in gdist.items()},
        dist=dist, group_dist=gdist, record_id=cell.record_id, fraction=fraction)


def reference_for(label: str, labels) -> str | None:
    """The beatnet arm a model's arm is paired with: the one with the same qualifier where it exists
    ('xresnet1d101 (tuned)' -> 'beatnet (tuned)', '... (train noise ma:12)' likewise), else plain beatnet.
    A detector qualifier ('beatnet (select detector)') is what is compared, so it pairs with plain beatnet."""
    labels = set(labels)
    qualifier = re.sub(r"\s*\([a-z]+ detector\)", "", label.split(" ", 1)[1] if " " in label else "").strip()
    for cand in ([f"{REFERENCE_MODEL} {qualifier}"] if qualifier else []) + [REFERENCE_MODEL]:
        if cand in labels:
            return cand
    return None


def reference_of(item, items):
    """The beatnet result `item` (anything with .model and .data) is paired with, among `items`."""
    same = [x for x in items if x.data == item.data]
    name = reference_for(item.model, (x.model for x in same))
    return next((x for x in same if x.model == name), None)


def model_order(names) -> list[str]:
    """BEAT-Net first, then its variants, then the other models, each alphabetical."""
    return sorted(set(names), key=lambda m: (not m.startswith(REFERENCE_MODEL), m != REFERENCE_MODEL, m))


def benchmark(study: Study, boot: Bootstrap) -> list[CellResult]:
    """Table 1: one result per (model, dataset/task)."""
    return [cell_result(c, boot) for c in cells(study, ("_model", "config/dataset", "config/task"))]


@dataclass
class AblationResult:
    result: CellResult
    drop: Estimate | None                   # reference minus variant (positive = the variant is worse)
    group_drops: dict[str, Estimate] = field(default_factory=dict)


def _drop(ref_mean: float, var_mean: float, ref_dist: np.ndarray, var_dist: np.ndarray) -> Estimate:
    return Estimate(ref_mean - var_mean, *stats.ci(ref_dist - var_dist))


def ablations(study: Study, boot: Bootstrap) -> list[AblationResult]:
    """Table 2: each variant against `beatnet` on the same data, paired over the same resamples."""
    res = [cell_result(c, boot) for c in cells(study, ("_model", "config/dataset", "config/task"))]
    out = []
    for r in res:
        ref = next((x for x in res if x.model == REFERENCE_MODEL and x.data == r.data), None)
        if ref is None:
            raise ResultsError([f"ablations: no '{REFERENCE_MODEL}' rows on {r.data} to measure drops against"])
        if r is ref:
            out.append(AblationResult(r, None))
            continue
        if not np.array_equal(ref.record_id, r.record_id):
            raise ResultsError([f"ablations: {r.model} and {REFERENCE_MODEL} were tested on different records"])
        drops = {g: _drop(ref.groups[g].mean, e.mean, ref.group_dist[g], r.group_dist[g])
                 for g, e in r.groups.items() if g in ref.groups}
        out.append(AblationResult(r, _drop(ref.macro.mean, r.macro.mean, ref.dist, r.dist), drops))
    return out


@dataclass
class Cost:
    model: str
    data: str
    n_seeds: int
    params: int
    samples_per_s: float          # mean over seeds of n_train * epochs / train_seconds
    train_s: float                # mean over seeds
    train_s_sd: float
    trial_s: float                # mean wall time of the whole trial (Ray's time_total_s), NaN if absent


def cost(study: Study) -> list[Cost]:
    """Model-cost table from the benchmark rows."""
    return [cost_of(c.rows) for c in cells(study, ("_model", "config/dataset", "config/task"))]


def cost_of(r: pd.DataFrame, label: str = "_model") -> Cost:
    """One Cost from the rows of one model on one dataset/task (`label` names the model column)."""
    sps = r["n_train"].astype(float) * r["epoch"].astype(float) / r["train_seconds"].astype(float)
    ts = r["train_seconds"].astype(float)
    trial = float(r["time_total_s"].astype(float).mean()) if "time_total_s" in r else float("nan")
    return Cost(str(r[label].iloc[0]), f"{r['config/dataset'].iloc[0]}/{r['config/task'].iloc[0]}",
                len(r), int(r["n_params"].median()), float(sps.mean()), float(ts.mean()),
                float(ts.std(ddof=1)) if len(r) > 1 else float("nan"), trial)


def provenance_rows(study: Study) -> pd.DataFrame:
    """Commit, dirty flag and row count per code version of one study (for the README)."""
    return pd.DataFrame(study.provenance(), columns=["git_commit", "git_dirty", "rows"])
