"""`paper_figures/CLAIMS.md`: the paper's five claims answered per preset, each from its own table (and, for a
preset at two sampling rates, whether BEAT-Net gains more from the higher one).

Why one page: a reader asks "does BEAT-Net hold up?" and the answer is spread over six tables and
four presets. Every row names its protocol, the effect with its CI (the primary statistic of the
table it links), and a verdict from the rules below, stated once (RULES) and applied by code.
A preset without the study a claim needs gets "no result", never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from beat_ray.report import analysis as an
from beat_ray.report import attribution, efficiency, recorded_noise, robustness, rotation, stats
from beat_ray.report.load import STUDIES, ResultsError, read_study
from beat_ray.report.tables import est

SUPPORTED, NOT_SHOWN, CONTRADICTED, NO_RESULT = "**supported**", "not shown", "**contradicted**", "no result"
PRESETS = ("real", "real_tuned", "real500", "cpu")
EFFICIENT_FRACTIONS = (0.30, 0.35)          # the paper's "30-35 % of the labels"
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
RULES = (
    "Verdict rules (beat_ray/report/claims.py; m = the non-inferiority margin, {m:g}, fixed before the real runs; "
    "every CI is a 95% bootstrap over records and seeds):\n"
    "- *CNN-level macro-AUC*, Δ = beatnet − CNN for every CNN: **supported** if every Δ's lower bound > −m; "
    "**contradicted** if some Δ's upper bound < −m; otherwise not shown.\n"
    "- *Robustness*, Δ = the CNN's AUC loss to the noise minus beatnet's (generated: averaged over the SNRs of "
    "the type; recorded: noisy − clean records): **supported** if every CNN's lower bound > 0; **contradicted** "
    "if some CNN's upper bound < 0; otherwise not shown.\n"
    "- *Full-data performance at 30-35 % of the labels*, Δ = beatnet's AUC there − at 100 %: **supported** if "
    "the lower bound > −m; **contradicted** if the upper bound < −m; otherwise not shown.\n"
    "- *Lead II for rhythm classes*, Δ = beatnet's lead-II attribution share, rhythm − other classes: "
    "**supported** if the lower bound > 0; **contradicted** if the upper bound < 0; otherwise not shown.\n"
    "- *Gains more from a higher sampling rate* (not a paper claim: the question the `real500` preset asks), "
    "Δ = beatnet's gain from the higher rate − the CNN's: **supported** if every CNN's lower bound > 0; "
    "**contradicted** if some CNN's upper bound < 0; otherwise not shown.\n"
    "- *Compute efficiency*: **supported** if beatnet has fewer parameters and trains more samples/s than "
    "every CNN; **contradicted** if more parameters and fewer samples/s than every CNN; otherwise not shown "
    "(no CI: counts and throughput of the same trials).\n"
    "- A preset without the study a claim needs: no result.")


@dataclass(frozen=True)
class Claim:
    claim: str
    preset: str
    protocol: str
    effect: str
    verdict: str
    source: str                     # the table's path under paper_figures/


# ---------------------------------------------------------------- the rules, applied to estimates
def noninferior(deltas: dict[str, an.Estimate], margin: float) -> str:
    """CNN-level and full-data claims: Δ = beatnet − other (or − itself at 100 %)."""
    if not deltas:
        return NO_RESULT
    if all(d.lo > -margin for d in deltas.values()):
        return SUPPORTED
    if any(d.hi < -margin for d in deltas.values()):
        return CONTRADICTED
    return NOT_SHOWN


def better(deltas: dict[str, an.Estimate]) -> str:
    """Robustness and lead II: Δ > 0 means the claim's direction."""
    if not deltas:
        return NO_RESULT
    if all(d.lo > 0 for d in deltas.values()):
        return SUPPORTED
    if any(d.hi < 0 for d in deltas.values()):
        return CONTRADICTED
    return NOT_SHOWN


def cheaper(beat: an.Cost | None, cnns: list[an.Cost]) -> str:
    if beat is None or not cnns:
        return NO_RESULT
    if all(beat.params < c.params and beat.samples_per_s > c.samples_per_s for c in cnns):
        return SUPPORTED
    if all(beat.params > c.params and beat.samples_per_s < c.samples_per_s for c in cnns):
        return CONTRADICTED
    return NOT_SHOWN


def _worst(deltas: dict[str, an.Estimate], what: str) -> str:
    if not deltas:
        return "–"
    name = min(deltas, key=lambda k: deltas[k].mean)
    rest = "; ".join(f"{k} {est(d, True)}" for k, d in deltas.items() if k != name)
    return f"{what} {est(deltas[name], True)} vs {name}" + (f" (others: {rest})" if rest else "")


# ---------------------------------------------------------------- protocols
def _protocol(rows: pd.DataFrame, n_records: int | None = None, extra: str = "") -> str:
    data = ", ".join(sorted({f"{d}/{t}" for d, t in zip(rows["config/dataset"], rows["config/task"])}))
    folds = sorted(rows["config/test_fold"].astype(int).unique()) if "config/test_fold" in rows else [10]
    fold_text = ("official split (test fold 10)" if folds == [10] else
                 "fold rotation, all 10 test folds" if len(folds) == 10 else
                 f"fold rotation, test folds {','.join(map(str, folds))}")
    seeds = _seed_text(rows if "config/test_fold" in rows else rows.assign(**{"config/test_fold": 10}))
    epochs = sorted(rows["config/epochs"].astype(int).unique()) if "config/epochs" in rows else []
    parts = [data, f"{n_records} test records" if n_records else "", fold_text,
             seeds, f"{'/'.join(map(str, epochs))} epochs" if epochs else "", extra]
    return "; ".join(p for p in parts if p)


# ---------------------------------------------------------------- one claim each
def _default_recipe(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["config/recipe"] == "default"] if "config/recipe" in rows else rows


def _is_cnn(model: str) -> bool:
    return not model.startswith(an.REFERENCE_MODEL)


def _reference(labels) -> str | None:
    """The beatnet arm the CNNs of these arms pair with ('beatnet (tuned)' beside tuned CNNs)."""
    labels = list(labels)
    cnn = next((m for m in labels if _is_cnn(m)), None)
    return an.reference_for(cnn, labels) if cnn else (an.REFERENCE_MODEL if an.REFERENCE_MODEL in labels else None)


def _seed_text(rows: pd.DataFrame) -> str:
    """The seeds of the rows' models: the text most of them share, and any model whose seeds differ."""
    if "config/model" not in rows or rows["config/model"].nunique() < 2:
        return _fold_seed_text(rows)
    texts = {m: _fold_seed_text(g) for m, g in rows.groupby("config/model")}
    common = max(sorted(set(texts.values())), key=list(texts.values()).count)
    odd = [f"{m}: {t}" for m, t in sorted(texts.items()) if t != common]
    return common + (f" ({'; '.join(odd)})" if odd else "")


def _fold_seed_text(rows: pd.DataFrame) -> str:
    """'seeds 0,1,2' when every tested fold has them, else which seeds ran where."""
    by = rows.groupby(rows["config/test_fold"].astype(int))["seed"].apply(lambda s: tuple(sorted(set(s.astype(int)))))
    every = sorted(set.intersection(*map(set, by)))
    if len(set(by)) == 1:
        return f"seeds {','.join(map(str, every))}"
    more = {k: sorted(set(v) - set(every)) for k, v in by.items() if set(v) - set(every)}
    extra = "; ".join(f"seeds {','.join(map(str, v))} also on fold {k}" for k, v in more.items())
    return f"seed {','.join(map(str, every))} on every fold, {extra}"


def default_results(study, boot: an.Bootstrap) -> list[rotation.PooledResult]:
    """The default-recipe rows of Table 1 (a bootstrap: computed once per preset, read by two claims)."""
    return [r for r in rotation.pooled_results(study, boot) if r.recipe == "default"]


def cnn_level(study, res: list[rotation.PooledResult], boot: an.Bootstrap) -> tuple[str, str, str]:
    deltas = {}
    for r in res:
        if not _is_cnn(r.model):
            continue
        d = r.delta_fold_mean if r.folds is not None else r.delta_fold10
        if d is not None:
            deltas[f"{r.model} ({r.data})" if len({x.data for x in res}) > 1 else r.model] = d
    stat = "per-fold mean" if any(r.folds is not None for r in res) else "fold 10"
    n = max((r.n_pooled or len(r.fold10_record_id if r.fold10_record_id is not None else [])) for r in res)
    return (_protocol(_default_recipe(study.rows), n, "default recipe, equal budget"),
            _worst(deltas, f"Δ macro-AUC ({stat})"), noninferior(deltas, boot.margin))


def rate_gain(study, res: list[rotation.PooledResult], boot: an.Bootstrap) -> tuple[str, str, str] | None:
    """Does beatnet gain more from the higher rate than each CNN (a study at two rates; None otherwise)?"""
    gains = rotation.rate_gains(res, boot)
    deltas = {g.model: g.more for g in gains if g.more is not None}
    if not deltas:
        return None
    lo, hi = gains[0].rates
    n = max(g.high.n_pooled for g in gains)
    return (_protocol(_default_recipe(study.rows), n, f"every model at {lo} and {hi} Hz on the same records"),
            _worst(deltas, f"beatnet's gain {lo} → {hi} Hz − the CNN's (per-fold mean)"), better(deltas))


def generated_noise(study, boot: an.Bootstrap) -> list[tuple[str, str, str, str]]:
    """(noise type, protocol, effect, verdict) per generated noise type."""
    arms = robustness.arms(study, boot)
    out = []
    for kind in robustness.NOISE_ORDER:
        deltas = {}
        for a in arms:
            ref = an.reference_of(a, arms)
            if ref is None or ref is a or not _is_cnn(a.model) or (kind == "pl" and a.fs < robustness.MAINS_RULE * 50):
                continue
            keys = [k for k in a.dist if k[0] == kind and k in ref.dist]
            if not keys:
                continue
            dd = np.mean([(ref.dist[k] - ref.clean_dist) - (a.dist[k] - a.clean_dist) for k in keys], axis=0)
            point = np.mean([(ref.auc[k].mean - ref.clean.mean) - (a.auc[k].mean - a.clean.mean) for k in keys])
            deltas[a.model] = an.Estimate(float(point), *stats.ci(dd))
        if deltas:
            snrs = sorted({k[1] for a in arms for k in a.dist if k[0] == kind}, reverse=True)
            extra = f"{robustness.NOISE_NAMES[kind]} at {', '.join(f'{s:g}' for s in snrs)} dB added to the test records"
            out.append((kind, _protocol(study.rows, len(arms[0].record_id), extra),
                        _worst(deltas, "Δ robustness (mean over SNRs)"), better(deltas)))
    return out


def recorded(study, realdata: Path, boot: an.Bootstrap) -> tuple[str, str, str] | None:
    db = Path(realdata) / "ptbxl" / "ptbxl_database.csv"
    if not rotation.rows_rotated(study.rows) or set(study.rows["config/dataset"]) != {"ptbxl"} or not db.is_file():
        return None
    arms = recorded_noise.analyse(study, recorded_noise.annotations(db), boot)
    deltas = {a.model: g.vs_ref for a in arms for g in a.groups if g.name == recorded_noise.ANY and g.vs_ref}
    n = next((f"{g.n_noisy} noisy / {g.n_clean} clean" for a in arms for g in a.groups if g.name == recorded_noise.ANY), "")
    return (_protocol(_default_recipe(study.rows), None, f"PTB-XL's own noise annotations, {n} test records"),
            _worst(deltas, "Δ(beatnet) − Δ(CNN), noisy − clean"), better(deltas))


def label_efficiency(study, boot: an.Bootstrap) -> tuple[str, str, str]:
    all_curves = efficiency.curves(study, boot)
    ref = _reference(c.model for c in all_curves)
    curves = [c for c in all_curves if c.model == ref]
    deltas, proto = {}, ""
    for c in curves:
        pts = [p for p in c.points if EFFICIENT_FRACTIONS[0] - 1e-9 <= p.fraction <= EFFICIENT_FRACTIONS[1] + 1e-9]
        for p in pts:
            deltas[f"{p.fraction:.0%} ({c.data})"] = p.delta
        proto = f"{c.data}; {c.n_records} test records; folds {','.join(map(str, c.folds))}; seeds " \
                f"{','.join(map(str, c.seeds))}; {c.budget} budget"
    return proto, _worst(deltas, "Δ AUC(f) − AUC(100 %)").replace(" vs ", " at "), noninferior(deltas, boot.margin)


def lead_ii(study, boot: an.Bootstrap) -> tuple[str, str, str]:
    every = attribution.results(study, boot)
    ref = _reference(r.model for r in every)
    res = [r for r in every if r.model == ref and "=" not in r.data]
    deltas = {r.data: r.shares["difference"] for r in res if "difference" in r.shares}
    proto = "; ".join(f"{r.data}, {r.n_records} records, {r.n_seeds} seed(s), integrated gradients ({r.steps} steps)"
                      for r in res)
    return proto, _worst(deltas, "lead-II share, rhythm − other").replace(" vs ", " on "), better(deltas)


def compute_cost(study) -> tuple[str, str, str]:
    rows = _default_recipe(study.rows)
    costs = [an.cost_of(g) for _, g in rows.groupby(["_model", "config/dataset", "config/task"], sort=True)]
    ref = _reference(c.model for c in costs)
    beat = next((c for c in costs if c.model == ref), None)
    cnns = [c for c in costs if _is_cnn(c.model) and (beat is None or c.data == beat.data)]
    if beat is None:
        return "", "–", NO_RESULT
    eff = "; ".join(f"{c.model} {c.params / 1e6:.2f}M, {c.samples_per_s:.0f}/s" for c in cnns)
    return (f"the benchmark's trials ({beat.data}), CPU, 1 thread per trial",
            f"{beat.model} {beat.params / 1e6:.2f}M parameters, {beat.samples_per_s:.0f} train samples/s ({eff})",
            cheaper(beat, cnns))


# ---------------------------------------------------------------- a preset, every preset, the page
def preset_claims(results: Path, preset: str, realdata: Path, boot: an.Bootstrap) -> list[Claim]:
    problems: list[str] = []
    studies = {s: read_study(results, s, preset, problems) for s in STUDIES
               if (results / s / preset / "trials.parquet").is_file()}
    if problems:
        raise ResultsError(problems)
    link = f"/paper_figures/{preset}"      # root-relative: the same text works in CLAIMS.md and README.md
    out: list[Claim] = []

    def add(claim: str, study: str, table: str, got) -> None:
        if got is None or got[2] == NO_RESULT:
            out.append(Claim(claim, preset, "–", "–", NO_RESULT, ""))
            return
        out.append(Claim(claim, preset, got[0], got[1], got[2], f"{link}/{table}.md"))

    bench = studies.get("benchmark")
    table1 = default_results(bench, boot) if bench else []
    add("CNN-level macro-AUC", "benchmark", "table1_benchmark", cnn_level(bench, table1, boot) if bench else None)
    rate = rate_gain(bench, table1, boot) if bench else None
    if rate is not None:                    # a study at two rates (real500): the question it was run for
        add("Gains more from a higher sampling rate than the CNNs", "benchmark", "table1c_sampling_rate", rate)
    noise = studies.get("noise_robustness")
    gen = generated_noise(noise, boot) if noise else []
    for kind, proto, effect, verdict in gen:
        out.append(Claim(f"Robustness: {robustness.NOISE_NAMES[kind]} (generated)", preset, proto, effect, verdict,
                         f"{link}/table5_noise_robustness.md"))
    if not gen:
        add("Robustness: generated noise", "noise_robustness", "table5_noise_robustness", None)
    add("Robustness: recorded noise (PTB-XL annotations)", "benchmark", "table5b_recorded_noise",
        recorded(bench, realdata, boot) if bench else None)
    eff = studies.get("data_efficiency")
    add("Full-data AUC from 30-35 % of the labels", "data_efficiency", "table3_label_efficiency",
        label_efficiency(eff, boot) if eff else None)
    att = studies.get("lead_attribution")
    add("Lead II for rhythm classes", "lead_attribution", "table6_lead_ii_share", lead_ii(att, boot) if att else None)
    add("Compute efficiency", "benchmark", "table4_model_cost", compute_cost(bench) if bench else None)
    return out


def markdown(claims: list[Claim], margin: float) -> str:
    lines = ["Generated by `make figures` (`python -m beat_ray.report --claims`) from `results/`; do not edit.", "",
             "| Claim | Preset | Protocol | Effect (95% CI) | Verdict | Table |", "|:---|:---|:---|:---|:---|:---|"]
    for c in claims:
        link = f"[{Path(c.source).name}]({c.source})" if c.source else "–"
        lines.append(f"| {c.claim} | `{c.preset}` | {c.protocol} | {c.effect} | {c.verdict} | {link} |")
    return "\n".join(lines + ["", RULES.format(m=margin)]) + "\n"


def write(results: str | Path, out: str | Path, realdata: str | Path, n_boot: int = stats.N_BOOT,
          seed: int = stats.SEED, margin: float = stats.MARGIN, readme: str | Path | None = "README.md") -> Path:
    """Write OUT/CLAIMS.md for every preset with results, and the same text between README's markers."""
    results = Path(results)
    presets = [p for p in PRESETS if any((results / s / p / "trials.parquet").is_file() for s in STUDIES)]
    claims = [c for p in presets for c in preset_claims(results, p, Path(realdata), an.Bootstrap(n_boot, seed, margin))]
    text = markdown(claims, margin)
    path = Path(out) / "CLAIMS.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    if readme is not None and Path(readme).is_file():
        embed(Path(readme), text)
    return path


def embed(readme: Path, text: str) -> None:
    """Replace what lies between the claims markers of `readme` with `text` (the markers must exist)."""
    doc = readme.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        raise ResultsError([f"{readme} has no {BEGIN} ... {END} block to hold the claims page"])
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{text}{END}{tail}"
    if new != doc:
        tmp = readme.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(readme)


def block(readme: Path) -> str:
    """The text between README's claims markers (what the test compares with CLAIMS.md)."""
    doc = readme.read_text(encoding="utf-8")
    return doc.split(BEGIN, 1)[1].split(END, 1)[0].removeprefix("\n")
