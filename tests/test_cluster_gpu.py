"""Issue K: the GPU cluster path as users run it, proved on a CPU machine.

The GPU decision comes from the cluster (declared or autoscalable GPUs, or --gpus-per-trial), never
from the driver's CUDA; a trial given a GPU without CUDA fails clearly or falls back on request and
says so in its row; resume puts optimizer state on the model's device; checkpoints are bounded; the
data are prepared once and copied to a node once; fractional GPUs with DDP are refused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from beat_ray.train.config import TrialConfig
from beat_ray.train.devices import (
    Capacity,
    autoscaler_config,
    cluster_capacity,
    decide_gpu,
    max_concurrent,
)
from beat_ray.train.loop import build_model, make_optimizer, restore
from beat_ray.train.tune_fn import CHECKPOINTS_KEPT, worker_resources

REPO = Path(__file__).resolve().parents[1]
SMALL = {"dataset": "synth", "task": "all", "n_records": 120, "batch_size": 32, "threads": 1,
         "model": "resnet1d_wang", "model_kwargs": {"width": 16}}


# ------------------------------------------------------------------ decisions (no Ray)
def test_gpu_decision_comes_from_the_cluster_not_the_driver():
    want = [TrialConfig(use_gpu=True, gpus_per_trial=0.25, threads=4).to_dict()]
    cpu_only = Capacity(({"CPU": 8},), "alive nodes only")
    with pytest.raises(SystemExit, match="has no GPU and can autoscale to none.*--gpus-per-trial 0"):
        decide_gpu(want, cpu_only, None)
    assert decide_gpu(want, cpu_only, 0)[0]["use_gpu"] is False                   # explicit CPU
    autoscalable = Capacity(({"CPU": 0},) + ({"CPU": 4, "GPU": 1},) * 6, "head + autoscaler node types")
    kept = decide_gpu(want, autoscalable, None)[0]
    assert kept["use_gpu"] is True and kept["gpus_per_trial"] == 0.25               # no downgrade
    forced = decide_gpu([TrialConfig().to_dict()], cpu_only, 0.5, allow_cpu_fallback=True)[0]
    assert forced["use_gpu"] and forced["gpus_per_trial"] == 0.5 and forced["allow_cpu_fallback"]


def test_concurrency_counts_gpus_and_what_the_autoscaler_can_add():
    cfg = yaml.safe_load((REPO / "cluster" / "aws.yaml").read_text())
    os.environ["BEAT_RAY_AUTOSCALER_CONFIG"] = str(REPO / "cluster" / "aws.yaml")
    try:
        found, where = autoscaler_config()
    finally:
        os.environ.pop("BEAT_RAY_AUTOSCALER_CONFIG")
    assert found == cfg and where.endswith("aws.yaml")
    head = cfg["head_node_type"]
    nodes = tuple(dict(t["resources"]) for k, t in cfg["available_node_types"].items() if k != head
                  for _ in range(t["max_workers"]))
    cap = Capacity(nodes, "test")
    paper = TrialConfig(use_gpu=True, gpus_per_trial=0.25, threads=4)
    # per node: min(CPU // 4, GPU // 0.25), summed over every launchable worker, whatever runs now
    want = sum(min(int(n["CPU"] // 4), int(n.get("GPU", 0) // 0.25)) for n in nodes)
    assert max_concurrent([(worker_resources(paper), 1)], cap) == want > 1
    # a 0-CPU head and no workers yet no longer means one trial at a time
    assert max_concurrent([(worker_resources(paper), 1)], Capacity(({"CPU": 0},), "now")) == 1
    assert want > max_concurrent([(worker_resources(paper), 1)], Capacity(({"CPU": 0},), "now"))


def test_fractional_gpus_with_ddp_are_refused():
    with pytest.raises(ValueError, match="fractional GPUs would put several DDP"):
        TrialConfig(use_gpu=True, workers=2, gpus_per_trial=0.5)
    TrialConfig(use_gpu=True, workers=2, gpus_per_trial=1.0)                          # whole GPUs: fine
    TrialConfig(use_gpu=True, workers=1, gpus_per_trial=0.25)                         # one rank: fine
    run = subprocess.run([sys.executable, "experiments/data_efficiency.py", "--preset", "paper",
                          "--set", "workers=2", "--data-root", str(REPO)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "fractional GPUs would put several DDP" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_resume_puts_optimizer_state_on_the_model_device():
    """A checkpoint written on one device, restored to a model on another ('meta' stands in for a GPU on
    this CPU-only machine): every optimizer state tensor must live on the parameters' device."""
    cfg = TrialConfig(**SMALL, epochs=2)
    model = build_model(cfg, 5)
    opt, sched = make_optimizer(cfg, model, 10)
    model(torch.randn(2, 12, 250)).sum().backward()
    opt.step()
    sched.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}

    def moments(o):
        return [v for st in o.state.values() for v in st.values() if torch.is_tensor(v) and v.dim() > 0]

    m2 = build_model(cfg, 5).to("meta")             # as in fit: the model goes to its device, then the optimizer
    o2, s2 = make_optimizer(cfg, m2, 10)
    restore(m2, o2, s2, state, torch.device("meta"))
    assert {p.device.type for p in m2.parameters()} == {"meta"}
    assert moments(o2) and {v.device.type for v in moments(o2)} == {"meta"}
    # the old order (load, then move the model) leaves the moments behind: what failed on GPUs
    m3 = build_model(cfg, 5)
    o3, _ = make_optimizer(cfg, m3, 10)
    m3.load_state_dict(state["model"])
    o3.load_state_dict(state["optimizer"])
    m3.to("meta")
    assert {v.device.type for v in moments(o3)} == {"cpu"}


def test_capacity_of_a_local_instance_with_a_declared_gpu():
    import ray
    ray.init(address="local", num_cpus=1, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        cap = cluster_capacity()
        assert cap.gpus_now == 1 and cap.gpus_max == 1
        cell = TrialConfig(use_gpu=True, gpus_per_trial=0.5).to_dict()
        assert decide_gpu([cell], cap, None)[0]["use_gpu"] is True
    finally:
        ray.shutdown()


# ------------------------------------------------------------------ real sweeps (subprocess drivers)
def _driver(tmp: Path, cells: list[dict], *args: str, env: dict | None = None, timeout: int = 600):
    cmd = [sys.executable, "tests/sweep_driver.py", str(tmp / "storage"), str(tmp / "results"), json.dumps(cells),
           *args]
    e = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    e.pop("RAY_ADDRESS", None)
    return subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=timeout)


def _rows(tmp: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp / "results" / "faults" / "test" / "trials.parquet")


@pytest.mark.ray
def test_declared_gpu_head_gives_gpu_trials_that_fail_clearly_or_fall_back(tmp_path, beat_ray_cache):
    cell = {**SMALL, "epochs": 1, "use_gpu": True, "gpus_per_trial": 0.5}
    run = _driver(tmp_path / "a", [cell], "2", "--num-gpus", "1", "--max-failures", "0")
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "devices: 1 of 1 trials on GPU" in out                        # the driver did not downgrade
    assert "given 0.5 GPU by Ray but torch finds no CUDA device" in out, out[-3000:]
    run = _driver(tmp_path / "b", [cell], "2", "--num-gpus", "1", "--allow-cpu-fallback")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    (row,) = _rows(tmp_path / "b").to_dict("records")
    assert row["config/use_gpu"] and row["gpu_fraction"] == 0.5
    assert row["device"] == "cpu" and row["cpu_fallback"] and row["config/allow_cpu_fallback"]
    # one GPU (a fraction) is a plain Tune function trial: no TorchTrainer run beside the experiment
    storage = tmp_path / "b" / "storage"
    assert (storage / "faults").is_dir() and sorted(p.name for p in storage.glob("faults-*")) == []
    assert row["world_size"] == 1


@pytest.mark.ray
def test_checkpoints_bounded_per_cell_resources_and_bytes_reported(tmp_path, beat_ray_cache):
    """A 5-epoch function trial and a 5-epoch 2-worker TorchTrainer trial in one sweep (per-cell resources):
    each keeps CHECKPOINTS_KEPT checkpoints, and each row says how many bytes its trial stored."""
    cells = [{**SMALL, "epochs": 5, "seed": 0}, {**SMALL, "epochs": 5, "seed": 1, "workers": 2}]
    run = _driver(tmp_path, cells, "3", "--max-concurrent", "1")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    rows = _rows(tmp_path).sort_values("config/workers")
    assert list(rows["config/workers"]) == [1, 2] and (rows["epoch"] == 5).all()
    storage = tmp_path / "storage"
    fn_trial = [p for p in (storage / "faults").iterdir() if p.is_dir() and p.name.startswith("trainable_")]
    counts = {p.name: sum(c.is_dir() for c in p.glob("checkpoint_*")) for p in fn_trial}
    assert sorted(counts.values()) == [0, CHECKPOINTS_KEPT], counts         # the DDP trial's live in Train's run
    (train_run,) = storage.glob("faults-*")
    assert sum(c.is_dir() for c in train_run.glob("checkpoint_*")) == CHECKPOINTS_KEPT
    assert (rows["storage_bytes"] > 0).all()
    print("\nstored per trial (bytes):", dict(zip(rows["config/workers"], rows["storage_bytes"])))


@pytest.mark.ray
def test_data_prepared_once_and_copied_to_a_node_once(tmp_path):
    """The driver prepares into its cache and publishes it beside the sweep (a file:// storage URI here,
    s3:// on a cluster); the trials' node cache starts empty: the first trial copies, the second reads
    the node's copy, nobody prepares again, and rows and trial logs say where each read its data."""
    driver_cache, node_cache = tmp_path / "driver_cache", tmp_path / "node_cache"
    cells = [{**SMALL, "epochs": 1, "seed": s} for s in (0, 1)]
    cmd = [sys.executable, "tests/sweep_driver.py", f"file://{tmp_path}/storage", str(tmp_path / "results"),
           json.dumps(cells)]
    ray_tmp = Path(tempfile.mkdtemp(prefix="rayc_", dir="/tmp"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "BEAT_RAY_CACHE": str(driver_cache),
           "BEAT_RAY_TRIAL_CACHE": str(node_cache), "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "published to file://" in run.stdout
    rows = _rows(tmp_path)
    origins = sorted(rows["data_origin"])
    assert len(origins) == 2 and origins[0].startswith("copied from file://") and \
        origins[1].startswith("local cache " + str(node_cache)), origins
    assert not any(o.startswith("prepared") for o in origins)
    (ds_dir,) = [p for p in node_cache.iterdir() if p.is_dir()]
    assert (ds_dir / "meta.json").is_file() and (ds_dir / "signals.npy").is_file()
    logs = "".join(p.read_text(errors="replace") for p in ray_tmp.rglob("worker-*.out"))
    assert f"beat-ray: dataset cache copied from file://{tmp_path}/storage" in logs
    assert logs.count("beat-ray: trial data: ") == 2
