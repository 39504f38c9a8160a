"""`python -m beat_ray.report --summary RESULTS_DIR`: what one study run found, printed in the terminal.

Why: a study (and `make demo`) that ends with the path of a parquet file leaves the user to learn
pandas and our column names before seeing an answer. The summary is the study's paper table and
figure, computed by the same code as `make figures` (analysis, tables, figures, rotation), so the
terminal and the paper set cannot disagree about the same rows. The figure goes to
`RESULTS_DIR/summary/` (derived files; the rows beside it are never touched).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from beat_ray.report import analysis as an
from beat_ray.report import (
    attribution,
    efficiency,
    figures,
    robustness,
    rotation,
    tables,
    variants,
)
from beat_ray.report.build import atomic_render
from beat_ray.report.load import STUDIES, ResultsError, Study, read_study
from beat_ray.report.stats import MARGIN, N_BOOT, SEED

SUMMARY_DIR = "summary"


@dataclass
class Summary:
    study: str
    preset: str
    n_rows: int
    table: tables.Table
    figures: list[Path] = field(default_factory=list)     # PNGs (a PDF of each lies beside it)
    verdict: list[str] = field(default_factory=list)      # one-line readings of the table (noise robustness)

    def text(self, width: int = 100) -> str:
        lines = [f"== {self.study}/{self.preset}: {self.n_rows} trials ==", "", self.table.title,
                 self.table.markdown(title=False).split("\n", 2)[2].rstrip(), ""]
        lines += textwrap.wrap(f"Protocol: {self.table.caption}", width)
        for v in self.verdict:
            lines += textwrap.wrap(f"Verdict: {v}", width)
        lines += [f"figure: {shown(p)}" for p in self.figures] or ["figure: none for this study (table above)"]
        return "\n".join(lines)


def shown(path: Path) -> str:
    """A path relative to the working directory when it lies under it (what a user can paste)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read(folder: Path) -> Study:
    study, preset = folder.parent.name, folder.name
    if study not in STUDIES:
        raise ResultsError([f"{folder} is not a study results folder: expected results/<study>/<preset>/ "
                            f"with <study> one of {', '.join(STUDIES)}"])
    problems: list[str] = []
    s = read_study(folder.parent.parent, study, preset, problems)
    if problems:
        raise ResultsError(problems)
    return s


def summarize(folder: str | Path, out: str | Path | None = None, n_boot: int = N_BOOT,
              seed: int = SEED, margin: float = MARGIN) -> Summary:
    """The table (and, where the paper set has one, the figure) of one study folder."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / SUMMARY_DIR
    if folder.parent.name == variants.STUDY:    # validation-only rows: their own table, no figure
        rows = variants.load(folder)
        t = variants.table(rows)

        def write(tmp: Path) -> list[str]:
            (tmp / f"{t.name}.md").write_text(t.markdown(), encoding="utf-8")
            return [f"{t.name}.md"]
        atomic_render(out, write)
        return Summary(variants.STUDY, folder.name, len(rows), t)
    s = _read(folder)
    boot = an.Bootstrap(n_boot, seed, margin)
    if why := rotation.not_pooled(s):
        raise ResultsError([why])
    draw = None                  # the figure function, waiting only for its output folder
    verdict: list[str] = []
    if s.name == "data_efficiency":             # official split or rotated: pooled per seed there
        curves = efficiency.curves(s, boot)
        table = efficiency.table(curves, boot, s.preset)
        draw = partial(efficiency.figure, curves, figures.palette(c.model for c in curves))
    elif s.name == "lead_attribution":          # official split or rotated: pooled per seed there
        res = attribution.results(s, boot)
        table = attribution.table(res, boot, s.preset)
        draw = partial(attribution.figure, res)
    elif s.name == "noise_robustness":
        res = robustness.arms(s, boot)
        table = robustness.table(res, boot, s.preset)
        verdict = robustness.verdict(res)
        draw = partial(robustness.figure, res, figures.palette(a.model for a in res))
    elif rotation.rows_rotated(s.rows):
        res = rotation.pooled_results(s, boot)
        table = rotation.table(res, boot, s.preset, f"{s.name}_summary", f"{s.name}, preset {s.preset}",
                               "Test macro-AUC pooled over the fold rotation.")
        draw = partial(rotation.figure, res, stem=rotation.FIGURE_STEMS[s.name], title=f"{s.name}, preset {s.preset}")
    elif s.name == "benchmark":
        table = tables.benchmark(an.benchmark(s, boot), boot, s.preset)
    else:
        table = tables.ablations(an.ablations(s, boot), boot, s.preset)
    pngs: list[Path] = []
    if draw is not None:
        def render(tmp: Path) -> list[str]:
            with figures.style():
                return draw(out=tmp)
        pngs = [out / f for f in atomic_render(out, render) if f.endswith(".png")]
    return Summary(s.name, s.preset, len(s.rows), table, pngs, verdict)
