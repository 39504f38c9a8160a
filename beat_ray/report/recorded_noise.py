"""Table 5b: macro-AUC on the records PTB-XL's annotators flag as noisy against the clean ones.

Report-only: the benchmark's fold rotation already gives every record one test prediction per model
and seed, from a model that never saw its patient. `ptbxl_database.csv` annotates recording noise in
four columns (baseline_drift, static_noise, burst_noise, electrodes_problems). Per model:

    Δ = AUC(noisy) − AUC(clean)          (negative: the model does worse on the noisy records)
    ΔΔ = Δ(beatnet) − Δ(model)           (positive: beatnet loses less on recorded noise)

CIs: records resampled within each group (noisy, clean) and seeds as the second level, the same draws
for every model, so ΔΔ is paired. Groups are pooled over the fold models: the within-fold noisy groups
(about 24 records) are too small for a per-fold AUC; the calibration cost of pooling is the same on
both sides of Δ and cancels to first order. The groups' class mix differs (e.g. more NORM among the
noisy), so Δ is also given with the clean records drawn to the noisy group's mix of label sets
(importance-weighted bootstrap), which removes what the class mix alone explains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from beat_ray.report import stats
from beat_ray.report.analysis import REFERENCE_MODEL, Bootstrap, Estimate, model_order, reference_of
from beat_ray.report.load import ResultsError, Study
from beat_ray.report.load import pooled as pool_folds
from beat_ray.report.tables import DASH, Table, est

COLUMNS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")
MIN_RECORDS = 20            # a single column is reported only with at least this many annotated test records
ANY = "any of the four"


def annotations(database: Path) -> pd.DataFrame:
    """Boolean noise flags per ecg_id (str), one column each plus `any`, from ptbxl_database.csv."""
    db = pd.read_csv(database, usecols=["ecg_id", *COLUMNS])
    flags = db[list(COLUMNS)].apply(lambda c: c.notna() & (c.astype(str).str.strip(" ,") != ""))
    flags[ANY] = flags.any(axis=1)
    flags.index = db["ecg_id"].astype(str)
    return flags


@dataclass
class Group:
    """One noise group of one model: AUCs and Δ with their bootstrap distributions."""

    name: str
    n_noisy: int
    n_clean: int
    noisy: Estimate
    clean: Estimate
    delta: Estimate
    delta_dist: np.ndarray
    delta_mix: Estimate                     # the clean records drawn to the noisy group's class mix
    delta_mix_dist: np.ndarray
    vs_ref: Estimate | None = None          # Δ(beatnet) − Δ(model), paired
    vs_ref_mix: Estimate | None = None


@dataclass
class Arm:
    model: str
    data: str
    seeds: int
    groups: list[Group]


def _mix_weights(labels: np.ndarray, noisy: np.ndarray, clean: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(B, n_clean) draw counts of the clean records, drawn with probability ∝ p_noisy(label set) /
    p_clean(label set), so each resample has the noisy group's mix of label sets (the sets the clean
    group lacks cannot be matched; their share is small and left out)."""
    keys = np.array(["".join(map(str, r)) for r in labels.astype(int)])
    pn = pd.Series(keys[noisy]).value_counts(normalize=True)
    pc = pd.Series(keys[clean]).value_counts(normalize=True)
    w = np.array([pn.get(k, 0.0) / pc[k] for k in keys[clean]])
    p = w / w.sum()
    rng = np.random.default_rng([seed, 5])
    idx = rng.choice(len(p), size=(n_boot, len(p)), p=p)
    flat = (idx + np.arange(n_boot)[:, None] * len(p)).ravel()
    return np.bincount(flat, minlength=n_boot * len(p)).reshape(n_boot, len(p))


def _dist(labels: np.ndarray, scores: np.ndarray, w: np.ndarray, boot: Bootstrap) -> np.ndarray:
    return stats.two_level(labels, scores, w, seed=boot.seed)


def _group(name: str, labels, scores, noisy, clean, boot: Bootstrap) -> Group:
    yn, yc = labels[noisy], labels[clean]
    sn, sc = scores[:, noisy], scores[:, clean]
    dn = _dist(yn, sn, boot.weights(yn, stream=101), boot)
    dc = _dist(yc, sc, boot.weights(yc, stream=102), boot)
    dm = _dist(yc, sc, _mix_weights(labels, noisy, clean, boot.n_boot, boot.seed), boot)
    pn, pc = stats.macro_point(yn, sn), stats.macro_point(yc, sc)
    d, d_mix = dn - dc, dn - dm
    return Group(name, int(noisy.sum()), int(clean.sum()), Estimate(pn, *stats.ci(dn)), Estimate(pc, *stats.ci(dc)),
                 Estimate(pn - pc, *stats.ci(d)), d, Estimate(float(np.nanmean(d_mix)), *stats.ci(d_mix)), d_mix)


def analyse(study: Study, flags: pd.DataFrame, boot: Bootstrap) -> list[Arm]:
    """Every rotated default-recipe arm of a benchmark study, grouped by PTB-XL's noise annotations."""
    rows = study.rows
    if "config/recipe" in rows:
        rows = rows[rows["config/recipe"] == "default"]
    out, ids = [], None
    for model, g in rows.groupby("_model", sort=True):
        folds = g["config/test_fold"].astype(int)
        tested = set(folds)
        seeds = [s for s in sorted(g["seed"].unique()) if tested <= set(folds[g["seed"] == s])]
        if len(tested) < 2 or not seeds:
            continue                         # not a rotation: too few records to group
        parts = [pool_folds(study, g[g["seed"] == s], str(model)) for s in seeds]
        rid = parts[0].record_id
        if ids is not None and not np.array_equal(ids, rid):
            raise ResultsError([f"{study.name}: {model} was tested on other records than {out[0].model}"])
        ids = rid
        missing = sorted(set(rid) - set(flags.index))
        if missing:
            raise ResultsError([f"{study.name}: {len(missing)} test records lack a row in ptbxl_database.csv "
                                f"(e.g. {missing[:3]})"])
        f = flags.loc[rid]
        labels, scores = parts[0].labels, np.stack([p.scores for p in parts])
        clean = ~f[ANY].to_numpy()
        groups = [_group(col, labels, scores, f[col].to_numpy(), clean, boot)
                  for col in (ANY, *COLUMNS) if col == ANY or f[col].sum() >= MIN_RECORDS]
        out.append(Arm(str(model), f"{g['config/dataset'].iloc[0]}/{g['config/task'].iloc[0]}", len(seeds), groups))
    for a in out:
        ref = reference_of(a, out)
        if ref is None or a is ref:
            continue
        for g, r in zip(a.groups, ref.groups):
            g.vs_ref = Estimate(r.delta.mean - g.delta.mean, *stats.ci(r.delta_dist - g.delta_dist))
            g.vs_ref_mix = Estimate(r.delta_mix.mean - g.delta_mix.mean, *stats.ci(r.delta_mix_dist - g.delta_mix_dist))
    order = model_order(a.model for a in out)
    return sorted(out, key=lambda a: order.index(a.model))


def table(arms: list[Arm], boot: Bootstrap, preset: str) -> Table:
    header = ["Model", "Seeds", "Noise annotation", "Records (noisy / clean)", "AUC noisy", "AUC clean",
              "Δ = noisy − clean", "Δ, clean at the noisy class mix", f"Δ({REFERENCE_MODEL}) − Δ(model)",
              f"Δ({REFERENCE_MODEL}) − Δ(model), class mix"]
    rows = [[a.model, str(a.seeds), g.name, f"{g.n_noisy} / {g.n_clean}", est(g.noisy), est(g.clean),
             est(g.delta, True), est(g.delta_mix, True), est(g.vs_ref, True) if g.vs_ref else DASH,
             est(g.vs_ref_mix, True) if g.vs_ref_mix else DASH] for a in arms for g in a.groups]
    cap = ("Macro-AUC on the test records PTB-XL's annotators flag with recording noise (ptbxl_database.csv: "
           f"{', '.join(COLUMNS)}; 'any' = at least one; a single column only with at least {MIN_RECORDS} records) "
           "against the records flagged with none. The models are the benchmark's fold-rotation models (trained on "
           "all records, noisy ones included); predictions pooled over the test folds, seeds of complete rotations "
           "averaged. Δ = AUC(noisy) − AUC(clean): negative when a model does worse on recorded noise. "
           f"Δ({REFERENCE_MODEL}) − Δ(model): positive when {REFERENCE_MODEL} loses less. Class mix: the clean "
           "records drawn with probability proportional to the noisy group's share of their label set over the "
           "clean group's (an importance-weighted bootstrap; point = mean of the draws), so the class mix alone "
           f"cannot make Δ. 95% CIs: records resampled within each group, seeds as the second level ({boot.n_boot} "
           f"resamples, numpy seed {boot.seed}), the same draws for every model (paired). Preset `{preset}`.")
    return Table("table5b_recorded_noise", "Table 5b. Recorded noise (PTB-XL annotations)", cap, header, rows)


def verdict(arms: list[Arm]) -> list[str]:
    """One line per CNN on the 'any' group: does beatnet lose less AUC on recorded noise?"""
    out = []
    for a in arms:
        g = next((g for g in a.groups if g.name == ANY), None)
        if g is None or g.vs_ref is None:
            continue
        word = ("less" if g.vs_ref.lo > 0 else "more" if g.vs_ref.hi < 0 else "no more and no less (CI covers 0)")
        out.append(f"recorded noise, beatnet vs {a.model}: beatnet loses {word} AUC on the {g.n_noisy} noisy records "
                   f"(Δ(beatnet) − Δ(model) {est(g.vs_ref, True)}; at the noisy class mix {est(g.vs_ref_mix, True)})")
    return out
