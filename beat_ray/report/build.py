"""Orchestration: check inputs, compute every number, render into a temp dir, then move into place.

Why a temp dir: a failed or interrupted build must leave the previous figure set untouched,
never a mix of old and new files. Inputs are checked and all numbers computed before anything
is written; rendering goes to a sibling temp dir whose files are renamed into `out` only after
everything succeeded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from beat_ray.report import analysis as an
from beat_ray.report import (
    attribution,
    efficiency,
    figures,
    readme,
    recorded_noise,
    robustness,
    rotation,
    tables,
)
from beat_ray.report.load import (
    STUDIES,
    Inputs,
    ResultsError,
    load_all,
    read_realdata,
    read_study,
)
from beat_ray.report.stats import MARGIN, N_BOOT, SEED


def compute(inputs: Inputs, boot: an.Bootstrap) -> dict:
    """Every number of the paper figure set (raises ResultsError where inputs cannot be paired)."""
    s = inputs.studies
    return {"benchmark": an.benchmark(s["benchmark"], boot), "ablations": an.ablations(s["ablations"], boot),
            "efficiency": efficiency.curves(s["data_efficiency"], boot), "noise": robustness.arms(s["noise_robustness"], boot),
            "cost": an.cost(s["benchmark"]), "attribution": attribution.results(s["lead_attribution"], boot)}


def make_tables(nums: dict, boot: an.Bootstrap, preset: str) -> list[tables.Table]:
    return [tables.benchmark(nums["benchmark"], boot, preset), tables.ablations(nums["ablations"], boot, preset),
            efficiency.table(nums["efficiency"], boot, preset), tables.model_cost(nums["cost"], preset),
            robustness.table(nums["noise"], boot, preset), attribution.table(nums["attribution"], boot, preset)]


def render(inputs: Inputs, nums: dict, boot: an.Bootstrap, out: Path) -> list[str]:
    """Write all tables, figures and the README into `out`; returns the file names."""
    tabs = make_tables(nums, boot, inputs.preset)
    files = []
    for t in tabs:
        for ext, text in ((".md", t.markdown()), (".tex", t.latex())):
            (out / f"{t.name}{ext}").write_text(text, encoding="utf-8")
            files.append(f"{t.name}{ext}")
    models = [r.model for r in nums["benchmark"]] + [c.model for c in nums["efficiency"]] + \
             [c.model for c in nums["noise"]]
    colors = figures.palette(models)
    with figures.style():
        files += efficiency.figure(nums["efficiency"], colors, out)
        files += robustness.figure(nums["noise"], colors, out)
        files += attribution.figure(nums["attribution"], out)
        fig4, n_beats = figures.fig4_tokens(*inputs.record, out)
        files += fig4
    (out / "README.md").write_text(readme.build(inputs, tabs, boot, n_beats), encoding="utf-8")
    return files + ["README.md"]


def run(results: str | Path, out: str | Path, preset: str, realdata: str | Path,
        n_boot: int = N_BOOT, seed: int = SEED, margin: float = MARGIN) -> list[str]:
    """Build the figure set into `out`; raises ResultsError (nothing written) on missing inputs."""
    inputs = load_all(Path(results), preset, Path(realdata))
    boot = an.Bootstrap(n_boot, seed, margin)
    nums = compute(inputs, boot)
    return atomic_render(Path(out), lambda tmp: render(inputs, nums, boot, tmp))


# ------------------------------------------------------------------ every preset whose results exist
SKIP_PRESETS = ("smoke",)          # the demo's and the tests' runs: plumbing, not results


def presets_with_results(results: str | Path) -> list[str]:
    """Presets that have at least one study's trials.parquet under `results` (real first)."""
    found = {p.parent.name for s in STUDIES for p in Path(results).glob(f"{s}/*/trials.parquet")}
    return sorted(found - set(SKIP_PRESETS), key=lambda p: (p != "real", p))


def run_all(results: str | Path, out: str | Path, realdata: str | Path, n_boot: int = N_BOOT,
            seed: int = SEED, margin: float = MARGIN) -> dict[str, list[str]]:
    """`make figures`: one folder `out/<preset>/` per preset with results, and `out/README.md` indexing them.

    A preset with all four classic (official-split) studies gets the full figure set (`run`);
    any other (e.g. `real`, rotated, with some studies not run yet) gets the tables and figures of
    the studies it has, and says which are missing. Partial or corrupt study folders still fail.
    """
    presets = presets_with_results(results)
    if not presets:
        raise ResultsError([f"no results under {results} (looked for <study>/<preset>/trials.parquet)"])
    built: dict[str, list[str]] = {}
    present: dict[str, list[str]] = {}
    for p in presets:
        target = Path(out) / p
        present[p] = [s for s in STUDIES if (Path(results) / s / p / "trials.parquet").is_file()]
        if len(present[p]) == len(STUDIES) and not _any_rotation(results, p, present[p]):
            built[p] = run(results, target, p, realdata, n_boot, seed, margin)
        else:
            built[p] = atomic_render(target, lambda tmp, p=p: render_available(results, tmp, p, realdata, present[p],
                                                                    an.Bootstrap(n_boot, seed, margin)))
    index = readme.index(built, present)
    Path(out).mkdir(parents=True, exist_ok=True)
    tmp = Path(out) / ".README.md.tmp"
    tmp.write_text(index, encoding="utf-8")
    os.replace(tmp, Path(out) / "README.md")
    return built


def _any_rotation(results, preset: str, studies: list[str]) -> bool:
    import pandas as pd
    return any(rotation.rows_rotated(pd.read_parquet(Path(results) / s / preset / "trials.parquet"))
               for s in studies)


def render_available(results, out: Path, preset: str, realdata, present: list[str], boot: an.Bootstrap) -> list[str]:
    """Tables and figures of the studies a preset has; rotated studies are pooled (rotation.py)."""
    problems: list[str] = []
    studies = {s: read_study(Path(results), s, preset, problems) for s in present}
    record = read_realdata(Path(realdata), problems)
    problems += [why for st in studies.values() if st is not None and (why := rotation.not_pooled(st))]
    if problems:
        raise ResultsError(problems)
    tabs, files, sections = [], [], []
    if "benchmark" in studies:
        res = rotation.pooled_results(studies["benchmark"], boot)
        tabs.append(rotation.table(res, boot, preset, "table1_benchmark", "Table 1. Benchmark",
                                   "Test macro-AUC of BEAT-Net and the PTB-XL benchmark's CNNs."))
        rate = rotation.rate_table(res, boot, preset)
        if rate is not None:
            tabs.append(rate)
        rows = studies["benchmark"].rows
        tabs.append(tables.model_cost([an.cost_of(g) for _, g in rows.groupby(
            ["_model", "config/dataset", "config/task"], sort=True)], preset, over="trials: folds and seeds"))
        sections.append(("benchmark", res))
    if "ablations" in studies:
        res = rotation.pooled_results(studies["ablations"], boot)
        tabs.append(rotation.table(res, boot, preset, "table2_ablations", "Table 2. Ablations",
                                   "Test macro-AUC of BEAT-Net and its ablations (one mechanism removed each)."
                                   + tables.stand_ins(r.model for r in res)))
        sections.append(("ablations", res))
    curves = efficiency.curves(studies["data_efficiency"], boot) if "data_efficiency" in studies else None
    if curves is not None:
        tabs.append(efficiency.table(curves, boot, preset))
    attr = attribution.results(studies["lead_attribution"], boot) if "lead_attribution" in studies else None
    if attr is not None:
        tabs.append(attribution.table(attr, boot, preset))
    noise = robustness.arms(studies["noise_robustness"], boot) if "noise_robustness" in studies else None
    if noise is not None:
        tabs.append(robustness.table(noise, boot, preset))
    recorded = recorded_noise_arms(studies.get("benchmark"), Path(realdata), boot)
    if recorded:
        tabs.append(recorded_noise.table(recorded, boot, preset))
    for t in tabs:
        for ext, text in ((".md", t.markdown()), (".tex", t.latex())):
            (out / f"{t.name}{ext}").write_text(text, encoding="utf-8")
            files.append(f"{t.name}{ext}")
    figs = []
    with figures.style():
        if curves is not None:
            files += efficiency.figure(curves, figures.palette(c.model for c in curves), out)
            figs.append(("fig1_data_efficiency", "data_efficiency"))
        if noise is not None:
            files += robustness.figure(noise, figures.palette(a.model for a in noise), out)
            figs.append(("fig2_noise_robustness", "noise_robustness"))
        if attr is not None:
            files += attribution.figure(attr, out)
            figs.append(("fig3_interpretability", "lead_attribution"))
        for name, res in sections:
            stem = rotation.FIGURE_STEMS[name]
            files += rotation.figure(res, out, stem, f"{name}, preset {preset}: per-fold and pooled macro-AUC")
            figs.append((stem, name))
        fig4, n_beats = figures.fig4_tokens(*record, out)
        files += fig4
    (out / "README.md").write_text(readme.build_available(preset, studies, tabs, figs, n_beats, boot),
                                   encoding="utf-8")
    return files + ["README.md"]


def recorded_noise_arms(study, realdata: Path, boot: an.Bootstrap) -> list | None:
    """Table 5b's arms for a rotated PTB-XL benchmark (None for other data); its noise annotations are
    read from the release's ptbxl_database.csv, and a PTB-XL rotation without it is an error."""
    if study is None or not rotation.rows_rotated(study.rows) or set(study.rows["config/dataset"]) != {"ptbxl"}:
        return None
    db = realdata / "ptbxl" / "ptbxl_database.csv"
    if not db.is_file():
        raise ResultsError([f"Table 5b needs PTB-XL's noise annotations: {db} does not exist (--realdata)"])
    return recorded_noise.analyse(study, recorded_noise.annotations(db), boot)


def atomic_render(out: Path, render_fn) -> list[str]:
    """Render into a sibling temp dir, then move every file into `out` (a failure leaves `out` as it was)."""
    out = Path(out)
    parent = out.resolve().parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent if parent.is_dir() else None))
    try:
        files = render_fn(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            if tmp.stat().st_dev == out.stat().st_dev:
                os.replace(tmp / f, out / f)
            else:
                shutil.move(str(tmp / f), str(out / f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files
