"""What every study script shares: a grid declared as data, presets, and one command line.

A study script declares a frozen dataclass grid and a dict of presets and calls `main`.
`--preset smoke|cpu|real|paper`, `--storage-path` (local, NFS or s3://), `--name` (same name =
resume; a changed grid is refused unless `--resume-changed`), `--data-root` (real datasets), `--folds official|rotate` and `--results-root` are the
same everywhere.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pandas as pd

from beat_ray.data.sources import default_realdata
from beat_ray.train.config import N_FOLDS, TrialConfig, recipe_config


class Grid(Protocol):
    base: TrialConfig
    rotate: bool

    def cells(self) -> list[dict]: ...


@dataclass(frozen=True)
class Models:
    """Model names and their per-model overrides (e.g. tiny sizes for CPU presets)."""

    names: tuple[str, ...]
    kwargs: dict[str, dict] = field(default_factory=dict)

    def config(self, base: TrialConfig, name: str, **changes) -> dict:
        return replace(base, model=name, model_kwargs=dict(self.kwargs.get(name, {})), **changes).to_dict()


def shared_ptbxl() -> str:
    """The `real` presets' default data: the 987-record PTB-XL release in `../shared/realdata/ptbxl`
    ($BEAT_RAY_REALDATA/ptbxl where set); `--data-root` overrides it."""
    return str((default_realdata() / "ptbxl").resolve())


def fold_seeds(rotate: bool, seeds: tuple[int, ...], folds: tuple[int, ...] | None = None) -> list[tuple[int, int]]:
    """(test_fold, seed) pairs of a grid.

    Official split: fold 10 at every seed. Rotation (cross-fitting): every fold 1..10 is the test
    fold at every seed, so every record gets one test prediction per seed from a model that never
    saw its patient, and seed variance is measured on every fold (a verdict never rests on one seed
    where a grid names three). `folds` limits the rotation to those test folds (a budget cut: the
    records of the other folds get no test prediction).
    """
    if not rotate:
        return [(N_FOLDS, s) for s in seeds]
    folds = tuple(folds or range(1, N_FOLDS + 1))
    return [(k, s) for s in seeds for k in folds]


def pick_cells(cells: list[dict], arm, models: str | None, seeds: str | None) -> list[dict]:
    """The cells of one launch: `--models` by arm name (a grid whose cells share one model names its arms),
    `--seeds` by seed; a name or seed the preset lacks is an error, never an empty launch."""
    for flag, value, key in (("--models", models, arm), ("--seeds", seeds, lambda c: str(c["seed"]))):
        if not value:
            continue
        wanted, have = [v.strip() for v in value.split(",") if v.strip()], {key(c) for c in cells}
        unknown = sorted(set(wanted) - have)
        if unknown or not wanted:
            raise ValueError(f"{flag} {unknown or value!r}: not in this preset (it has {sorted(have)})")
        cells = [c for c in cells if key(c) in wanted]
    return cells


def parse_overrides(items: list[str]) -> dict:
    """`["epochs=5", "train_noise=ma:12"]` -> typed values (JSON where it parses, else the string)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    if "recipe" in out:                 # a recipe brings its hyperparameters; explicit --set keys win
        out = {**recipe_config(str(out["recipe"])), **out}
    TrialConfig.from_dict(out)          # fail now on unknown keys, not inside a trial
    return out


def parse_data_root(value: str | None) -> dict[str, str]:
    """`/data/ptb-xl` -> {"": path} (every real dataset); `ptbxl=/a,cpsc2018=/b` -> one root each."""
    if not value:
        return {}
    if "=" not in value:
        return {"": value}
    pairs = [item.partition("=") for item in value.split(",") if item]
    bad = [k for k, sep, v in pairs if not sep or not k or not v]
    if bad:
        raise SystemExit(f"--data-root: expected DATASET=PATH pairs separated by commas, got {value!r}")
    return {k: v for k, _, v in pairs}


def main(study: str, presets: dict[str, Grid], argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"experiments/{study}.py")
    ap.add_argument("--preset", choices=sorted(presets), default="smoke")
    ap.add_argument("--storage-path", default=None, help="Ray Tune storage: local dir, NFS or s3://bucket/path")
    ap.add_argument("--name", default=None, help="experiment name; rerunning with the same name resumes")
    ap.add_argument("--data-root", default=None,
                    help="folder of the real dataset (paper preset), or DATASET=PATH,... for several")
    ap.add_argument("--results-root", default=None, help="where results/<study>/<preset>/ goes")
    ap.add_argument("--max-concurrent-trials", type=int, default=None)
    ap.add_argument("--folds", choices=("official", "rotate"), default=None,
                    help="official: train 1-8, val 9, test 10 at every seed; rotate: each fold is the test "
                         "fold once (first seed), other seeds on fold 10 (default: the preset's)")
    ap.add_argument("--gpus-per-trial", type=float, default=None,
                    help="GPUs per trial worker for every cell (0 = train on CPUs). Default: the preset's, used "
                         "only if the cluster has or can autoscale to GPUs; otherwise the study stops and says so")
    ap.add_argument("--allow-cpu-fallback", action="store_true",
                    help="a trial given a GPU that finds no CUDA trains on CPU (the row records it) instead of failing")
    ap.add_argument("--hparams", default=None, metavar="BEST_JSON",
                    help="train each model with its tuned config from experiments/hparams.py "
                         "(results/hparams/<preset>/best.json), per test fold; rows record it")
    ap.add_argument("--models", default=None, metavar="NAME,NAME,...",
                    help="run only the cells of these models, or of these arms where the grid names them (the "
                         "variants of beatnet_variants); another launch can add the rest; rows of one "
                         "results folder never overwrite each other)")
    ap.add_argument("--seeds", default=None, metavar="SEED,SEED,...",
                    help="run only the cells of these seeds (a long preset lands one whole seed per launch, "
                         "every model and fold; another launch, under its own --name, adds the rest)")
    ap.add_argument("--resume-changed", action="store_true",
                    help="resume a --name whose stored grid differs from this launch's, finishing the stored grid "
                         "(without it such a resume is refused, naming the changed fields)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base TrialConfig field, e.g. --set epochs=5 --set train_noise=ma:12")
    a = ap.parse_args(argv)
    grid = presets[a.preset]
    base = grid.base
    roots = parse_data_root(a.data_root)
    if "" in roots:
        base = replace(base, root=roots.pop(""))
    try:                                # a config TrialConfig refuses (e.g. fractional GPUs with DDP)
        grid = replace(grid, base=replace(base, **parse_overrides(a.set)))
        if a.folds is not None:
            grid = replace(grid, rotate=a.folds == "rotate")
        cells = [{**c, "root": roots.get(c["dataset"], c.get("root"))} for c in grid.cells()]
        cells = pick_cells(cells, getattr(grid, "arm", lambda c: c["model"]), a.models, a.seeds)
        hparams = a.hparams or getattr(grid, "hparams", None)
        if hparams and not a.hparams and not Path(hparams).exists():
            from beat_ray.train.runner import REPO
            hparams = REPO / hparams            # a preset's best.json is repo-relative; run from elsewhere
        if hparams:
            from beat_ray.train.search import apply_hparams
            cells = apply_hparams(cells, hparams)
    except ValueError as exc:
        raise SystemExit(f"{study}/{a.preset}: {exc}") from None
    lacking = sorted({c["dataset"] for c in cells if c["dataset"] != "synth" and not c.get("root")})
    if lacking:
        raise SystemExit(f"--data-root is needed for {lacking}: one folder, or DATASET=PATH pairs "
                         f"(e.g. --data-root ptbxl=/data/ptb-xl/1.0.3,cpsc2018=/data/cpsc2018)")
    gone = sorted({(c["root"], c["dataset"]) for c in cells if c.get("root") and not Path(c["root"]).exists()})
    if gone:
        raise SystemExit("; ".join(f"data root {r} ({d}) does not exist" for r, d in gone)
                         + " (the real presets read ../shared/realdata/ptbxl beside the repo; pass --data-root)")
    print(f"{study}/{a.preset}: {len(cells)} trials ({'fold rotation' if grid.rotate else 'official split'})")
    from beat_ray.train.runner import REPO, run_study
    out = run_study(cells, study=study, preset=a.preset, storage_path=a.storage_path, name=a.name,
                    results_root=a.results_root or REPO / "results",
                    max_concurrent_trials=a.max_concurrent_trials, gpus_per_trial=a.gpus_per_trial,
                    allow_cpu_fallback=a.allow_cpu_fallback, resume_changed=a.resume_changed)
    rows = pd.read_parquet(out / "trials.parquet")
    from beat_ray.report.summary import shown
    print(f"results: {shown(out / 'trials.parquet')} ({len(rows)} rows; CSV beside it)")
    print_summary(out)
    return 0


def print_summary(out: Path) -> None:
    """The study's answer in the terminal (`python -m beat_ray.report --summary`); the rows are already
    safe on disk, so a summary that cannot be built says why and the study still succeeds."""
    from beat_ray.report.load import ResultsError
    from beat_ray.report.summary import summarize
    try:
        print(summarize(out).text())
    except ResultsError as exc:
        print(f"no summary for {out}: " + "; ".join(exc.problems))


