"""Cross-fitted studies (fold rotation, issue H): one pooled test prediction per record, paired CIs.

Why pool: a 126-record test fold gives macro-AUC CIs of about ±0.04, too wide to decide
"matches CNNs". Under the rotation each fold 1..10 is the test fold once (at the rotation seed),
so every record has exactly one test prediction from a model that never saw its patient. The
pooled macro-AUC is computed over all of them at once (mid-rank AUC per class, equal to
scikit-learn's), its CI from a bootstrap over records (and seeds, where several rotate), and a difference between two models from
the same resample applied to both (paired). The spread of the per-fold AUCs (the rows' own
`test/macro_auc`) and the official split's fold 10 over every seed are reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from beat_ray.data.splits import record_set_hash
from beat_ray.report import stats
from beat_ray.report.analysis import (
    REFERENCE_MODEL,
    Bootstrap,
    Estimate,
    model_order,
    reference_of,
)
from beat_ray.report.load import ResultsError, Study, kwargs_text
from beat_ray.report.load import pooled as pool_folds
from beat_ray.report.tables import DASH, Table, est, num

N_FOLDS = 10
OFFICIAL_FOLD = 10
MARGIN = stats.MARGIN           # the default; a build's own margin is Bootstrap.margin (--margin)


def rows_rotated(rows: pd.DataFrame) -> bool:
    """True when results rows test on folds other than the official fold 10."""
    return "config/test_fold" in rows and bool((rows["config/test_fold"] != OFFICIAL_FOLD).any())


# The studies whose rotated rows the report pools, each with its per-fold figure.
FIGURE_STEMS = {"benchmark": "fig5_benchmark_folds", "ablations": "fig6_ablations_folds"}
POOLED_ELSEWHERE = ("data_efficiency", "lead_attribution", "noise_robustness")   # efficiency.py, attribution.py, robustness.py


def not_pooled(study: Study) -> str | None:
    """Why a rotated study cannot be drawn yet (None when it can: official split, or pooled here)."""
    if study.name in FIGURE_STEMS or study.name in POOLED_ELSEWHERE or not rows_rotated(study.rows):
        return None
    return (f"{study.name}/{study.preset}: rotated rows are not pooled by the report yet "
            f"(only {' and '.join(FIGURE_STEMS)} are)")



@dataclass
class PooledResult:
    """One model (and recipe) on one dataset/task under the rotation."""

    model: str
    data: str
    recipe: str
    pooled: Estimate | None                 # macro-AUC over every record's one test prediction
    pooled_dist: np.ndarray | None          # (B,) bootstrap distribution, resampled over pooled records
    record_id: np.ndarray | None            # sorted pooled record ids
    n_pooled: int
    record_hash: str
    per_fold: dict[int, float]              # test fold -> that fold's test/macro_auc (rotation seed)
    fold10: Estimate | None                 # official split: mean over seeds, CI over its test records
    fold10_dist: np.ndarray | None
    fold10_record_id: np.ndarray | None
    n_fold10_seeds: int
    n_fallback: int                          # tokens-model fallback predictions among the pooled records
    rotation_seed: int | None
    model_kwargs: str = ""
    delta: Estimate | None = None            # reference minus this model, pooled, paired
    delta_fold10: Estimate | None = None

    @property
    def fold_spread(self) -> tuple[float, float, float, float]:
        """(mean, SD, min, max) of the per-fold macro-AUCs."""
        v = np.array(list(self.per_fold.values()), float)
        if not len(v):
            return (float("nan"),) * 4
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), float(v.min()), float(v.max())


def _estimate(labels: np.ndarray, scores: np.ndarray, boot: Bootstrap, point: float | None = None):
    dist = stats.two_level(labels, scores, boot.weights(labels), seed=boot.seed)
    mean = stats.macro_point(labels, scores) if point is None else point
    return Estimate(mean, *stats.ci(dist)), dist


def rotation_seed(rows: pd.DataFrame) -> int | None:
    """The seed whose rows rotate the test fold: the smallest that tested folds other than the official 10
    (all ten, or the subset a preset cut to, e.g. 2, 4, 6, 8, 10); the other seeds run on fold 10 only
    (study.fold_seeds). None when no seed did."""
    folds = rows["config/test_fold"].astype(int)
    seeds = [s for s in sorted(rows["seed"].unique()) if set(folds[rows["seed"] == s]) - {OFFICIAL_FOLD}]
    return int(seeds[0]) if seeds else None


def _one(study: Study, g: pd.DataFrame, boot: Bootstrap) -> PooledResult:
    folds = g["config/test_fold"].astype(int)
    pooled = dist = rid = None
    per_fold: dict[int, float] = {}
    n_fb, rhash, seed = 0, "", rotation_seed(g)
    if seed is not None:
        r = g[g["seed"] == seed].sort_values("config/test_fold")
        if r["config/test_fold"].duplicated().any():
            raise ResultsError([f"{study.name}: {g['_arm'].iloc[0]} has two rows for one fold at seed {seed}"])
        p = pool_folds(study, r, str(g["_arm"].iloc[0]))
        pooled, dist = _estimate(p.labels, p.scores[None], boot)
        rid, rhash = p.record_id, record_set_hash(p.record_id)
        per_fold = {int(k): float(v) for k, v in zip(r["config/test_fold"], r["test/macro_auc"])}
        n_fb = int(r["n_fallback_test"].sum()) if "n_fallback_test" in r else 0
    f10 = g[folds == OFFICIAL_FOLD].sort_values("seed")
    fold10 = d10 = rid10 = None
    if len(f10):
        preds = [study.predictions[str(t)] for t in f10["trial_id"]]
        if any(not np.array_equal(q.record_id, preds[0].record_id) for q in preds):
            raise ResultsError([f"{study.name}: seeds of {g['_arm'].iloc[0]} on fold 10 saw different records"])
        fold10, d10 = _estimate(preds[0].labels, np.stack([q.scores for q in preds]), boot,
                                float(f10["test/macro_auc"].mean()))
        rid10 = preds[0].record_id
    first = g.iloc[0]
    return PooledResult(
        model=str(first["_arm"]), data=f"{first['config/dataset']}/{first['config/task']}",
        recipe=str(first.get("config/recipe", "default")), pooled=pooled, pooled_dist=dist, record_id=rid,
        n_pooled=0 if rid is None else len(rid), record_hash=rhash, per_fold=per_fold, fold10=fold10,
        fold10_dist=d10, fold10_record_id=rid10, n_fold10_seeds=len(f10), n_fallback=n_fb, rotation_seed=seed,
        model_kwargs=kwargs_text(first.get("config/model_kwargs", "{}")))


def _paired(ref_mean, ref_dist, ref_ids, mean, dist, ids) -> Estimate | None:
    if ref_dist is None or dist is None or not np.array_equal(ref_ids, ids):
        return None
    return Estimate(ref_mean - mean, *stats.ci(ref_dist - dist))


def pooled_results(study: Study, boot: Bootstrap) -> list[PooledResult]:
    """Every (model, recipe, dataset/task) of a rotated study, with paired Δ against beatnet."""
    rows = study.rows.copy()
    if "config/test_fold" not in rows:
        rows["config/test_fold"] = OFFICIAL_FOLD
    rows["_arm"] = rows["_model"]           # model label, with kwargs and recipe where they differ (load.py)
    res = [_one(study, g, boot) for _, g in rows.groupby(["_arm", "config/dataset", "config/task"], sort=True)]
    for r in res:
        ref = reference_of(r, res)
        if ref is None or ref is r:
            continue
        if ref.pooled is not None and r.pooled is not None:
            if ref.record_hash != r.record_hash:
                raise ResultsError([f"{study.name}: {r.model} and {REFERENCE_MODEL} pooled different records"])
            r.delta = _paired(ref.pooled.mean, ref.pooled_dist, ref.record_id, r.pooled.mean, r.pooled_dist,
                              r.record_id)
        if ref.fold10 is not None and r.fold10 is not None:
            r.delta_fold10 = _paired(ref.fold10.mean, ref.fold10_dist, ref.fold10_record_id, r.fold10.mean,
                                     r.fold10_dist, r.fold10_record_id)
    order = model_order(r.model for r in res)
    return sorted(res, key=lambda r: (r.data, r.recipe != "default", order.index(r.model)))


def non_inferior(delta: Estimate | None, margin: float = MARGIN) -> str:
    """'yes' when beatnet is within `margin` of the model: the lower bound of (beatnet − model) > −margin."""
    if delta is None:
        return DASH
    return "yes" if delta.lo > -margin else "no"


def half_width(e: Estimate | None) -> float:
    return float("nan") if e is None else (e.hi - e.lo) / 2


def _spread(r: PooledResult) -> str:
    if not r.per_fold:
        return DASH
    m, sd, lo, hi = r.fold_spread
    return f"{num(m)} ± {num(sd)} ({num(lo)}–{num(hi)})"


def table(res: list[PooledResult], boot: Bootstrap, preset: str, name: str, title: str, what: str) -> Table:
    """Table 1 or 2 for a rotated study: pooled macro-AUC, paired Δ vs beatnet, fold spread, fold 10."""
    header = ["Data", "Model", "Pooled macro-AUC", "± (half-width)", f"Δ vs {REFERENCE_MODEL} (pooled)",
              f"{REFERENCE_MODEL} within {boot.margin:g}?", "Per-fold mean ± SD (min–max)", "Fold 10 (official split)",
              f"Δ vs {REFERENCE_MODEL} (fold 10)", "Records", "Fallback"]
    rows = []
    for r in res:
        f10 = f"{est(r.fold10)}, {r.n_fold10_seeds} seed{'s' if r.n_fold10_seeds != 1 else ''}" if r.fold10 else DASH
        rows.append([r.data, r.model, est(r.pooled), num(half_width(r.pooled)), est(r.delta, signed=True),
                     non_inferior(r.delta, boot.margin), _spread(r), f10, est(r.delta_fold10, signed=True),
                     f"{r.n_pooled} (`{r.record_hash}`)" if r.n_pooled else DASH, str(r.n_fallback)])
    tested = sorted({k for r in res for k in r.per_fold})
    cut = (f" This rotation covers test folds {', '.join(map(str, tested))} only (the others were cut for time), so "
           "the pooled records are those folds' records." if tested and len(tested) < N_FOLDS else "")
    cap = (f"{what}{cut} Fold rotation: for each k in 1..10 the model trains on 8 folds, selects on the fold before k "
           "(cyclically) and tests on fold k, so every record of a tested fold has exactly one test prediction, "
           "from a model that never saw its patient (PTB-XL's strat_fold is patient-grouped). Pooled macro-AUC: "
           "over those predictions at the rotation seed (0), computed once over all records (mid-rank AUC, equal "
           f"to scikit-learn's); 95% percentile bootstrap CI over records ({boot.n_boot} resamples, numpy seed "
           f"{boot.seed}); pooling ranks the scores of the fold models together, so it also counts their calibration "
           f"differences (the per-fold mean beside it does not). Δ = {REFERENCE_MODEL} minus the model (positive: {REFERENCE_MODEL} is better), the same "
           "resample for both (paired); a CI that excludes 0 is a difference, one that contains 0 is not "
           "evidence of a difference either way. "
           f"{REFERENCE_MODEL} within {boot.margin:g}: the lower bound of Δ's CI is above −{boot.margin:g} (non-inferiority "
           f"margin {boot.margin:g}, fixed in advance; --margin): only then does {REFERENCE_MODEL} \"match\" that model. Per-fold: the rows' own test macro-AUC on each test fold. Fold "
           "10: the official split (train 1-8, val 9, test 10), mean over seeds, CI over its test records. "
           "Records: pooled test records and the hash of their ids (equal hashes = the same records for every "
           "model). Fallback: pooled test records a tokens model had no beats for, scored with the training "
           f"prevalence. Preset `{preset}`.")
    return Table(name, title, cap, header, rows)


def arms_text(res: list[PooledResult]) -> str:
    """One line per arm: recipe, kwargs, rotation seed (for the README)."""
    return "; ".join(f"{r.model}: recipe {r.recipe}{f', {r.model_kwargs}' if r.model_kwargs else ''}" for r in res)


def figure(res: list[PooledResult], out, stem: str, title: str) -> list[str]:
    """Per model: each fold's test macro-AUC (dots) and the pooled macro-AUC with its 95% CI (bar)."""
    import matplotlib.pyplot as plt

    from beat_ray.report.figures import save

    shown = [r for r in res if r.pooled is not None or r.fold10 is not None]
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(shown) + 1.9))
    labelled: set[str] = set()

    def once(text: str) -> str | None:
        if text in labelled:
            return None
        labelled.add(text)
        return text

    for i, r in enumerate(shown):
        y = len(shown) - 1 - i
        if r.per_fold:
            ax.plot(list(r.per_fold.values()), [y + 0.15] * len(r.per_fold), "o", color="0.55", ms=3.5,
                    label=once("one test fold (rotation seed)"))
        for e, dy, col, lab in ((r.pooled, -0.05, "tab:blue", "pooled over the tested folds' records, 95% CI"),
                                (r.fold10, -0.22, "tab:orange", "fold 10, mean over seeds, 95% CI")):
            if e is not None:
                ax.errorbar([e.mean], [y + dy], xerr=[[e.mean - e.lo], [e.hi - e.mean]], fmt="D", color=col,
                            ms=4.5, capsize=3, lw=1.2, label=once(lab))
    ax.set_yticks(range(len(shown)), [f"{r.model}\n{r.data}" for r in reversed(shown)], fontsize=7.5)
    ax.set_ylim(-0.6, len(shown) - 0.5)
    ax.set_xlabel("test macro-AUC")
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False, fontsize=7)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save(fig, out, stem)
