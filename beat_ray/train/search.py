"""Hyperparameter search: Ray Tune with OptunaSearch (TPE) and ASHA, one search per (model, test fold).

Why one search per (model, outer test fold): under a fold rotation every fold is some model's test
fold, so hyperparameters shared by all folds would have been chosen on the labels of the records
they are then tested on. A search for test fold k trains on k's training folds and selects on its
validation fold (`fold_layout(k)`); its trials run with `score_test=False`, so fold k is never
predicted or scored and its labels never reach the tuner. `best.json` keeps one config per
(model, test fold), and a study taking `--hparams best.json` refuses a cell whose test fold has no
search of its own (`apply_hparams`).

Equal budget: every model gets the same number of trials (`num_samples`), the same maximum epochs
and the same ASHA rungs; the rows record all three. The metric is `best_val_macro_auc` (the best
epoch's validation macro-AUC so far), for ASHA's rungs and for the final pick.

Resume: the same `--name` and `--storage-path` restore each search with `Tuner.restore`; Tune saves
the OptunaSearch state (the Optuna study with every finished trial) beside its experiment state, so
a killed driver resumes with the sampler's history, not from scratch. A changed search definition
is refused like a changed grid (runner.check_grid). TPE with two trials at a time is not bitwise
reproducible (which trial finishes first changes what is suggested next); the sampler seed is fixed
and recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beat_ray.train.config import TrialConfig
from beat_ray.train.results import (
    PROVENANCE_COLUMNS,
    append_rows,
    git_info,
    make_row,
    read_rows,
)

BEST_FILE = "best.json"
METRIC = "best_val_macro_auc"
KWARG = "model_kwargs."             # a search key "model_kwargs.width" sets model_kwargs["width"]


@dataclass(frozen=True)
class Dim:
    """One search dimension: kind loguniform | uniform | int | choice, and its bounds or choices."""

    kind: str
    args: tuple

    def domain(self):
        from ray import tune
        make = {"loguniform": tune.loguniform, "uniform": tune.uniform, "int": tune.randint,
                "choice": lambda *choices: tune.choice(list(choices))}
        if self.kind not in make:
            raise ValueError(f"unknown search dimension kind {self.kind!r}; known: {sorted(make)}")
        return make[self.kind](*self.args)


@dataclass(frozen=True)
class Search:
    """A search study: per model a space (TrialConfig fields or `model_kwargs.<name>` -> Dim)."""

    base: TrialConfig
    models: tuple[str, ...]
    spaces: dict[str, dict[str, Dim]]
    kwargs: dict[str, dict] = field(default_factory=dict)     # fixed model_kwargs under the searched ones
    num_samples: int = 8
    grace: int = 2                      # ASHA: first rung (epochs)
    reduction: int = 3                  # ASHA: keep the top 1/reduction at each rung
    test_folds: tuple[int, ...] = (10,)
    planted: dict[str, tuple[dict, ...]] = field(default_factory=dict)   # evaluated first (points_to_evaluate)
    sampler_seed: int = 0

    def cell(self, model: str, test_fold: int) -> dict:
        return {**self.base.to_dict(), "model": model, "model_kwargs": dict(self.kwargs.get(model, {})),
                "test_fold": test_fold, "score_test": False}

    def describe(self, model: str, test_fold: int) -> dict:
        """What defines one (model, test fold) search, stored beside it so a changed one is refused on
        resume; other models and folds are not part of it, so folds can be added under the same name."""
        d = {"cell": self.cell(model, test_fold), "space": {k: asdict(v) for k, v in self.spaces[model].items()},
             "planted": list(self.planted.get(model, ())),
             **{k: getattr(self, k) for k in ("num_samples", "grace", "reduction", "sampler_seed")}}
        return json.loads(json.dumps(d, sort_keys=True, default=str))


def apply(cell: dict, params: dict) -> dict:
    """A cell with searched/tuned values set: `model_kwargs.x` keys go into model_kwargs."""
    out = {**cell, "model_kwargs": dict(cell.get("model_kwargs") or {})}
    for k, v in params.items():
        if k.startswith(KWARG):
            out["model_kwargs"][k[len(KWARG):]] = v
        else:
            out[k] = v
    TrialConfig.from_dict(out)          # an unknown key fails here, not inside a trial
    return out


def search_trainable(config: dict[str, Any]) -> None:
    """Tune trainable: the sampled params (top-level keys) applied to the cell, then the usual trial."""
    from beat_ray.train.tune_fn import trainable
    params = {k: v for k, v in config.items() if k not in ("trial", "cache_source")}
    trainable({"trial": apply(config["trial"], params), "cache_source": config.get("cache_source")})


def _row(search: Search, model: str, fold: int, result, preset: str, trial_id: str) -> dict:
    """The trial's provenance and config as every study row has them (make_row), plus the search's own."""
    params = {k: v for k, v in result.config.items() if k not in ("trial", "cache_source")}
    cell = apply(result.config["trial"], params)
    m = result.metrics or {}
    return {**make_row(cell, {}, trial_id), "preset": preset,
            "search/model": model, "search/test_fold": fold, "search/params": json.dumps(params, sort_keys=True),
            "search/num_samples": search.num_samples, "search/max_epochs": search.base.epochs,
            "search/scheduler": f"ASHA(grace={search.grace}, reduction={search.reduction})",
            "search/sampler": f"optuna TPE (seed {search.sampler_seed})",
            METRIC: m.get(METRIC), "epochs_run": m.get("epoch"), "stopped_early": (m.get("epoch") or 0) < cell["epochs"],
            "train_seconds": m.get("train_seconds"), "error": None if result.error is None else str(result.error)[:300]}


def run_search(search: Search, *, preset: str, name: str, storage_path: str, results_root: Path,
               max_concurrent_trials: int = 2, resume_changed: bool = False) -> Path:
    """Run (or resume) every (model, test fold) search; write the trial table and best.json."""
    import optuna
    from ray import tune
    from ray.tune import (
        CheckpointConfig,
        PlacementGroupFactory,
        RunConfig,
        TuneConfig,
        Tuner,
    )
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from beat_ray.train.runner import (
        check_grid,
        init_ray,
        prepare_inputs,
        publish_caches,
        save_grid,
    )
    from beat_ray.train.tune_fn import CHECKPOINTS_KEPT, trial_resources

    out = Path(results_root) / "hparams" / preset
    jobs = [(m, k) for m in search.models for k in search.test_folds]
    exps = {(m, k): f"{storage_path.rstrip('/')}/{name}-{m}-f{k}" for m, k in jobs}
    for (m, k), exp in exps.items():    # before Ray starts: a refusal costs nothing
        if Tuner.can_restore(exp):
            check_grid(exp, [search.describe(m, k)], resume_changed)
    init_ray()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")      # the classic output engine honours progress_reporter
    # every dataset and token cache a trial may ask for, built once on the driver (and published beside
    # the search for other nodes where the storage is a URI, as run_study does)
    cache_source = publish_caches(prepare_inputs(
        [apply(search.cell(m, k), dict(zip(choices, combo)))
         for m, k in jobs for choices, combos in [_input_choices(search.spaces[m])] for combo in combos]), storage_path)
    for (model, fold), exp in exps.items():
        fn = tune.with_resources(search_trainable, lambda config: PlacementGroupFactory(
            [trial_resources(TrialConfig.from_dict(config["trial"]))]))
        if Tuner.can_restore(exp):
            tuner = Tuner.restore(exp, trainable=fn, resume_unfinished=True, resume_errored=True)
        else:
            save_grid(exp, [search.describe(model, fold)])
            planted = [dict(p) for p in search.planted.get(model, ())]
            searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=search.sampler_seed),
                                    points_to_evaluate=planted or None)
            tuner = Tuner(fn, param_space={"trial": search.cell(model, fold), "cache_source": cache_source,
                                           **{k: d.domain() for k, d in search.spaces[model].items()}},
                          tune_config=TuneConfig(metric=METRIC, mode="max", search_alg=searcher,
                                                 scheduler=ASHAScheduler(time_attr="training_iteration",
                                                                         max_t=search.base.epochs,
                                                                         grace_period=search.grace,
                                                                         reduction_factor=search.reduction),
                                                 num_samples=search.num_samples,
                                                 max_concurrent_trials=max_concurrent_trials),
                          run_config=RunConfig(name=exp.rsplit("/", 1)[1], storage_path=storage_path, verbose=1,
                                               progress_reporter=_reporter(search.spaces[model]),
                                               checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT)))
        print(f"hparams/{preset}: searching {model}, test fold {fold} ({search.num_samples} trials, "
              f"≤ {search.base.epochs} epochs)", flush=True)
        grid = tuner.fit()
        rows = [_row(search, model, fold, r, preset, r.metrics.get("trial_id", f"{model}-f{fold}-{i}"))
                for i, r in enumerate(grid) if r.metrics]
        append_rows(out, rows, required=PROVENANCE_COLUMNS, order=("search/model", "search/test_fold", "trial_id"))
    return write_best(out, search, preset)


def _reporter(space: dict[str, Dim]):
    """Tune's live table: model, fold and the sampled values, not the cell as a truncated dict."""
    from beat_ray.train.runner import cli_reporter
    return cli_reporter({"trial/model": "model", "trial/test_fold": "fold", **{k: k.removeprefix(KWARG) for k in space}})


def _input_choices(space: dict[str, Dim]) -> tuple[list[str], list[tuple]]:
    """Searched choices that change a trial's cached inputs: every combination is prepared up front."""
    import itertools
    keys = [k for k in ("token_mode", "max_beats") if k in space and space[k].kind == "choice"]
    return keys, list(itertools.product(*(space[k].args for k in keys))) or [()]


def write_best(out: Path, search: Search, preset: str) -> Path:
    """best.json: per model and test fold, the trial with the highest validation metric."""
    rows = read_rows(out)
    ok = rows[rows["error"].isna() & rows[METRIC].notna()]
    models: dict[str, dict] = {}
    for (model, fold), g in ok.groupby(["search/model", "search/test_fold"], sort=True):
        best = g.sort_values([METRIC, "trial_id"], ascending=[False, True]).iloc[0]
        models.setdefault(str(model), {})[str(int(fold))] = {
            "params": json.loads(best["search/params"]), METRIC: float(best[METRIC]),
            "trial_id": str(best["trial_id"]), "n_trials": int(len(g)), "epochs_run": int(best["epochs_run"])}
    base = search.base
    doc = {"study": "hparams", "preset": preset, "git_commit": git_info()[0],
           "data": {"dataset": base.dataset, "task": base.task, "fs": base.fs, "n_records": base.n_records,
                    "data_seed": base.data_seed, "label_fraction": base.label_fraction},
           "metric": f"{METRIC} (validation fold of each test fold's layout; test folds never scored)",
           "budget": {"num_samples": search.num_samples, "max_epochs": base.epochs,
                      "scheduler": f"ASHA(grace={search.grace}, reduction={search.reduction})"},
           "sampler": f"optuna TPE (seed {search.sampler_seed})", "models": models}
    path = out / BEST_FILE
    tmp = path.with_name(f".{BEST_FILE}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def apply_hparams(cells: list[dict], path: str | Path) -> list[dict]:
    """Each cell with its model's config tuned for the cell's own test fold; refuses what would leak or
    does not match (another dataset, task or fs, a model or fold with no search)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--hparams {path}: cannot read it ({exc})") from None
    out = []
    for c in cells:
        data = doc["data"]
        differ = [k for k in ("dataset", "task", "fs", "n_records", "data_seed") if c.get(k) != data[k]]
        if differ:
            raise SystemExit(f"--hparams {path} was tuned on {data}; this study's cell has "
                             + ", ".join(f"{k}={c.get(k)!r}" for k in differ))
        tuned = doc["models"].get(c["model"])
        if tuned is None:
            raise SystemExit(f"--hparams {path} has no tuned config for {c['model']} (tuned: {sorted(doc['models'])})")
        entry = tuned.get(str(c.get("test_fold", 10)))
        if entry is None:
            raise SystemExit(f"--hparams {path}: {c['model']} was tuned for test folds {sorted(tuned, key=int)} only; "
                             f"a config for test fold {c.get('test_fold', 10)} must come from a search that never saw "
                             "that fold (add it to the search's test_folds)")
        # the tag names the entry, not the whole file: a search that adds other folds leaves this cell's rows valid
        key = json.dumps({"model": c["model"], "test_fold": c.get("test_fold", 10), "params": entry["params"]},
                         sort_keys=True)
        out.append({**apply(c, entry["params"]), "hparams": f"{path}#{hashlib.sha256(key.encode()).hexdigest()[:12]}"})
    return out


def search_main(presets: dict[str, Search], argv: list[str] | None = None) -> int:
    """`experiments/hparams.py`'s command line: the study flags that apply to a search."""
    import argparse
    from dataclasses import replace

    from beat_ray.train.runner import REPO
    from beat_ray.train.study import parse_overrides

    ap = argparse.ArgumentParser(prog="experiments/hparams.py")
    ap.add_argument("--preset", choices=sorted(presets), default="smoke")
    ap.add_argument("--storage-path", default=None, help="Ray Tune storage: local dir, NFS or s3://bucket/path")
    ap.add_argument("--name", default=None, help="search name; rerunning with the same name resumes")
    ap.add_argument("--data-root", default=None, help="folder of the real dataset")
    ap.add_argument("--results-root", default=None, help="where results/hparams/<preset>/ goes")
    ap.add_argument("--max-concurrent-trials", type=int, default=2)
    ap.add_argument("--folds", default=None, metavar="K,K,...",
                    help="search these test folds instead of the preset's (more can follow under the same "
                         "--name; best.json gathers every search in the results folder)")
    ap.add_argument("--resume-changed", action="store_true",
                    help="resume a --name whose stored search differs from this one, finishing the stored one")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base TrialConfig field (e.g. --set epochs=10)")
    a = ap.parse_args(argv)
    search = presets[a.preset]
    try:
        base = replace(search.base, **parse_overrides(a.set), **({"root": a.data_root} if a.data_root else {}))
    except ValueError as exc:
        raise SystemExit(f"hparams/{a.preset}: {exc}") from None
    if base.dataset != "synth" and not (base.root and Path(base.root).exists()):
        raise SystemExit(f"hparams/{a.preset}: data root {base.root} does not exist (pass --data-root)")
    search = replace(search, base=replace(base, study="hparams", preset=a.preset))
    if a.folds:
        folds = tuple(int(k) for k in a.folds.split(",") if k)
        if not set(folds) <= set(range(1, 11)):
            raise SystemExit(f"--folds {a.folds}: test folds are 1..10")
        search = replace(search, test_folds=folds)
    results_root = Path(a.results_root or REPO / "results")
    storage = a.storage_path or str(results_root.resolve().parent / ".ray_results")
    n = len(search.models) * len(search.test_folds)
    print(f"hparams/{a.preset}: {n} searches x {search.num_samples} trials (≤ {base.epochs} epochs each)")
    best = run_search(search, preset=a.preset, name=a.name or f"hparams-{a.preset}", storage_path=storage,
                      results_root=results_root, max_concurrent_trials=a.max_concurrent_trials,
                      resume_changed=a.resume_changed)
    doc = json.loads(best.read_text(encoding="utf-8"))
    for model, folds in doc["models"].items():
        for fold, e in folds.items():
            print(f"  {model} (test fold {fold}): val {METRIC} {e[METRIC]:.3f} with {e['params']}")
    print(f"best configs: {best}")
    return 0
