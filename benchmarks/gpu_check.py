"""The GPU path on a real CUDA machine, in under 10 minutes: benchmarks/gpu_check.sh runs this.

    benchmarks/gpu_check.sh        # -> benchmarks/out/gpu_check.json

Each step asserts what it claims, and the script stops at the first that does not hold:
1. models: beatnet_tiny, beatnet_base and xresnet1d101, one 1-GPU trial each through `run_study`; every row's
   device is CUDA (no CPU fallback) and the trial was a plain Tune function trial (no TorchTrainer run);
2. host against device time per training step, in this process: CUDA events around forward, backward and the
   optimizer step, against the host's batch building (make_batch), for the same three models;
3. kill-and-resume: the driver SIGKILLed after the trial's first checkpoint, rerun with the same --name; the row
   must say it resumed (iterations_since_restore < training_iteration, i.e. the first report after the restart
   was a later epoch) and end at the last epoch, one row;
4. DDP: with 2 GPUs, a 2-worker NCCL trial (world size 2 in its row, on CUDA); always, the 2-rank gloo test
   that the CNNs train on their 2.5-s crops under the DDP wrapper (tests/test_ddp_ranks.py);
5. four 0.25-GPU trials at once: their run times overlap, and their total samples/s against one such trial
   alone (nvidia-smi utilisation beside it, for reference only: it counts any kernel running).
Never run in CI (no GPU there); exits 2 without CUDA. Commit the JSON from a machine that has one.
"""
from __future__ import annotations

import json
import os
import sys

# this folder holds tokenize.py, which would shadow the standard library's when run as a script
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out" / "gpu_check.json"
BASE = {"dataset": "synth", "task": "all", "n_records": 3000, "batch_size": 64, "threads": 2,
        "use_gpu": True, "gpus_per_trial": 1.0}
MODELS = ("beatnet_tiny", "beatnet_base", "xresnet1d101")
RESUME = {**BASE, "model": "resnet1d_wang", "epochs": 6}
DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
from beat_ray.train.runner import run_study
cells = json.loads(sys.argv[3])
run_study(cells, study="gpu_check", preset=sys.argv[5], storage_path=sys.argv[1], name=sys.argv[5],
          results_root=sys.argv[2], max_concurrent_trials=len(cells))
"""


def gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [x.strip() for x in out.splitlines() if x.strip()]


class Util(threading.Thread):
    """nvidia-smi utilisation.gpu samples (percent, per GPU) every second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[list[int]] = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout
            self.samples.append([int(x) for x in out.split() if x.isdigit()])
            self.halt.wait(1.0)


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"gpu_check: FAILED: {what}")


def sweep(tmp: Path, name: str, cells: list[dict], kill_after_checkpoint: bool = False):
    """Run `cells` as one study (a fresh local Ray in the driver); the rows, and the TorchTrainer runs made."""
    import pandas as pd
    storage, results = tmp / "storage", tmp / "results"
    cmd = [sys.executable, "-c", DRIVER, str(storage), str(results), json.dumps(cells), str(REPO), name]
    t0 = time.perf_counter()
    if kill_after_checkpoint:
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not list(storage.glob(f"{name}/*/checkpoint_*/state.pt")) and time.monotonic() < deadline:
            time.sleep(0.5)
        check(proc.poll() is None, "the trial ended before the kill")
        os.killpg(proc.pid, signal.SIGKILL)        # the driver and the local Ray it started (one group)
        proc.wait()
        time.sleep(5)
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    check(run.returncode == 0, f"{name}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    rows = pd.read_parquet(results / "gpu_check" / name / "trials.parquet")
    return rows, sorted(p.name for p in storage.glob(f"{name}-*")), time.perf_counter() - t0


def summary(rows) -> dict:
    return {"rows": len(rows), "device": sorted(set(rows["device"])), "epochs": rows["epoch"].tolist(),
            "world_size": rows["world_size"].tolist(),
            "samples_per_s": (rows["n_train"] * rows["epoch"] / rows["train_seconds"]).round(1).tolist(),
            "test_macro_auc": rows["test/macro_auc"].round(4).tolist()}


def step_times(model_name: str, steps: int = 40, device: str = "cuda") -> dict:
    """Median host ms (make_batch) and device ms (CUDA events: forward, backward, step) per training step
    (device="cpu": wall ms instead of CUDA events, to try this function where there is no GPU)."""
    import numpy as np
    import torch
    from torch import nn

    from beat_ray.train import loop
    from beat_ray.train.config import TrialConfig
    from beat_ray.train.inputs import build_inputs, load_dataset, make_batch

    cfg = TrialConfig(**{**BASE, "model": model_name, "epochs": 1})
    ds = load_dataset(cfg)
    model = loop.build_model(cfg, len(ds.classes)).to(device)
    data = build_inputs(cfg, model, ds)
    opt, sched = loop.make_optimizer(cfg, model, steps + 5)
    crop, rng, loss_fn = getattr(model, "crop_s", None), np.random.default_rng(0), nn.BCEWithLogitsLoss()
    host, dev = [], []
    for _ in range(steps + 5):
        idx = rng.choice(data.train, cfg.batch_size, replace=False)
        t = time.perf_counter()
        b = make_batch(data, idx, train=True, rng=rng, crop_s=crop)
        host.append(time.perf_counter() - t)
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        y = torch.from_numpy(data.labels[idx].astype(np.float32)).to(device)
        cuda = device.startswith("cuda")
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t = time.perf_counter()
        loss = loss_fn(model(b).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if cuda:
            end.record()
            end.synchronize()
        dev.append(start.elapsed_time(end) / 1000 if cuda else time.perf_counter() - t)
    host, dev = np.array(host[5:]) * 1000, np.array(dev[5:]) * 1000          # the first 5: warm-up
    return {"host_ms_per_step": round(float(np.median(host)), 2), "device_ms_per_step": round(float(np.median(dev)), 2),
            "steps": steps, "batch_size": cfg.batch_size}


def main() -> int:
    names = gpus()
    import torch
    if not names or not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU here (nvidia-smi: {names or 'none'}, torch.cuda.is_available() = "
              f"{torch.cuda.is_available()}); run it on a GPU machine", file=sys.stderr)
        return 2
    from beat_ray.train.results import git_info
    commit, dirty = git_info(str(REPO))
    report: dict = {"gpus": names, "torch": torch.__version__, "cuda": torch.version.cuda, "git_commit": commit,
                    "git_dirty": dirty}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as t:
        tmp = Path(t)
        rows, trainers, wall = sweep(tmp / "models", "models", [{**BASE, "model": m, "epochs": 2} for m in MODELS])
        check(sorted(rows["config/model"]) == sorted(MODELS), f"rows for {MODELS}: {list(rows['config/model'])}")
        check(all(d.startswith("cuda") for d in rows["device"]) and not rows["cpu_fallback"].any(),
              f"every trial on CUDA: {list(rows['device'])}")
        check(trainers == [], f"1-GPU trials are Tune function trials, yet TorchTrainer runs exist: {trainers}")
        report["models"] = {**summary(rows), "models": rows["config/model"].tolist(), "wall_s": round(wall, 1)}

        report["step_times"] = {m: step_times(m) for m in MODELS}

        rows, _, wall = sweep(tmp / "resume", "resume", [RESUME], kill_after_checkpoint=True)
        (row,) = rows.to_dict("records")
        check(row["epoch"] == RESUME["epochs"], f"resumed trial ends at epoch {RESUME['epochs']}: {row['epoch']}")
        check(row["iterations_since_restore"] < row["training_iteration"],
              f"the trial resumed from its checkpoint (iterations since restore {row['iterations_since_restore']}"
              f" of {row['training_iteration']})")
        report["kill_and_resume"] = {**summary(rows), "first_epoch_after_restart":
                                     int(row["training_iteration"] - row["iterations_since_restore"] + 1),
                                     "wall_s": round(wall, 1)}

        if len(names) >= 2:
            rows, trainers, wall = sweep(tmp / "ddp", "ddp", [{**BASE, "model": "resnet1d_wang", "epochs": 2,
                                                                "workers": 2}])
            check(rows["world_size"].tolist() == [2] and rows["device"].iloc[0].startswith("cuda"),
                  f"a 2-rank CUDA trial: {summary(rows)}")
            check(len(trainers) == 1, f"one TorchTrainer run for the DDP trial: {trainers}")
            report["ddp_2_workers"] = {**summary(rows), "wall_s": round(wall, 1)}
        else:
            report["ddp_2_workers"] = f"not run: {len(names)} GPU (NCCL DDP needs a whole GPU per rank)"
        crop = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_ddp_ranks.py::test_ddp_ranks_train_the_cnns_on_their_crops"],
                              cwd=REPO, capture_output=True, text=True)
        check(crop.returncode == 0, f"the DDP crop test:\n{crop.stdout[-2000:]}")
        report["ddp_crop_test"] = crop.stdout.strip().splitlines()[-1]

        one_cell = {**BASE, "model": "beatnet_tiny", "epochs": 3, "gpus_per_trial": 0.25}
        alone, _, _ = sweep(tmp / "alone", "alone", [one_cell])
        util = Util()
        util.start()
        rows, _, wall = sweep(tmp / "quarter", "quarter", [{**one_cell, "seed": s} for s in range(4)])
        util.halt.set()
        util.join()
        end = rows["timestamp"].astype(float)
        start = end - rows["time_total_s"].astype(float)
        check(start.max() < end.min(), f"the four 0.25-GPU trials overlap in time: starts {start.tolist()}, "
                                       f"ends {end.tolist()}")
        samples = float((rows["n_train"] * rows["epoch"]).sum())
        one = float(alone["n_train"].iloc[0] * alone["epoch"].iloc[0] / alone["time_total_s"].iloc[0])
        busy = [s[0] for s in util.samples if s]
        report["four_quarter_gpu_trials"] = {
            **summary(rows), "overlap_s": round(float(end.min() - start.max()), 1),
            "total_samples_per_s": round(samples / float(end.max() - start.min()), 1),
            "one_trial_alone_samples_per_s": round(one, 1),
            "gpu0_util_percent": {"mean": sum(busy) / max(len(busy), 1), "max": max(busy, default=0),
                                  "samples": len(busy)}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
