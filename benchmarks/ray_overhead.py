"""Ray overhead of a study sweep: wall time against the time trials spend inside themselves.

    python benchmarks/ray_overhead.py [--preset smoke] [--concurrency N] [--no-reuse-actors]
                                      [--epochs E] [--n-records N] [--out benchmarks/out/ray_overhead.json]

Runs the data-efficiency sweep in this process (the same `run_study` the script calls) on a fresh
local Ray instance and a cold or warm dataset cache (`--cold-cache`), and splits the wall time:

* `wall_s`: process start to results written and Ray shut down (what a user waits for);
* `ray_init_s`, `prepare_inputs_s`, `tuner_fit_s`, `shutdown_s`: its stages;
* per trial: `time_total_s` (Tune's in-trial time: data load, epochs, evaluation, checkpoints,
  reports), `train_seconds` (optimizer steps only) and, from a Tune callback, when its code started
  and ended relative to the start of `Tuner.fit`;
* `fit_idle_slot_s = concurrency * tuner_fit_s - sum(time_total_s)`: trial slots that ran no trial
  code (worker process start-up and imports, scheduling, the drain at the end).

Ratios, target <= 1.3 (issue D: wall against in-trial seconds / concurrency):
* `ratio_in_trial = wall / (sum time_total_s / concurrency)`: the issue's figure. Everything a
  trial does itself (data, epochs, the per-epoch validation, test scoring, checkpoints) counts
  as trial work; what is left is Ray, Python start-up and the driver;
* `ratio_train = wall / (sum train_seconds / concurrency)`: stricter, optimizer steps only, so the
  per-epoch validation (sliding windows for the CNNs) and test scoring count as overhead too;
* the same two over `tuner_fit_s` only (`sweep_*`), which leaves out Ray start-up and the driver's
  dataset/token preparation.
The sweep runs as the runner configures it (`reuse_actors=True`: one worker process serves
several trials); `--no-reuse-actors` measures what a fresh worker process per trial would cost.
"""
from __future__ import annotations

import sys
import time

T_START = time.perf_counter()
# benchmarks/tokenize.py would shadow the stdlib `tokenize` (imported by logging -> linecache)
sys.path[:] = [p for p in sys.path if p != __file__.rsplit("/", 1)[0] and p != "benchmarks"]

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _load_presets() -> dict:
    import importlib.util
    spec = importlib.util.spec_from_file_location("_exp_data_efficiency", REPO / "experiments" / "data_efficiency.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.PRESETS


class _Timeline:
    """Wall-clock marks of each trial, recorded on the driver by a Tune callback."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float]] = {}   # (wall at first result, its time_this_iter_s)
        self.done: dict[str, float] = {}

    def callback(self):
        from ray.tune import Callback
        tl = self

        class Marks(Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                tl.first.setdefault(trial.trial_id, (time.time(), float(result.get("time_this_iter_s", 0.0))))

            def on_trial_complete(self, iteration, trials, trial, **info):
                tl.done[trial.trial_id] = time.time()

        return Marks()


def run(preset: str, concurrency: int | None, reuse_actors: bool, cold_cache: bool, workdir: Path,
        overrides: dict | None = None) -> dict:
    import ray
    import ray.tune

    from beat_ray.train import runner
    from beat_ray.train.results import read_rows

    cells = [{**c, **(overrides or {})} for c in _load_presets()[preset].cells()]
    if cold_cache:
        os.environ["BEAT_RAY_CACHE"] = str(workdir / "cache")
    t_imports = time.perf_counter()

    stages: dict[str, float] = {}
    tl = _Timeline()
    orig_prepare, orig_cb, orig_tune_config = runner.prepare_inputs, runner._results_callback, ray.tune.TuneConfig

    def timed_prepare(c):
        t = time.perf_counter()
        orig_prepare(c)
        stages["prepare_inputs_s"] = time.perf_counter() - t
        stages["_fit_start"] = time.perf_counter()
        stages["_fit_wall0"] = time.time()

    def callbacks(out, fs=None):       # the runner's results writer plus our marks, as one callback
        writer, marks = orig_cb(out, fs), tl.callback()

        class Both(type(writer)):
            def on_trial_result(self, *a, **k):
                marks.on_trial_result(*a, **k)

            def on_trial_complete(self, *a, **k):
                marks.on_trial_complete(*a, **k)
                super().on_trial_complete(*a, **k)

        return Both()

    def tune_config(**kw):
        return orig_tune_config(**{**kw, "reuse_actors": reuse_actors})

    runner.prepare_inputs, runner._results_callback = timed_prepare, callbacks
    ray.tune.TuneConfig = tune_config
    try:
        t = time.perf_counter()
        # as run_study does, but address="local": always a fresh instance, never another `ray start`
        ray.init(address="local", log_to_driver=False)
        stages["ray_init_s"] = time.perf_counter() - t
        cpus = ray.cluster_resources().get("CPU", 1)
        out = runner.run_study(cells, study="data_efficiency", preset=preset,
                               storage_path=str(workdir / "storage"), name="overhead",
                               results_root=workdir / "results", max_concurrent_trials=concurrency)
        t_end_fit = time.perf_counter()
        t = time.perf_counter()
        ray.shutdown()
        stages["shutdown_s"] = time.perf_counter() - t
    finally:
        runner.prepare_inputs, runner._results_callback = orig_prepare, orig_cb
        ray.tune.TuneConfig = orig_tune_config
    t_end = time.perf_counter()
    stages["tuner_fit_s"] = t_end_fit - stages.pop("_fit_start")   # includes the final reconcile
    fit_wall0 = stages.pop("_fit_wall0")

    rows = read_rows(out)
    conc = concurrency or max(1, int(cpus // max(runner.trial_resources(
        runner.TrialConfig.from_dict(cells[0])).get("CPU", 1), 1)))
    trials = []
    for r in rows.to_dict("records"):
        tid = r["trial_id"]
        first_wall, first_iter = tl.first.get(tid, (float("nan"), 0.0))
        trials.append({
            "trial_id": tid, "model": r["config/model"], "label_fraction": r["config/label_fraction"],
            "n_train": int(r["n_train"]), "train_seconds": round(float(r["train_seconds"]), 3),
            "time_total_s": round(float(r["time_total_s"]), 3),
            # wall offsets from the start of Tuner.fit: when the trial's code began and when Tune saw it end
            "start_at_s": round(first_wall - first_iter - fit_wall0, 2) if tid in tl.first else None,
            "done_at_s": round(tl.done[tid] - fit_wall0, 2) if tid in tl.done else None,
        })
    wall = t_end - T_START
    sum_train = sum(t["train_seconds"] for t in trials)
    sum_total = sum(t["time_total_s"] for t in trials)
    fit = stages["tuner_fit_s"]
    # slot time nobody's trial code used: worker start-up (spawn + imports), scheduling, teardown
    idle = conc * fit - sum_total
    return {
        "preset": preset, "overrides": overrides or {}, "trials": len(trials), "cells": len(cells), "concurrency": conc,
        "reuse_actors": reuse_actors, "cold_cache": cold_cache,
        "wall_s": round(wall, 2), "imports_s": round(t_imports - T_START, 2),
        **{k: round(v, 2) for k, v in stages.items()},
        "sum_train_seconds": round(sum_train, 2), "sum_time_total_s": round(sum_total, 2),
        "fit_idle_slot_s": round(idle, 2),
        "first_trial_code_start_s": min((t["start_at_s"] for t in trials if t["start_at_s"] is not None),
                                        default=None),
        "ratio_train": round(wall / (sum_train / conc), 2),
        "ratio_in_trial": round(wall / (sum_total / conc), 2),
        "sweep_ratio_train": round(fit / (sum_train / conc), 2),
        "sweep_ratio_in_trial": round(fit / (sum_total / conc), 2),
        "target_ratio": 1.3,
        "per_trial": trials,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--concurrency", type=int, default=None, help="max concurrent trials (default: CPUs)")
    ap.add_argument("--no-reuse-actors", dest="reuse_actors", action="store_false")
    ap.add_argument("--cold-cache", action="store_true", help="fresh BEAT_RAY_CACHE: include data preparation")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (longer trials)")
    ap.add_argument("--n-records", type=int, default=None, help="override the preset's synth size")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "ray_overhead.json"))
    a = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ray_overhead_"))
    try:
        overrides = {k: v for k, v in (("epochs", a.epochs), ("n_records", a.n_records)) if v is not None}
        res = run(a.preset, a.concurrency, a.reuse_actors, a.cold_cache, workdir, overrides)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({k: v for k, v in res.items() if k != "per_trial"}, indent=2))
    for t in res["per_trial"]:
        print(f"  {t['trial_id']} {t['model']:>14} frac={t['label_fraction']:<5} train={t['train_seconds']:6.2f}s "
              f"in-trial={t['time_total_s']:6.2f}s runs {t['start_at_s']}..{t['done_at_s']}s into Tuner.fit")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"ratio wall/(in-trial s / concurrency) = {res['ratio_in_trial']} (target <= 1.3); "
          f"optimizer steps only: {res['ratio_train']}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
