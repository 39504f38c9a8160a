"""The GPU path on a real CUDA machine, in under 10 minutes: benchmarks/gpu_check.sh runs this.

    benchmarks/gpu_check.sh        # -> benchmarks/out/gpu_check.json

1. one GPU trial (resnet1d_wang on synth, 1 GPU): device, samples/s;
2. kill-and-resume: the same sweep's driver SIGKILLed after its first checkpoint, then rerun with the
   same --name: the trial must finish from its checkpoint on the GPU (the optimizer state moved with
   the model: loop.restore) with exactly one row;
3. a 2-worker DDP trial (NCCL), if 2 GPUs exist;
4. four concurrent 0.25-GPU trials: GPU utilisation sampled with nvidia-smi, samples/s per trial.
Never run in CI (no GPU there); commit the JSON from a machine that has one.
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
OUT = REPO / "benchmarks" / "out" / "gpu_check.json"
CELL = {"dataset": "synth", "task": "all", "n_records": 3000, "batch_size": 64, "threads": 2,
        "model": "resnet1d_wang", "model_kwargs": {"width": 64}, "use_gpu": True, "gpus_per_trial": 1.0}
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


def sweep(tmp: Path, name: str, cells: list[dict], kill_after_checkpoint: bool = False) -> dict:
    storage, results = tmp / "storage", tmp / "results"
    cmd = [sys.executable, "-c", DRIVER, str(storage), str(results), json.dumps(cells), str(REPO), name]
    t0 = time.perf_counter()
    killed = False
    if kill_after_checkpoint:
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not list(storage.glob(f"{name}-*/checkpoint_*/state.pt")) and time.monotonic() < deadline:
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)        # the driver and the local Ray it started (one group)
        proc.wait()
        killed = True
        time.sleep(5)
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    import pandas as pd
    rows = pd.read_parquet(results / "gpu_check" / name / "trials.parquet")
    return {"wall_s": time.perf_counter() - t0, "killed_and_resumed": killed, "rows": len(rows),
            "device": sorted(set(rows["device"])), "epochs": rows["epoch"].tolist(),
            "samples_per_s": (rows["n_train"] * rows["epoch"] / rows["train_seconds"]).round(1).tolist(),
            "test_macro_auc": rows["test/macro_auc"].round(4).tolist()}


def main() -> int:
    names = gpus()
    import torch
    if not names or not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU here (nvidia-smi: {names or 'none'}, torch.cuda.is_available() = "
              f"{torch.cuda.is_available()}); run it on a GPU machine", file=sys.stderr)
        return 2
    report = {"gpus": names, "torch": torch.__version__, "cuda": torch.version.cuda}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as t:
        tmp = Path(t)
        report["one_trial"] = sweep(tmp / "one", "one", [{**CELL, "epochs": 3}])
        report["kill_and_resume"] = sweep(tmp / "resume", "resume", [{**CELL, "epochs": 6}],
                                          kill_after_checkpoint=True)
        assert report["kill_and_resume"]["rows"] == 1 and report["kill_and_resume"]["epochs"] == [6]
        if len(names) >= 2:
            report["ddp_2_workers"] = sweep(tmp / "ddp", "ddp", [{**CELL, "epochs": 3, "workers": 2}])
        util = Util()
        util.start()
        report["four_quarter_gpu_trials"] = sweep(tmp / "quarter", "quarter",
                                                  [{**CELL, "epochs": 3, "seed": s, "gpus_per_trial": 0.25}
                                                   for s in range(4)])
        util.halt.set()
        util.join()
        busy = [s[0] for s in util.samples if s]
        report["four_quarter_gpu_trials"]["gpu0_util_percent"] = {
            "mean": sum(busy) / max(len(busy), 1), "max": max(busy, default=0), "samples": len(busy)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
