"""What a one-GPU trial saves by being a plain Tune function trial instead of a one-worker TorchTrainer.

    python benchmarks/trial_startup.py [--repeats 3] [--out benchmarks/out/trial_startup.json]

Until issue 36 every GPU trial, a 0.25-GPU one included, started a Train V2 `TorchTrainer` inside its Tune
function (beat_ray/train/tune_fn.py); now only `workers > 1` does. This times the difference on a fresh local
Ray instance, with nothing else in the trial: one Tune trial whose code reports once (a) from the Tune
function itself, (b) from the single worker of a TorchTrainer that the Tune function starts (gloo, CPU, as
`trainable` did). Per repeat: seconds from `Tuner.fit` to the trial's first result, and `Tuner.fit`'s wall.
On a GPU node (b) also builds a CUDA context in the Train worker; that is not measured here.
"""
from __future__ import annotations

import sys
import time

sys.path[:] = [p for p in sys.path if p != __file__.rsplit("/", 1)[0] and p != "benchmarks"]

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _function_trial(config: dict) -> None:
    from ray import tune
    tune.report({"started": time.time()})


def _worker(config: dict) -> None:
    import ray.train
    ray.train.report({"started": time.time()})


def _torchtrainer_trial(config: dict) -> None:
    from ray import tune
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    ctx = tune.get_context()
    TorchTrainer(_worker, scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
                 torch_config=TorchConfig(backend="gloo"),
                 run_config=RunConfig(name=f"{ctx.get_experiment_name()}-{ctx.get_trial_id()}",
                                      storage_path=ctx.get_storage().storage_fs_path,
                                      callbacks=[TuneReportCallback()])).fit()


def one(kind: str, storage: Path, i: int) -> dict:
    from ray import tune

    fn = (tune.with_resources(_function_trial, {"CPU": 1}) if kind == "function"
          else tune.with_resources(_torchtrainer_trial, {"CPU": 0.01}))      # as trial_resources asks for each
    t0 = time.time()
    grid = tune.Tuner(fn, run_config=tune.RunConfig(name=f"{kind}-{i}", storage_path=str(storage), verbose=0)).fit()
    wall = time.time() - t0
    (res,) = list(grid)
    return {"first_result_s": round(res.metrics["started"] - t0, 2), "fit_wall_s": round(wall, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "trial_startup.json"))
    a = ap.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs: dict[str, list[dict]] = {"function": [], "torchtrainer": []}
    with tempfile.TemporaryDirectory() as tmp:
        one("function", Path(tmp), -1)                         # warm the worker pool and imports once
        for i in range(a.repeats):
            for kind in runs:
                runs[kind].append(one(kind, Path(tmp), i))
    ray.shutdown()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("first_result_s", "fit_wall_s")}
           for k, v in runs.items()}
    from beat_ray.train.results import git_info
    commit, dirty = git_info(str(REPO))
    out = {"command": "python benchmarks/trial_startup.py " + " ".join(sys.argv[1:]), "git_commit": commit,
           "git_dirty": dirty, "ray": ray.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
           "repeats": a.repeats, "runs": runs, "median": med,
           "saved_per_trial_s": round(med["torchtrainer"]["first_result_s"] - med["function"]["first_result_s"], 2)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["median"]), f"saved per trial: {out['saved_per_trial_s']} s -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
