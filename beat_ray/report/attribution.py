"""Table 6 and Fig. 3: class x lead attribution, and the lead-II share of rhythm classes vs the rest.

Input: the `lead_attribution` study, whose trials store integrated-gradient lead shares per test
record and class (`beat_ray/train/attribution.py`). For class c and lead l the share is the mean
over c's positive test records (pooled over test folds under a rotation) of that record's share
on l, averaged over seeds; a group's lead-II share is the mean over its classes. The rhythm-minus-
rest difference is paired: one bootstrap resample of records (and of seeds, where there are
several) is applied to both groups, since both come from the same model and records.

Classes with fewer than MIN_POSITIVES positive test records (or half the test set, where that is
smaller) are left out: a share from two records says nothing. BEAT-Net's global lead attention is summarised the same way for comparison, but it
is one weight vector per record, identical for every class by construction: a rhythm/rest
difference there can only come from which records carry which labels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from beat_ray.data.leads import LEADS
from beat_ray.report import stats
from beat_ray.report.analysis import (
    ATTENTION_LEAD,
    Bootstrap,
    Estimate,
    is_rhythm_class,
    model_order,
)
from beat_ray.report.load import ResultsError, Study, pooled
from beat_ray.report.tables import DASH, Table, est, seeds_text

MIN_POSITIVES = 10
UNIFORM = 1.0 / len(LEADS)


@dataclass
class Attribution:
    model: str
    data: str                        # "<dataset>/<task>", plus the synth control, e.g. "(atrial_lead=II)"
    n_seeds: int
    n_records: int
    classes: list[str]               # kept classes (>= MIN_POSITIVES positives)
    rhythm: list[str]
    heatmap: np.ndarray              # (C, 12) mean share per kept class
    lead_ci: np.ndarray              # (C, 12, 2) 95% CI of each share
    shares: dict[str, Estimate]      # lead-II share: "rhythm", "non-rhythm", "difference"
    attention: dict[str, Estimate]   # the same from BEAT-Net's global lead attention ({} for other models)
    steps: int = 0                   # integrated-gradient steps of the trials
    auc: dict[str, float] | None = None     # pooled test macro-AUC over "rhythm" / "non-rhythm" kept classes

    def top(self, cls: str) -> tuple[str, Estimate]:
        """The lead with the largest share for `cls`, with its CI."""
        i = self.classes.index(cls)
        k = int(np.argmax(self.heatmap[i]))
        return LEADS[k], Estimate(float(self.heatmap[i, k]), *map(float, self.lead_ci[i, k]))


def _variant(rows: pd.DataFrame) -> str:
    if "config/synth" not in rows:
        return ""
    kw = json.loads(rows["config/synth"].iloc[0] or "{}")
    return "".join(f" ({k}={v})" for k, v in sorted(kw.items()))


def class_lead_share(labels: np.ndarray, shares: np.ndarray, rec_w: np.ndarray, seed_w: np.ndarray) -> np.ndarray:
    """(B, C, 12): per resample, the mean share of each lead over each class's drawn positives.

    labels (n, C), shares (S, n, C, 12) with NaN off the positives, rec_w (B, n), seed_w (B, S).
    """
    y = np.asarray(labels, np.float64)
    a = np.nan_to_num(np.asarray(shares, np.float64)) * y[None, :, :, None]
    den = rec_w @ y                                                              # (B, C)
    num = np.einsum("bn,snck->sbck", rec_w.astype(np.float64), a)               # (S, B, C, 12)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = num / np.where(den > 0, den, np.nan)[None, :, :, None]
    return np.einsum("bs,sbck->bck", seed_w, per_seed) / seed_w.sum(1)[:, None, None]


def _group_shares(dist: np.ndarray, point: np.ndarray, rhythm: list[int], other: list[int],
                  lead: int) -> dict[str, Estimate]:
    if not rhythm or not other:
        return {}
    out = {}
    d_r, d_o = stats._nanmean(dist[:, rhythm, lead], 1), stats._nanmean(dist[:, other, lead], 1)
    p_r, p_o = float(np.mean(point[rhythm, lead])), float(np.mean(point[other, lead]))
    out["rhythm"], out["non-rhythm"] = Estimate(p_r, *stats.ci(d_r)), Estimate(p_o, *stats.ci(d_o))
    out["difference"] = Estimate(p_r - p_o, *stats.ci(d_r - d_o))
    return out


def _one(study: Study, g: pd.DataFrame, boot: Bootstrap, what: str) -> Attribution:
    seeds = sorted(g["seed"].unique())
    preds = [pooled(study, g[g["seed"] == s], what) for s in seeds]
    if any(not np.array_equal(p.record_id, preds[0].record_id) for p in preds):
        raise ResultsError([f"{study.name}: {what}: seeds were tested on different records"])
    if any(p.lead_attribution is None for p in preds):
        raise ResultsError([f"{study.name}: {what}: a trial stored no lead_attribution"])
    y, classes = preds[0].labels, list(preds[0].classes)
    keep = [i for i in range(len(classes)) if y[:, i].sum() >= min(MIN_POSITIVES, len(y) // 2)]
    y = y[:, keep]
    kept = [classes[i] for i in keep]
    rec_w, seed_w = boot.weights(y), boot.seeds(len(seeds))
    unit_r, unit_s = np.ones((1, len(y))), np.ones((1, len(seeds)))
    attr = np.stack([p.lead_attribution[:, keep] for p in preds])
    dist = class_lead_share(y, attr, rec_w, seed_w)
    point = class_lead_share(y, attr, unit_r, unit_s)[0]
    lo_hi = np.stack([np.nanpercentile(dist, 2.5, axis=0), np.nanpercentile(dist, 97.5, axis=0)], -1)
    rhythm = [i for i, c in enumerate(kept) if is_rhythm_class(c)]
    other = [i for i, c in enumerate(kept) if not is_rhythm_class(c)]
    lead = LEADS.index(ATTENTION_LEAD)
    att_shares: dict[str, Estimate] = {}
    if all(p.lead_attention is not None for p in preds):
        # the same summary of the class-independent attention: every class gets the record's weights
        att = np.stack([np.repeat(p.lead_attention[:, None, :], len(keep), 1) for p in preds])
        att_shares = _group_shares(class_lead_share(y, att, rec_w, seed_w), class_lead_share(y, att, unit_r, unit_s)[0],
                                   rhythm, other, lead)
    scores = np.stack([p.scores[:, keep] for p in preds])
    auc = {name: stats.macro_point(y, scores, cols) for name, cols in (("rhythm", rhythm), ("non-rhythm", other)) if cols}
    first = g.iloc[0]
    return Attribution(str(first["_model"]), f"{first['config/dataset']}/{first['config/task']}{_variant(g)}",
                       len(seeds), len(y), kept, [kept[i] for i in rhythm], point, lo_hi,
                       _group_shares(dist, point, rhythm, other, lead), att_shares,
                       int(g["config/attribution_steps"].max()) if "config/attribution_steps" in g else 0, auc)


def results(study: Study, boot: Bootstrap) -> list[Attribution]:
    rows = study.rows.copy()
    if "config/synth" not in rows:
        rows["config/synth"] = "{}"
    out = [_one(study, g, boot, f"{k[0]} on {k[1]}/{k[2]} {k[3]}")
           for k, g in rows.groupby(["_model", "config/dataset", "config/task", "config/synth"], sort=True)]
    order = model_order(r.model for r in out)
    return sorted(out, key=lambda r: (r.data, order.index(r.model)))


def _tops(r: Attribution) -> str:
    parts = []
    for c in r.rhythm:
        lead, e = r.top(c)
        parts.append(f"{c}: {lead} {est(e)}")
    return "; ".join(parts) or DASH


def table(res: list[Attribution], boot: Bootstrap, preset: str) -> Table:
    lead = ATTENTION_LEAD
    header = ["Data", "Model", "Records", "AUC rhythm / other", f"Lead-{lead} share, rhythm", f"Lead-{lead} share, other",
              "Δ rhythm − other", "Top lead per rhythm class", f"Global attention Δ (lead {lead})"]
    rows = []
    for r in res:
        s = r.shares
        auc = " / ".join(f"{r.auc[k]:.3f}" if k in (r.auc or {}) else DASH for k in ("rhythm", "non-rhythm"))
        rows.append([r.data, r.model, f"{r.n_records}", auc, est(s.get("rhythm")), est(s.get("non-rhythm")),
                     est(s.get("difference"), signed=True), _tops(r),
                     est(r.attention.get("difference"), signed=True) if r.attention else DASH])
    steps = "/".join(str(s) for s in sorted({r.steps for r in res})) or "?"
    cap = (f"Class-conditional lead attribution: integrated gradients ({steps} steps, all-zero baseline = a flat lead) "
           "of each class's logit with respect to the lead inputs (BEAT-Net's token windows, the CNN's signal), "
           "L1 mass per lead over beats and samples, as a share of the 12 leads (uniform = 1/12 = "
           f"{UNIFORM:.3f}). Per class: mean over its positive test records "
           f"({seeds_text([r.n_seeds for r in res])}; pooled over test folds under a rotation); classes with "
           f"< {MIN_POSITIVES} positive test records (or half the records, if fewer) are left out. Group share: mean over its classes; "
           "Δ rhythm − other is paired (the same resample of records and seeds for both groups); "
           f"{boot.n_boot} resamples, numpy seed {boot.seed}. Rhythm classes: synth's rhythm group and the "
           "real datasets' rhythm statements (report.analysis.REAL_RHYTHM_CLASSES). Positive controls: "
           "synth task rhythm with atrial activity (P waves, AF f-waves) in one lead only (atrial_lead) and "
           "AF's RR regular, so AFIB must rank that lead first. Global attention Δ: BEAT-Net's learned-query "
           "lead attention summarised the same way; it is one weight vector per record, the same for every "
           "class, so it cannot say which lead a class's decision uses. AUC rhythm / other: the pooled test "
           "macro-AUC over the kept rhythm and other classes, so an attribution of a class the model did not "
           "learn can be recognised as such. "
           f"Preset `{preset}`.")
    return Table("table6_lead_ii_share", "Table 6. Lead attribution (lead II, rhythm vs other classes)", cap,
                 header, rows)


def figure(res: list[Attribution], out) -> list[str]:
    """Fig. 3: one class x lead heatmap per (data, model), and the lead-II shares with their CIs."""
    import matplotlib.pyplot as plt

    from beat_ray.report.figures import save

    n = len(res)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.3 * n + 3.4, 0.22 * max(len(r.classes) for r in res) + 2.6),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * n + [1.1]})
    vmax = max(float(np.nanmax(r.heatmap)) for r in res)
    for ax, r in zip(axes[0], res):
        im = ax.imshow(r.heatmap, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(LEADS)), LEADS, fontsize=6.5, rotation=90)
        ax.set_yticks(range(len(r.classes)),
                      [f"{c} *" if c in r.rhythm else c for c in r.classes], fontsize=6.5)
        ax.set_title(f"{r.model}\n{r.data}", fontsize=7.5)
    fig.colorbar(im, ax=axes[0][n - 1], fraction=0.06, pad=0.03, label="attribution share")
    bx = axes[0][n]
    for i, r in enumerate(res):
        for j, (g, col) in enumerate((("rhythm", "tab:red"), ("non-rhythm", "tab:blue"))):
            e = r.shares.get(g)
            if e is not None:
                bx.errorbar([e.mean], [i + 0.18 * (1 - 2 * j)], xerr=[[e.mean - e.lo], [e.hi - e.mean]], fmt="o",
                            color=col, ms=4, capsize=2.5, label=g if i == 0 else None)
    bx.axvline(UNIFORM, color="0.4", ls=":", lw=1)
    bx.set_yticks(range(n), [f"{r.model}\n{r.data}" for r in res], fontsize=6.5)
    bx.set_ylim(n - 0.5, -0.5)
    bx.set_xlabel(f"lead-{ATTENTION_LEAD} share (95% CI)")
    bx.set_title(f"Lead {ATTENTION_LEAD}: rhythm (*) vs other classes\ndotted: uniform 1/12", fontsize=8)
    bx.legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return save(fig, out, "fig3_interpretability")
