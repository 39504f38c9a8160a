"""Table 5 and Fig. 2: test macro-AUC under electrode noise, every model paired with BEAT-Net (issue J).

Each trial stores its per-record scores under every noise spec (`noise_scores` in its predictions file),
and every model saw the same noisy records (one realisation per record and type, seeded by data_seed).
So at each (type, SNR) the difference to BEAT-Net is paired: the same bootstrap resample of records is
applied to both models, and seeds are averaged inside each resample. Two differences are reported:
  Δ level       AUC(beatnet) − AUC(model) under the noise;
  Δ robustness  (AUC(beatnet, noisy) − AUC(beatnet, clean)) − (AUC(model, noisy) − AUC(model, clean)):
                positive when BEAT-Net loses less AUC to the noise than the model does. The paper's
                "substantially improving robustness" is a claim about this one.
Under a fold rotation each AUC is computed within each test fold and averaged over folds (perfold.py,
records resampled within folds, seeds as the second level; the drop is paired fold by fold, and a Δ
between arms with different seeds uses the seeds both have); otherwise the seeds of one test fold are stacked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from beat_ray.report import perfold, stats
from beat_ray.report.analysis import Bootstrap, Estimate, model_order, reference_of
from beat_ray.report.load import AUC_TOLERANCE, ResultsError, Study
from beat_ray.report.rotation import rows_rotated
from beat_ray.report.tables import DASH, Table, ci_text, est, num

NOISE_NAMES = {"bw": "baseline wander", "ma": "muscle artefact", "em": "electrode motion",
               "pl": "powerline", "wgn": "white noise"}
NOISE_ORDER = ("bw", "ma", "em", "pl", "wgn")
MAINS_RULE = 2.5          # electrodes.record_noise: powerline needs fs >= 2.5 x mains, else it is filtered out


@dataclass
class NoiseArm:
    """One model on one dataset/task: macro-AUC clean and under each (type, SNR), with bootstrap draws."""

    model: str
    data: str
    pooled_over: str                              # "folds 1-10 at seed 0" / "3 seeds on test fold 10"
    n_seeds: int
    record_id: np.ndarray
    fs: float
    source: str                                   # config/noise_source
    clean: Estimate
    clean_dist: np.ndarray
    auc: dict[tuple[str, float], Estimate]
    dist: dict[tuple[str, float], np.ndarray]
    delta: dict[tuple[str, float], Estimate] = field(default_factory=dict)       # beatnet − model
    delta_drop: dict[tuple[str, float], Estimate] = field(default_factory=dict)  # robustness, see module doc
    folds: perfold.Folds | None = None            # a rotated arm's predictions by test fold, for paired Δs

    @property
    def kinds(self) -> list[str]:
        ks = {k for k, _ in self.auc}
        return [k for k in NOISE_ORDER if k in ks] + sorted(ks - set(NOISE_ORDER))

    def snrs(self, kind: str) -> list[float]:
        return sorted((s for k, s in self.auc if k == kind), reverse=True)


def _spec_key(spec: str) -> tuple[str, float]:
    kind, snr = spec.split(":")
    return kind, float(snr)


def _scores(study: Study, rows: pd.DataFrame, label: str):
    """(record_id, labels, clean (S, n, C), {spec: (S, n, C)}, description, n_seeds) of one official-split arm."""
    preds = [study.predictions[str(t)] for t in rows.sort_values("seed")["trial_id"]]
    if any(not np.array_equal(q.record_id, preds[0].record_id) for q in preds):
        raise ResultsError([f"{study.name}: seeds of {label} were tested on different records"])
    if any(q.noise is None or list(q.noise) != list(preds[0].noise) for q in preds):
        raise ResultsError([f"{study.name}: {label}: predictions without (or with different) noise scores"])
    noisy = {k: np.stack([q.noise[k] for q in preds]) for k in preds[0].noise}
    fold = int(rows["config/test_fold"].iloc[0]) if "config/test_fold" in rows else 10
    return preds[0].record_id, preds[0].labels, np.stack([q.scores for q in preds]), noisy, \
        f"{len(preds)} seed{'s' if len(preds) != 1 else ''} on test fold {fold}", len(preds)


def _rotated(study: Study, rows: pd.DataFrame, label: str, boot: Bootstrap):
    """Per-fold-averaged clean and noisy estimates of a rotated arm (perfold.py)."""
    fo = perfold.folds_of(study, rows, label)
    if any(f.noise is None for f in fo.by_fold.values()):
        raise ResultsError([f"{study.name}: {label}: a fold's predictions lack noise scores (rerun the study)"])
    specs = next(iter(fo.by_fold.values())).noise
    clean = perfold.averaged(fo, boot)
    noisy = {_spec_key(k): perfold.averaged(fo, boot, k) for k in specs}
    rid = np.sort(np.concatenate([f.record_id for f in fo.by_fold.values()]))
    folds = ",".join(map(str, sorted(fo.by_fold)))
    return rid, clean, noisy, f"test folds {folds}, per-fold mean, seeds {fo.seed_text()}", len(fo.seeds), fo


def _check_rows(study: Study, rows: pd.DataFrame, label: str) -> None:
    """Each stored noisy prediction must give its row's noise/<kind>/<snr>/macro_auc."""
    for _, row in rows.iterrows():
        p = study.predictions[str(row["trial_id"])]
        for spec, s in (p.noise or {}).items():
            kind, snr = _spec_key(spec)
            col = f"noise/{kind}/{snr:g}/macro_auc"
            got = stats.macro_point(p.labels, s[None])
            if col in row and not abs(got - float(row[col])) <= AUC_TOLERANCE:
                raise ResultsError([f"{study.name}: {label} trial {row['trial_id']}: stored {spec} scores give "
                                    f"{got:.6f}, the row says {float(row[col]):.6f}"])


def arms(study: Study, boot: Bootstrap) -> list[NoiseArm]:
    out = []
    for (label, ds, task), rows in study.rows.groupby(["_model", "config/dataset", "config/task"], sort=True):
        _check_rows(study, rows, str(label))
        auc, dist, fo = {}, {}, None
        if rows_rotated(rows):
            rid, (c, cd), est_noisy, over, n_seeds, fo = _rotated(study, rows, str(label), boot)
            for key, (e, d) in est_noisy.items():
                auc[key], dist[key] = e, d
        else:
            rid, y, clean, noisy, over, n_seeds = _scores(study, rows, str(label))
            w = boot.weights(y)

            def estimate(s: np.ndarray, y=y, w=w) -> tuple[Estimate, np.ndarray]:
                d = stats.two_level(y, s, w, seed=boot.seed)
                return Estimate(stats.macro_point(y, s), *stats.ci(d)), d

            c, cd = estimate(clean)
            for spec, s in noisy.items():
                auc[_spec_key(spec)], dist[_spec_key(spec)] = estimate(s)
        fs = float(rows["config/fs"].iloc[0]) if "config/fs" in rows else float("nan")
        source = str(rows["config/noise_source"].iloc[0]) if "config/noise_source" in rows else "synthetic"
        out.append(NoiseArm(str(label), f"{ds}/{task}", over, n_seeds, rid, fs, source, c, cd, auc, dist, folds=fo))
    for a in out:
        ref = reference_of(a, out)
        if ref is None or ref is a:
            continue
        if not np.array_equal(ref.record_id, a.record_id):
            raise ResultsError([f"{study.name}: {a.model} and {ref.model} were tested on different records"])
        if a.folds is not None and ref.folds is not None:
            _paired_by_fold(ref, a, boot)
            continue
        for key in a.auc.keys() & ref.auc.keys():
            d = ref.dist[key] - a.dist[key]
            a.delta[key] = Estimate(ref.auc[key].mean - a.auc[key].mean, *stats.ci(d))
            dd = (ref.dist[key] - ref.clean_dist) - (a.dist[key] - a.clean_dist)
            a.delta_drop[key] = Estimate((ref.auc[key].mean - ref.clean.mean) - (a.auc[key].mean - a.clean.mean),
                                         *stats.ci(dd))
    order = model_order(a.model for a in out)
    return sorted(out, key=lambda a: (a.data, order.index(a.model)))


def _paired_by_fold(ref: NoiseArm, a: NoiseArm, boot: Bootstrap) -> None:
    """Δ level and Δ robustness of two rotated arms, fold by fold at the seeds both have (perfold.paired)."""
    def specs(arm: NoiseArm) -> dict[tuple[str, float], str]:
        return {_spec_key(k): k for k in next(iter(arm.folds.by_fold.values())).noise or {}}

    clean = perfold.paired(ref.folds, a.folds, boot)
    if clean is None:
        raise ResultsError([f"{a.model} and {ref.model} share no test fold on the same records"])
    mine, theirs = specs(a), specs(ref)
    for key in a.auc.keys() & ref.auc.keys():
        noisy = perfold.paired(ref.folds, a.folds, boot, mine[key], theirs[key])
        a.delta[key] = noisy[0]
        a.delta_drop[key] = Estimate(noisy[0].mean - clean[0].mean, *stats.ci(noisy[1] - clean[1]))


def _all_snrs(res: list[NoiseArm]) -> list[float]:
    return sorted({s for a in res for _, s in a.auc}, reverse=True)


def _kinds(res: list[NoiseArm]) -> list[str]:
    ks = {k for a in res for k in a.kinds}
    return [k for k in NOISE_ORDER if k in ks] + sorted(ks - set(NOISE_ORDER))


def _notes(res: list[NoiseArm]) -> str:
    notes = []
    low = sorted({a.fs for a in res if a.fs < MAINS_RULE * 50})
    if low and any(k == "pl" for a in res for k, _ in a.auc):
        notes.append(f"Powerline at {', '.join(f'{f:g}' for f in low)} Hz is added to the electrodes at 500 Hz and "
                     "decimated with the standard anti-alias filter, which removes it (as in a real 100-Hz "
                     "record such as PTB-XL's): its rows show that, not a model's tolerance of mains")
    src = sorted({a.source for a in res})
    notes.append("noise generated (data.electrodes)" if src == ["synthetic"] else
                 f"bw, em and ma from real NSTDB records ({', '.join(src)}); pl and wgn generated")
    return "; ".join(notes)


def table(res: list[NoiseArm], boot: Bootstrap, preset: str) -> Table:
    snrs, kinds = _all_snrs(res), _kinds(res)
    one = len({a.data for a in res}) == 1
    rows = []
    for a in res:
        for k in kinds:
            cells = [est(a.clean)]
            for s in snrs:
                e, d, dd = a.auc.get((k, s)), a.delta.get((k, s)), a.delta_drop.get((k, s))
                if e is None:
                    cells.append(DASH)
                elif d is None:
                    cells.append(num(e.mean))
                else:
                    cells.append(f"{num(e.mean)}; {est(d, True)}; {est(dd, True)}")
            rows.append(([] if one else [a.data]) + [a.model, NOISE_NAMES.get(k, k)] + cells)
    over = sorted({a.pooled_over for a in res})
    cap = (f"Test macro-AUC under electrode noise at nst's SNR (QRS amplitude over noise RMS), models trained on "
           f"clean records, tokens re-detected from the noisy signal; {'; '.join(over)}. One noise realisation "
           "per record and type, the same for every model and scaled to each SNR. Each other model's cell: AUC; "
           "Δ level = beatnet − model; Δ robustness = the model's AUC loss to the noise (clean − noisy) minus "
           f"beatnet's (positive: beatnet loses less). Clean column: AUC with its CI. {ci_text(boot)[0].upper()}{ci_text(boot)[1:]}. Paired: the "
           "same resample of records and seeds for both models; under a fold rotation at the seeds both have on "
           "each fold (a one-seed arm is set against beatnet's same seed; its AUC columns are its own). "
           f"{_notes(res)}. Columns: SNR in dB. Preset `{preset}`.")
    return Table("table5_noise_robustness", "Table 5. Noise robustness", cap,
                 ([] if one else ["Data"]) + ["Model", "Noise", "clean"] + [f"{s:g} dB" for s in snrs], rows)


def verdict(res: list[NoiseArm]) -> list[str]:
    """One line per (data, model): at how many (type, SNR) cells beatnet loses less AUC (CI > 0), more, neither."""
    lines = []
    for a in res:
        if not a.delta_drop:
            continue
        keys = [k for k in a.delta_drop if k[0] != "pl" or a.fs >= MAINS_RULE * 50]
        better = [k for k in keys if a.delta_drop[k].lo > 0]
        worse = [k for k in keys if a.delta_drop[k].hi < 0]
        worst = min(keys, key=lambda k: a.delta_drop[k].mean)
        best = max(keys, key=lambda k: a.delta_drop[k].mean)
        lines.append(f"{a.data}, beatnet vs {a.model}: beatnet loses less AUC at {len(better)} of {len(keys)} "
                     f"(type, SNR) cells and more at {len(worse)} (95% CI excluding 0); largest Δ robustness "
                     f"{est(a.delta_drop[best], True)} ({best[0]} {best[1]:g} dB), smallest "
                     f"{est(a.delta_drop[worst], True)} ({worst[0]} {worst[1]:g} dB)")
    return lines


def figure(res: list[NoiseArm], colors: dict, out) -> list[str]:
    """Top row: macro-AUC against SNR per noise type (95% CI bands); bottom: Δ robustness vs beatnet."""
    from beat_ray.report.figures import save

    kinds, snrs = _kinds(res), _all_snrs(res)
    many = len({a.data for a in res}) > 1
    fig, axes = plt.subplots(2, len(kinds), figsize=(3.2 * len(kinds), 6.4), sharey="row", squeeze=False)
    step = float(np.min(-np.diff(snrs))) if len(snrs) > 1 else 6.0
    clean_x = snrs[0] + step
    for j, k in enumerate(kinds):
        top, bot = axes[0, j], axes[1, j]
        for a in res:
            col, ls = colors[a.model], "-" if not many or a.data == min(x.data for x in res) else "--"
            name = f"{a.model} ({a.data})" if many else a.model
            xs = a.snrs(k)
            if not xs:
                continue
            v = np.array([(a.auc[(k, s)].mean, a.auc[(k, s)].lo, a.auc[(k, s)].hi) for s in xs])
            top.fill_between(xs, v[:, 1], v[:, 2], color=col, alpha=0.15, lw=0)
            top.plot(xs, v[:, 0], "o", ls=ls, color=col, ms=3.5, lw=1.4, label=name)
            top.errorbar([clean_x], [a.clean.mean], yerr=[[a.clean.mean - a.clean.lo], [a.clean.hi - a.clean.mean]],
                         fmt="D", color=col, mfc="white", ms=5, capsize=2, lw=1)
            if a.delta_drop:
                d = np.array([(a.delta_drop[(k, s)].mean, a.delta_drop[(k, s)].lo, a.delta_drop[(k, s)].hi)
                              for s in xs if (k, s) in a.delta_drop])
                bot.fill_between(xs[:len(d)], d[:, 1], d[:, 2], color=col, alpha=0.15, lw=0)
                bot.plot(xs[:len(d)], d[:, 0], "o", ls=ls, color=col, ms=3.5, lw=1.4, label=name)
        for ax in (top, bot):
            ax.set_xticks([clean_x] + snrs if ax is top else snrs,
                          (["clean"] if ax is top else []) + [f"{s:g}" for s in snrs])
            ax.set_xlim(clean_x + step / 2, snrs[-1] - step / 2)
            ax.yaxis.set_tick_params(labelleft=True)
        bot.axhline(0, color="0.5", lw=0.8, ls=":")
        top.set_title(NOISE_NAMES.get(k, k))
        bot.set_xlabel("SNR (dB)")
    axes[0, 0].set_ylabel("test macro-AUC")
    axes[1, 0].set_ylabel("Δ robustness vs beatnet\n(+: beatnet loses less)")
    axes[0, 0].legend(loc="lower left", fontsize=7, frameon=False)
    if any(a.delta_drop for a in res):
        axes[1, 0].legend(loc="lower left", fontsize=7, frameon=False)
    fig.tight_layout()
    return save(fig, out, "fig2_noise_robustness")


__all__ = ["NoiseArm", "arms", "figure", "table", "verdict"]
