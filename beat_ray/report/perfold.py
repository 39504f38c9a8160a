"""The primary statistic of every rotated table: macro-AUC computed within each test fold, then averaged.

Why not pool: pooling the ten fold models' predictions ranks scores of different models against each
other, so a model whose score scale moves between folds is penalised even when it ranks every fold's
records as well as another model (Forman and Scholz 2010; Airola et al. 2011: pooled AUC under
cross-validation is pessimistically biased, the per-fold average is the sound default). The pooled
figure stays beside it in the tables, labelled as pooled.

Per fold k: the macro-AUC of each seed's model on fold k's test records, averaged over the seeds that
tested fold k. The statistic is the mean over the tested folds. Its CI is a two-level bootstrap:
records are resampled within each fold (each fold its own stream of draws, shared by every model
tested on the same records, so differences are paired), and seeds are drawn with replacement as the
second level, one draw shared by every fold (a seed is one replicate of the whole rotation).
A paired Δ is the fold-averaged difference, over the folds both arms tested on the same records and at
the seeds both have there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from beat_ray.report import stats
from beat_ray.report.analysis import Bootstrap, Estimate
from beat_ray.report.load import ResultsError, Study


@dataclass
class Fold:
    """One test fold of one arm: its records and every seed's scores on them."""

    record_id: np.ndarray                   # (n,) sorted
    labels: np.ndarray                      # (n, C)
    scores: np.ndarray                      # (S, n, C), seeds ascending
    seeds: tuple[int, ...]
    noise: dict[str, np.ndarray] | None = None      # "kind:snr" -> (S, n, C)


@dataclass
class Folds:
    """An arm's test predictions by test fold (the last finished row per fold and seed)."""

    by_fold: dict[int, Fold] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds that tested every fold (the seeds of a complete rotation)."""
        sets = [set(f.seeds) for f in self.by_fold.values()]
        return tuple(sorted(set.intersection(*sets))) if sets else ()

    def seed_text(self) -> str:
        """'3 (0-2)' when every fold has the same seeds, else the range per fold count."""
        counts = sorted({len(f.seeds) for f in self.by_fold.values()})
        if len(counts) == 1:
            s = self.seeds
            return f"{counts[0]} ({s[0]}–{s[-1]})" if len(s) > 1 else f"1 ({s[0]})"
        return f"{counts[0]}–{counts[-1]} per fold"


def folds_of(study: Study, rows: pd.DataFrame, what: str) -> Folds:
    """Group an arm's rows by test fold; seeds of one fold must have tested the same records."""
    if "finished_at" in rows:
        rows = rows.sort_values(["finished_at", "trial_id"])
    rows = rows.drop_duplicates(["config/test_fold", "seed"], keep="last")
    out = Folds()
    for k, g in rows.groupby(rows["config/test_fold"].astype(int), sort=True):
        g = g.sort_values("seed")
        preds = [study.predictions[str(t)] for t in g["trial_id"]]
        if any(not np.array_equal(p.record_id, preds[0].record_id) for p in preds):
            raise ResultsError([f"{study.name}: {what}: seeds of test fold {k} saw different records"])
        noise = None
        if all(p.noise is not None for p in preds) and len({tuple(p.noise) for p in preds}) == 1:
            noise = {s: np.stack([p.noise[s] for p in preds]) for s in preds[0].noise}
        out.by_fold[int(k)] = Fold(preds[0].record_id, preds[0].labels, np.stack([p.scores for p in preds]),
                                   tuple(int(s) for s in g["seed"]), noise)
    return out


def _scores(f: Fold, noise: str | None) -> np.ndarray:
    if noise is None:
        return f.scores
    if f.noise is None or noise not in f.noise:
        raise ResultsError([f"a fold's predictions lack the noise scores {noise!r} (rerun the study)"])
    return f.noise[noise]


def fold_auc(folds: Folds, boot: Bootstrap, noise: str | None = None) -> dict[int, tuple[float, np.ndarray]]:
    """Test fold -> (macro-AUC averaged over its seeds, (B,) two-level bootstrap distribution)."""
    out = {}
    for k, f in folds.by_fold.items():
        s = _scores(f, noise)
        w = boot.weights(f.labels, stream=k)
        out[k] = (stats.macro_point(f.labels, s), stats.two_level(f.labels, s, w, seed=boot.seed))
    return out


def averaged(folds: Folds, boot: Bootstrap, noise: str | None = None) -> tuple[Estimate, np.ndarray]:
    """The per-fold-averaged macro-AUC with its CI, and its (B,) bootstrap distribution."""
    per = fold_auc(folds, boot, noise)
    point = float(np.mean([p for p, _ in per.values()]))
    dist = np.mean([d for _, d in per.values()], axis=0)
    return Estimate(point, *stats.ci(dist)), dist


def _on_seeds(f: Fold, seeds: tuple[int, ...]) -> Fold:
    idx = [f.seeds.index(s) for s in seeds]
    noise = {k: v[idx] for k, v in f.noise.items()} if f.noise is not None else None
    return Fold(f.record_id, f.labels, f.scores[idx], seeds, noise)


def common(ref: Folds, other: Folds) -> tuple[Folds, Folds]:
    """The folds both arms tested on the same records, each at the seeds both have there, so a Δ is paired
    by seed as by record: a seed's luck (the same initial weights on every fold) then cancels instead of
    being compared with another seed's. A fold whose arms share no seed keeps all of each (paired by record
    only)."""
    a, b = Folds(), Folds()
    for k in sorted(ref.by_fold.keys() & other.by_fold.keys()):
        fa, fb = ref.by_fold[k], other.by_fold[k]
        if not np.array_equal(fa.record_id, fb.record_id):
            continue
        both = tuple(sorted(set(fa.seeds) & set(fb.seeds)))
        if both and (both != fa.seeds or both != fb.seeds):
            fa, fb = _on_seeds(fa, both), _on_seeds(fb, both)
        a.by_fold[k], b.by_fold[k] = fa, fb
    return a, b


def paired(ref: Folds, other: Folds, boot: Bootstrap, noise: str | None = None,
           ref_noise: str | None = None) -> tuple[Estimate, np.ndarray] | None:
    """Δ = ref − other, averaged over the folds both tested on the same records, at the seeds both have
    (`common`); None when no fold is shared. `ref_noise`/`noise` pick noisy scores (e.g. a drop: pass the
    same spec to both and subtract the clean Δ)."""
    ref, other = common(ref, other)
    if not ref.by_fold:
        return None
    a, b = fold_auc(ref, boot, ref_noise), fold_auc(other, boot, noise)
    point = float(np.mean([a[k][0] - b[k][0] for k in a]))
    dist = np.mean([a[k][1] - b[k][1] for k in a], axis=0)
    return Estimate(point, *stats.ci(dist)), dist


def fold_deltas(ref: Folds, other: Folds) -> dict[int, float]:
    """Per test fold: ref − other macro-AUC (averaged over the seeds both have), for the spread of Δ."""
    ref, other = common(ref, other)
    return {k: stats.macro_point(a.labels, a.scores) - stats.macro_point(b.labels, b.scores)
            for k, a, b in ((k, ref.by_fold[k], other.by_fold[k]) for k in ref.by_fold)}
