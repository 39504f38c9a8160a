"""Cross-fitted studies (fold rotation): per-fold-averaged macro-AUC, paired Δ, and the pooled figure beside it.

Under the rotation each fold 1..10 is the test fold once per seed, so every record has one test
prediction per seed from a model that never saw its patient. The primary statistic is the macro-AUC
within each test fold averaged over folds (perfold.py: CI over records within folds and over seeds).
The pooled macro-AUC (every record's prediction ranked together, across fold models) is kept beside
it, labelled as pooled: it also charges a model for score scales that move between folds. The spread
of the per-fold AUCs and the official split's fold 10 over every seed are reported as well.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from beat_ray.data.splits import record_set_hash
from beat_ray.report import perfold, stats
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
    pooled: Estimate | None                 # macro-AUC over every record's test prediction, seeds averaged
    pooled_dist: np.ndarray | None          # (B,) bootstrap distribution, resampled over pooled records
    record_id: np.ndarray | None            # sorted pooled record ids
    n_pooled: int
    record_hash: str
    per_fold: dict[int, float]              # test fold -> its test/macro_auc, mean over the seeds that tested it
    fold10: Estimate | None                 # official split: mean over seeds, CI over its test records
    fold10_dist: np.ndarray | None
    fold10_record_id: np.ndarray | None
    n_fold10_seeds: int
    n_fallback: int                          # tokens-model fallback predictions among the pooled records
    rotation_seed: int | None
    model_kwargs: str = ""
    delta: Estimate | None = None            # reference minus this model, pooled, paired
    delta_fold10: Estimate | None = None
    folds: perfold.Folds | None = None       # predictions by test fold (the primary statistic's input)
    fold_mean: Estimate | None = None        # primary: per-fold macro-AUC averaged over the tested folds
    fold_mean_dist: np.ndarray | None = None
    delta_fold_mean: Estimate | None = None  # primary Δ: reference minus this model, per fold, averaged
    fold_deltas: dict[int, float] | None = None     # per-fold Δ (seed-averaged), for its spread

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
    """The smallest seed that tested folds other than the official 10 (None when no seed did): the
    seed of the noise study's pooled rotation, and of presets rotated at one seed."""
    seeds = rotation_seeds(rows)
    return seeds[0] if seeds else None


def rotation_seeds(rows: pd.DataFrame) -> list[int]:
    """The seeds that tested every fold any seed of these rows tested beyond fold 10 (complete rotations)."""
    folds = rows["config/test_fold"].astype(int)
    tested = set(folds) - {OFFICIAL_FOLD}
    if not tested:
        return []
    return [int(s) for s in sorted(rows["seed"].unique()) if tested <= set(folds[rows["seed"] == s])]


def _one(study: Study, g: pd.DataFrame, boot: Bootstrap) -> PooledResult:
    folds = g["config/test_fold"].astype(int)
    arm = str(g["_arm"].iloc[0])
    pooled = dist = rid = None
    n_fb, rhash, seeds = 0, "", rotation_seeds(g)
    if seeds:
        parts = []
        for seed in seeds:
            r = g[g["seed"] == seed].sort_values("config/test_fold")
            if r["config/test_fold"].duplicated().any():
                raise ResultsError([f"{study.name}: {arm} has two rows for one fold at seed {seed}"])
            parts.append(pool_folds(study, r, arm))
        if any(not np.array_equal(p.record_id, parts[0].record_id) for p in parts):
            raise ResultsError([f"{study.name}: {arm}: the rotation seeds pooled different records"])
        pooled, dist = _estimate(parts[0].labels, np.stack([p.scores for p in parts]), boot)
        rid, rhash = parts[0].record_id, record_set_hash(parts[0].record_id)
        n_fb = int(g.loc[g["seed"] == seeds[0], "n_fallback_test"].sum()) if "n_fallback_test" in g else 0
    fm = fmd = fo = None
    per_fold: dict[int, float] = {}
    if seeds:
        fo = perfold.folds_of(study, g, arm)
        fm, fmd = perfold.averaged(fo, boot)
        per_fold = {int(k): float(v) for k, v in g.groupby(folds)["test/macro_auc"].mean().items()}
    f10 = g[folds == OFFICIAL_FOLD].sort_values("seed")
    fold10 = d10 = rid10 = None
    if len(f10):
        preds = [study.predictions[str(t)] for t in f10["trial_id"]]
        if any(not np.array_equal(q.record_id, preds[0].record_id) for q in preds):
            raise ResultsError([f"{study.name}: seeds of {arm} on fold 10 saw different records"])
        fold10, d10 = _estimate(preds[0].labels, np.stack([q.scores for q in preds]), boot,
                                float(f10["test/macro_auc"].mean()))
        rid10 = preds[0].record_id
    first = g.iloc[0]
    return PooledResult(
        model=arm, data=f"{first['config/dataset']}/{first['config/task']}",
        recipe=str(first.get("config/recipe", "default")), pooled=pooled, pooled_dist=dist, record_id=rid,
        n_pooled=0 if rid is None else len(rid), record_hash=rhash, per_fold=per_fold, fold10=fold10,
        fold10_dist=d10, fold10_record_id=rid10, n_fold10_seeds=len(f10), n_fallback=n_fb,
        rotation_seed=seeds[0] if seeds else None,
        model_kwargs=kwargs_text(first.get("config/model_kwargs", "{}")), folds=fo, fold_mean=fm, fold_mean_dist=fmd)


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
        if ref.folds is not None and r.folds is not None:
            got = perfold.paired(ref.folds, r.folds, boot)
            r.delta_fold_mean = got[0] if got else None
            r.fold_deltas = perfold.fold_deltas(ref.folds, r.folds)
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


def _delta_spread(r: PooledResult) -> str:
    if not r.fold_deltas:
        return DASH
    v = np.array(list(r.fold_deltas.values()))
    return f"{num(v.min(), signed=True)} to {num(v.max(), signed=True)} ({int((v > 0).sum())} of {len(v)} > 0)"


def table(res: list[PooledResult], boot: Bootstrap, preset: str, name: str, title: str, what: str) -> Table:
    """Table 1 or 2 for a rotated study: per-fold-averaged macro-AUC and paired Δ vs beatnet (primary),
    the pooled figure, the per-fold spread, and fold 10."""
    ref = REFERENCE_MODEL
    header = ["Data", "Model", "Seeds", "Macro-AUC (per-fold mean)", f"Δ vs {ref} (per-fold mean)",
              f"{ref} within {boot.margin:g}?", f"Δ vs {ref} per fold (min to max)", "Per-fold AUC mean ± SD (min–max)",
              "Pooled macro-AUC", f"Δ vs {ref} (pooled)", "Fold 10 (official split)", f"Δ vs {ref} (fold 10)",
              "Records", "Fallback"]
    rows = []
    for r in res:
        f10 = f"{est(r.fold10)}, {r.n_fold10_seeds} seed{'s' if r.n_fold10_seeds != 1 else ''}" if r.fold10 else DASH
        rows.append([r.data, r.model, r.folds.seed_text() if r.folds else DASH, est(r.fold_mean),
                     est(r.delta_fold_mean, signed=True), non_inferior(r.delta_fold_mean, boot.margin),
                     _delta_spread(r), _spread(r), est(r.pooled), est(r.delta, signed=True), f10,
                     est(r.delta_fold10, signed=True),
                     f"{r.n_pooled} (`{r.record_hash}`)" if r.n_pooled else DASH, str(r.n_fallback)])
    tested = sorted({k for r in res for k in r.per_fold})
    cut = (f" This rotation covers test folds {', '.join(map(str, tested))} only (the others were cut for time), so "
           "the records are those folds' records." if tested and len(tested) < N_FOLDS else "")
    cap = (f"{what}{cut} Fold rotation: for each k the model trains on 8 folds, selects on the fold before k "
           "(cyclically) and tests on fold k, at every seed, so every record of a tested fold has one test prediction "
           "per seed, from a model that never saw its patient (PTB-XL's strat_fold is patient-grouped). "
           "Primary statistic, macro-AUC (per-fold mean): each test fold's macro-AUC (mid-rank AUC, equal to "
           "scikit-learn's), averaged over the seeds that tested it, then over the tested folds; 95% CI from a "
           f"two-level percentile bootstrap ({boot.n_boot} resamples, numpy seed {boot.seed}): records resampled "
           "within each fold, seeds drawn with replacement. "
           f"Δ = {ref} minus the model (positive: {ref} is better), per fold and averaged, the same resamples for "
           "both, at the seeds both have on that fold (paired); a CI that excludes 0 is a difference, one that contains 0 is not evidence of a "
           f"difference either way. {ref} within {boot.margin:g}: the lower bound of the per-fold Δ's CI is "
           f"above −{boot.margin:g} (non-inferiority margin fixed in advance; --margin): only then does {ref} "
           "\"match\" that model. Δ per fold: the seed-averaged Δ of each fold, its range and how many folds "
           f"favour {ref}. Pooled macro-AUC: every record's predictions ranked together across the fold models "
           "(seeds of complete rotations averaged), shown for comparison: pooling also charges a model for score "
           "scales that move between folds. Fold 10: the official split (train 1-8, val 9, test 10), mean over "
           "seeds, CI over its test records. Records: test records and the hash of their ids (equal hashes = the "
           "same records for every model). Fallback: test records (first rotation seed) a tokens model had no "
           f"beats for, scored with the training prevalence. Preset `{preset}`.")
    return Table(name, title, cap, header, rows)


def arms_text(res: list[PooledResult]) -> str:
    """One line per arm: recipe, kwargs, rotation seed (for the README)."""
    return "; ".join(f"{r.model}: recipe {r.recipe}{f', {r.model_kwargs}' if r.model_kwargs else ''}" for r in res)


def figure(res: list[PooledResult], out, stem: str, title: str) -> list[str]:
    """Per model: each fold's test macro-AUC (dots) and the pooled macro-AUC with its 95% CI (bar)."""
    import matplotlib.pyplot as plt

    from beat_ray.report.figures import save

    shown = [r for r in res if r.pooled is not None or r.fold10 is not None]
    fig, ax = plt.subplots(figsize=(7.2, 0.55 * len(shown) + 1.9))
    labelled: set[str] = set()

    def once(text: str) -> str | None:
        if text in labelled:
            return None
        labelled.add(text)
        return text

    for i, r in enumerate(shown):
        y = len(shown) - 1 - i
        if r.per_fold:
            ax.plot(list(r.per_fold.values()), [y + 0.24] * len(r.per_fold), "o", color="0.55", ms=3.5,
                    label=once("one test fold (mean over its seeds)"))
        for e, dy, col, lab in ((r.fold_mean, 0.08, "tab:green", "per-fold mean (primary), 95% CI"),
                                (r.pooled, -0.08, "tab:blue", "pooled over the tested folds' records, 95% CI"),
                                (r.fold10, -0.24, "tab:orange", "fold 10, mean over seeds, 95% CI")):
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


RATE = re.compile(r"^(?P<model>.+) \((?P<fs>\d+) Hz\)(?P<rest>.*)$")


@dataclass
class RateGain:
    """One model's gain from the higher of two sampling rates, on the same records and folds."""

    model: str
    data: str
    low: PooledResult
    high: PooledResult
    gain: Estimate                          # high − low, per-fold mean, paired
    gain_dist: np.ndarray
    more: Estimate | None = None            # beatnet's gain − this model's, on the same resamples

    @property
    def rates(self) -> tuple[int, int]:
        return int(RATE.match(self.low.model)["fs"]), int(RATE.match(self.high.model)["fs"])


def rate_gains(res: list[PooledResult], boot: Bootstrap) -> list[RateGain]:
    """Each model's Δ(high − low rate), and beatnet's gain minus the model's: does beatnet gain more?"""
    arms: dict[tuple[str, str], dict[int, PooledResult]] = {}
    for r in res:
        m = RATE.match(r.model)
        if m and r.folds is not None:
            arms.setdefault((m["model"] + m["rest"], r.data), {})[int(m["fs"])] = r
    order = model_order(k for k, _ in arms)
    out: list[RateGain] = []
    for (model, data), by in sorted(arms.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]))):
        if len(by) < 2:
            continue
        lo, hi = min(by), max(by)
        got = perfold.paired(by[hi].folds, by[lo].folds, boot)
        if got is None:
            raise ResultsError([f"{model}: its {hi}-Hz and {lo}-Hz arms share no test fold with the same records"])
        out.append(RateGain(model, data, by[lo], by[hi], *got))
    for g in out:
        # the per-fold bootstrap draws depend only on the records and the fold, so every arm's distribution
        # shares them: the difference of two gains is paired
        ref = next((r for r in out if r.model == REFERENCE_MODEL and r.data == g.data and r.rates == g.rates), None)
        if ref is not None and g is not ref:
            g.more = Estimate(ref.gain.mean - g.gain.mean, *stats.ci(ref.gain_dist - g.gain_dist))
    return out


def rate_table(res: list[PooledResult], boot: Bootstrap, preset: str) -> Table | None:
    """Table 1c for a study at several sampling rates: each model's Δ(high − low rate), paired per fold on the
    same records, beside Table 1's Δ(beatnet − CNN) at each rate. None when the study has one rate."""
    rows = []
    for g in rate_gains(res, boot):
        lo, hi = g.rates
        rows.append([g.data, g.model, f"{lo} → {hi} Hz", est(g.low.fold_mean), est(g.high.fold_mean),
                     est(g.gain, signed=True), est(g.more, signed=True), est(g.low.delta_fold_mean, signed=True),
                     est(g.high.delta_fold_mean, signed=True),
                     f"`{g.low.record_hash}`" + ("" if g.low.record_hash == g.high.record_hash else
                                                 f" / `{g.high.record_hash}` (differ!)")])
    if not rows:
        return None
    header = ["Data", "Model", "Rates", "Macro-AUC, low rate", "Macro-AUC, high rate", "Δ high − low (per-fold mean)",
              f"{REFERENCE_MODEL}'s gain − this model's", f"Δ vs {REFERENCE_MODEL}, low rate", f"Δ vs {REFERENCE_MODEL}, high rate", "Records"]
    cap = ("The same models trained and tested at two sampling rates on exactly the same records and folds (the "
           "records that have a file at the higher rate). Macro-AUC: per-fold mean, as in Table 1. Δ high − low: "
           "the model's gain from the higher rate, paired per fold on the same records (records resampled within "
           f"each fold, seeds as the second level). {REFERENCE_MODEL}'s gain − this model's: the difference of the two "
           f"gains on the same resamples (positive: {REFERENCE_MODEL} gains more from the higher rate). "
           f"Δ vs {REFERENCE_MODEL}: Table 1's {REFERENCE_MODEL} minus the "
           f"model at each rate (positive: {REFERENCE_MODEL} better); {REFERENCE_MODEL}'s own rows give its gain. "
           f"Records: hash of the pooled test record ids at each rate (equal = the same records). Preset `{preset}`.")
    return Table("table1c_sampling_rate", "Table 1c. Sampling rate", cap, header, rows)
