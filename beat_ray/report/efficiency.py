"""Label efficiency (Table 3, Fig. 1): a paired non-inferiority test of every fraction against 100%.

Why paired: an unpaired "CI of AUC(f) reaches AUC(100%)" rule gets easier as the CI widens, so
fewer test records would make recovery *easier*. Here the statistic is the difference

    Δ(f) = AUC(f) − AUC(100%)

on the same test records and the same seeds, and its distribution comes from one bootstrap that
resamples records (the same draw counts for f and for 100%) and, where there are several seeds,
seeds as well (the same seed draw for both): a two-level (hierarchical) bootstrap, so seed
variance widens the CI instead of being averaged away. A fraction *recovers* when the lower 95%
bound of Δ(f) is above −m, a non-inferiority margin fixed before the runs (default 0.01, the
report's `--margin`). The recovery fraction is the smallest f that recovers together with every
larger fraction; its CI is the 2.5-97.5 percentile range of the same rule applied to each
resample's Δ (f recovers in a resample when its Δ > −m there).

Under a fold rotation each seed's test predictions are pooled over its test folds first (every
record predicted once, by a model that never saw its patient), so AUC(f) is the pooled macro-AUC.
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
from beat_ray.report.load import ResultsError, Study, pooled
from beat_ray.report.tables import DASH, Table, est, pct


@dataclass
class Point:
    fraction: float
    auc: Estimate                   # mean over seeds of the (pooled) macro-AUC, two-level bootstrap CI
    delta: Estimate                 # AUC(f) − AUC(100%), paired
    delta_dist: np.ndarray          # (B,)
    n_train: float                  # labelled training records (mean over the pooled trials)
    optimizer_steps: tuple[int, ...]    # distinct values over the trials (one value: an equal budget)
    best_epoch: float               # mean best-validation epoch
    epochs: int
    n_trials: int
    auc_dist: np.ndarray | None = None          # (B,) the AUC's own bootstrap distribution
    vs_reference: Estimate | None = None        # beatnet minus this model at the same fraction, paired

    def recovers(self, margin: float) -> bool:
        return bool(self.delta.lo > -margin)


@dataclass
class Curve:
    model: str
    data: str
    points: list[Point]             # ascending fraction; the last one is 100%
    seeds: tuple[int, ...]
    folds: tuple[int, ...]
    seeds_left_out: tuple[int, ...]     # seeds on other folds than the rotation seed (not pairable)
    n_records: int
    record_hash: str
    margin: float
    recovery: float                 # smallest f that recovers with every larger f (1.0: none below 100%)
    recovery_ci: tuple[float, float]
    budget: str = "matched"         # the rows' config/budget ("epochs" for rows from before issue I)


def paired_seeds(rows: pd.DataFrame) -> list[int]:
    """The seeds that tested the same folds as the first (rotation) seed; under H's rotation the extra
    seeds run on fold 10 only, so they cannot be pooled with it and are left out (the caption says so)."""
    folds = {s: frozenset(rows.loc[rows["seed"] == s, "config/test_fold"].astype(int)) for s in sorted(rows["seed"].unique())}
    first = next(iter(folds.values()))
    return [int(s) for s, f in folds.items() if f == first]


@dataclass(frozen=True)
class Condition:
    """All seeds of one (model, data, fraction), pooled per seed over its test folds."""
    record_id: np.ndarray
    labels: np.ndarray
    scores: np.ndarray              # (S, n, C), one slice per seed
    seeds: tuple[int, ...]
    folds: tuple[int, ...]
    rows: pd.DataFrame              # the rows used (the latest per seed and fold)


def _condition(study: Study, rows: pd.DataFrame, what: str) -> Condition:
    per_seed, used = [], []
    if "finished_at" in rows:                  # a rerun's row replaces the earlier one of its fold, as in pooled()
        rows = rows.sort_values(["finished_at", "trial_id"])
    rows = rows.drop_duplicates(["seed", "config/test_fold"], keep="last")
    for seed in paired_seeds(rows):
        r = rows[rows["seed"] == seed]
        per_seed.append((int(seed), pooled(study, r, what), tuple(sorted(r["config/test_fold"].astype(int).unique()))))
        used.append(r)
    seed0, p0, folds0 = per_seed[0]
    for seed, p, folds in per_seed[1:]:
        if folds != folds0 or not np.array_equal(p.record_id, p0.record_id) or p.classes != p0.classes:
            raise ResultsError([f"{study.name}: {what}: seed {seed} tested folds {folds}, seed {seed0} folds "
                                f"{folds0}; the paired bootstrap needs every seed on the same records"])
    return Condition(p0.record_id, p0.labels, np.stack([p.scores for _, p, _ in per_seed]),
                     tuple(s for s, _, _ in per_seed), folds0, pd.concat(used))


def recovery(fractions: list[float], deltas: np.ndarray, margin: float) -> np.ndarray:
    """Smallest fraction recovering together with every larger one, per column of `deltas` (F, ...).

    `fractions` ascending without 100%; `deltas` their Δ values (lower CI bounds, or one resample's Δ).
    1.0 where even the largest fraction below 100% does not recover.
    """
    d = np.asarray(deltas, float)
    ok = d > -margin                                           # (F, ...)
    out = np.ones(d.shape[1:])
    alive = np.ones(d.shape[1:], bool)
    for i in range(len(fractions) - 1, -1, -1):
        alive &= ok[i]
        out = np.where(alive, fractions[i], out)
    return out


def curves(study: Study, boot: Bootstrap) -> list[Curve]:
    """Table 3 / Fig. 1: per model and dataset/task, Δ(f) against 100% and the recovery fraction."""
    margin = boot.margin
    rows = study.rows.copy()
    if "config/test_fold" not in rows:
        rows["config/test_fold"] = 10
    out = []
    for (model, dataset, task), g in rows.groupby(["_model", "config/dataset", "config/task"], sort=True):
        what = f"{model} on {dataset}/{task}"
        fracs = sorted(float(f) for f in g["config/label_fraction"].unique())
        if not np.isclose(fracs[-1], 1.0):
            raise ResultsError([f"{study.name}: {what} has no label_fraction 1.0 rows"])
        conds = {f: _condition(study, g[np.isclose(g["config/label_fraction"].astype(float), f)], what) for f in fracs}
        full = conds[fracs[-1]]
        rid, y, s_full, seeds, folds = full.record_id, full.labels, full.scores, full.seeds, full.folds
        for f, c in conds.items():
            if c.seeds != seeds or c.folds != folds or not np.array_equal(c.record_id, rid):
                raise ResultsError([f"{study.name}: {what}: fraction {f:g} ran seeds {c.seeds} folds {c.folds}, "
                                    f"100% ran seeds {seeds} folds {folds}: Δ(f) must be paired"])
        rec_w = boot.weights(y)
        full_dist = stats.two_level(y, s_full, rec_w, seed=boot.seed)
        full_point = stats.macro_point(y, s_full)
        points = []
        for f in fracs:
            s, r = conds[f].scores, conds[f].rows
            dist = stats.two_level(y, s, rec_w, seed=boot.seed)
            point = stats.macro_point(y, s)
            dd = dist - full_dist
            points.append(Point(f, Estimate(point, *stats.ci(dist)), Estimate(point - full_point, *stats.ci(dd)), dd,
                                float(r["n_train"].mean()) if "n_train" in r else float("nan"),
                                tuple(sorted({int(v) for v in r["optimizer_steps"].dropna()})) if "optimizer_steps" in r else (),
                                float(r["best_epoch"].mean()) if "best_epoch" in r else float("nan"),
                                int(r["config/epochs"].max()) if "config/epochs" in r else 0, len(r), dist))
        below = points[:-1]
        fr = [p.fraction for p in below]
        rec = float(recovery(fr, np.array([p.delta.lo for p in below])[:, None], margin)[0]) if below else 1.0
        per_b = recovery(fr, np.stack([p.delta_dist for p in below]), margin) if below else np.ones(boot.n_boot)
        ci = (float(np.quantile(per_b, 0.025, method="lower")), float(np.quantile(per_b, 0.975, method="higher")))
        left = tuple(int(s) for s in sorted(g["seed"].unique()) if int(s) not in seeds)
        used = pd.concat([c.rows for c in conds.values()])
        budget = "/".join(sorted(set(used["config/budget"].fillna("epochs").astype(str)))) \
            if "config/budget" in used else "epochs"
        out.append(Curve(str(model), f"{dataset}/{task}", points, seeds, folds, left, len(rid),
                         record_set_hash(rid), margin, rec, ci, budget))
    _pair_with_reference(out)
    order = model_order(c.model for c in out)
    return sorted(out, key=lambda c: (c.data, order.index(c.model)))


def _pair_with_reference(cs: list[Curve]) -> None:
    """beatnet − model at each fraction, on the same records and seeds and the same resamples."""
    for c in cs:
        ref = reference_of(c, cs)
        if ref is None or ref is c or ref.record_hash != c.record_hash or ref.seeds != c.seeds:
            continue
        by = {p.fraction: p for p in ref.points}
        for p in c.points:
            q = by.get(p.fraction)
            if q is not None:
                p.vs_reference = Estimate(q.auc.mean - p.auc.mean, *stats.ci(q.auc_dist - p.auc_dist))


def _steps(p: Point) -> str:
    return "/".join(map(str, p.optimizer_steps)) if p.optimizer_steps else DASH


def recovery_text(c: Curve) -> str:
    lo, hi = c.recovery_ci
    return f"{pct(c.recovery) if c.recovery < 1 else '100% (none below)'} [{pct(lo)}, {pct(hi)}]"


def table(cs: list[Curve], boot: Bootstrap, preset: str) -> Table:
    margin = boot.margin
    header = ["Data", "Model", "Labels", "Train records", "Optimizer steps", "Best epoch", "Macro-AUC",
              "Δ vs 100%", f"Δ > −{margin:g}?", "Recovery fraction [95% CI]", f"{REFERENCE_MODEL} − model"]
    rows = []
    for c in cs:
        for p in c.points:
            last = p is c.points[-1]
            rows.append([c.data, c.model, pct(p.fraction), f"{p.n_train:.0f}" if np.isfinite(p.n_train) else DASH,
                         _steps(p), f"{p.best_epoch:.1f} of {p.epochs}" if p.epochs else DASH, est(p.auc),
                         DASH if last else est(p.delta, signed=True),
                         DASH if last else ("yes" if p.recovers(margin) else "no"),
                         recovery_text(c) if last else "",
                         est(p.vs_reference, signed=True) if p.vs_reference else DASH])
    c0 = cs[0] if cs else None
    seeds = "; ".join(f"{c.model}: {len(c.seeds)} seed(s), test folds {','.join(map(str, c.folds))}, "
                      f"{c.n_records} records (`{c.record_hash}`)"
                      + (f", seeds {','.join(map(str, c.seeds_left_out))} left out (other folds)" if c.seeds_left_out else "")
                      for c in cs)
    unmatched = sorted({c.model for c in cs if c.budget != "matched"})
    warn = (f"NOT a matched budget for {', '.join(unmatched)}: these rows trained one pass over the labelled subset "
            "per epoch (budget=epochs, from before issue I), so their small fractions took fewer optimizer steps and "
            "the table measures labels and training length together. " if unmatched else "")
    cap = (warn + "Label efficiency at a matched budget: every fraction trains for the optimizer steps of the 100% run "
           "(column Optimizer steps: equal across a model's fractions unless capped at 20 passes of the subset; one "
           "value per test fold under a rotation, whose training splits differ in size), "
           "selecting its epoch on the full-size validation fold. Macro-AUC: mean over seeds of the macro-AUC over "
           "the test records (pooled over the test folds under a rotation). Δ vs 100% = AUC(f) − AUC(100%) on the "
           "same records and seeds (paired); 95% CI from a two-level bootstrap, records and seeds resampled "
           f"together ({boot.n_boot} resamples, numpy seed {boot.seed}). Δ > −{margin:g}: the lower CI bound is above "
           f"the non-inferiority margin m = {margin:g} (fixed before the runs; the report's --margin), i.e. f "
           "recovers full-data AUC. Recovery fraction: the smallest f that recovers together with every larger f "
           "(100% when none below does); its CI applies the same rule to each resample's Δ. "
           f"{REFERENCE_MODEL} − model: the AUC difference at the same fraction, paired over the same records, seeds "
           "and resamples (negative: beatnet is worse). "
           f"{seeds}. Preset `{preset}`." if c0 else f"No data-efficiency rows. Preset `{preset}`.")
    return Table("table3_label_efficiency", "Table 3. Label efficiency (paired Δ against 100%)", cap, header, rows)


def figure(cs: list[Curve], colors: dict, out) -> list[str]:
    """Fig. 1: left, macro-AUC per fraction; right, Δ(f) with its CI, the margin and the recovery star."""
    import matplotlib.pyplot as plt

    from beat_ray.report.figures import save

    datas = sorted({c.data for c in cs})
    fig, axes = plt.subplots(len(datas), 2, figsize=(10.4, 3.8 * len(datas)), squeeze=False)
    for (ax, dx), data in zip(axes, datas):
        mine = [c for c in cs if c.data == data]
        fracs = sorted({p.fraction for c in mine for p in c.points})
        for c in mine:
            col = colors[c.model]
            f = np.array([p.fraction for p in c.points])
            ax.errorbar(f, [p.auc.mean for p in c.points],
                        yerr=[[p.auc.mean - p.auc.lo for p in c.points], [p.auc.hi - p.auc.mean for p in c.points]],
                        fmt="o-", color=col, ms=3.5, lw=1.3, capsize=2.5, label=c.model)
            d = [p.delta for p in c.points]
            dx.fill_between(f, [e.lo for e in d], [e.hi for e in d], color=col, alpha=0.18, lw=0)
            dx.plot(f, [e.mean for e in d], "o-", color=col, ms=3.5, lw=1.3, label=c.model)
            k = int(np.argmin(np.abs(f - c.recovery)))
            dx.plot(f[k], d[k].mean, "*", color=col, ms=12, mec="k", mew=0.6, zorder=5)
        margin = mine[0].margin
        dx.axhline(0, color="0.3", lw=0.8)
        dx.axhline(-margin, color="0.3", lw=0.9, ls="--", label=f"margin −{margin:g}")
        for a, ylabel in ((ax, "test macro-AUC (95% CI)"), (dx, "Δ(f) = AUC(f) − AUC(100%), paired 95% CI")):
            a.set_xscale("log")
            a.set_xticks(fracs, [pct(x) for x in fracs])
            a.minorticks_off()
            a.set_xlabel("labelled fraction of the training split (log scale)")
            a.set_ylabel(ylabel)
        ax.set_title(f"Data efficiency, matched budget ({data})")
        dx.set_title(f"Paired difference to 100% (★ recovery fraction, margin {margin:g})", fontsize=9)
        ax.legend(loc="lower right", frameon=False)
        dx.legend(loc="lower right", frameon=False, fontsize=8)
    fig.tight_layout()
    return save(fig, out, "fig1_data_efficiency")
