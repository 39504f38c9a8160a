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
from beat_ray.report import figures, readme, tables
from beat_ray.report.load import Inputs, load_all
from beat_ray.report.stats import N_BOOT, SEED


def compute(inputs: Inputs, boot: an.Bootstrap) -> dict:
    """Every number of the paper figure set (raises ResultsError where inputs cannot be paired)."""
    s = inputs.studies
    return {"benchmark": an.benchmark(s["benchmark"], boot), "ablations": an.ablations(s["ablations"], boot),
            "efficiency": an.label_efficiency(s["data_efficiency"], boot), "noise": an.noise(s["noise_robustness"]),
            "cost": an.cost(s["benchmark"]), "attention": an.attention(s["benchmark"], boot)}


def make_tables(nums: dict, boot: an.Bootstrap, preset: str) -> list[tables.Table]:
    return [tables.benchmark(nums["benchmark"], boot, preset), tables.ablations(nums["ablations"], boot, preset),
            tables.label_efficiency(nums["efficiency"], boot, preset), tables.model_cost(nums["cost"], preset),
            tables.noise(nums["noise"], preset), tables.lead_share(nums["attention"], boot, preset)]


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
        files += figures.fig1_data_efficiency(nums["efficiency"], colors, out)
        files += figures.fig2_noise(nums["noise"], colors, out)
        files += figures.fig3_attention(nums["attention"], out)
        fig4, n_beats = figures.fig4_tokens(*inputs.record, out)
        files += fig4
    (out / "README.md").write_text(readme.build(inputs, tabs, nums["attention"], boot, n_beats), encoding="utf-8")
    return files + ["README.md"]


def run(results: str | Path, out: str | Path, preset: str, realdata: str | Path,
        n_boot: int = N_BOOT, seed: int = SEED) -> list[str]:
    """Build the figure set into `out`; raises ResultsError (nothing written) on missing inputs."""
    inputs = load_all(Path(results), preset, Path(realdata))
    boot = an.Bootstrap(n_boot, seed)
    nums = compute(inputs, boot)
    out = Path(out)
    parent = out.resolve().parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent if parent.is_dir() else None))
    try:
        files = render(inputs, nums, boot, tmp)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            if tmp.stat().st_dev == out.stat().st_dev:
                os.replace(tmp / f, out / f)
            else:
                shutil.move(str(tmp / f), str(out / f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files
