"""Issue F: autoscaling shown on one machine. Ray's fake multi-node provider (`AutoscalingCluster`)
starts a 0-CPU head and a worker type of 1 CPU with min_workers 0; the shrunk smoke data-efficiency
sweep runs on it; worker nodes must appear while it runs and be gone after the idle timeout.

`AutoscalingCluster.start()` and `.shutdown()` run `ray stop --force`, which kills EVERY Ray instance
on the machine. So this test is marked `autoscaler`, tests/conftest.py runs such tests last, and it
must never run beside another Ray user (`pytest -m "not autoscaler"` skips it).
"""
from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from procs import load_presets

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.autoscaler, pytest.mark.ray, pytest.mark.slow]

IDLE_TIMEOUT_MIN = 0.2            # 12 s: scale-down is checked within a minute or two
MAX_WORKERS = 2
SCALE_DOWN_DEADLINE_S = 120.0
SWEEP_TIMEOUT_S = 900.0
HEAD_KEY = "node:__internal_head__"


def _local_autoscaling_cluster():
    from ray.cluster_utils import AutoscalingCluster

    class LocalAutoscalingCluster(AutoscalingCluster):
        """Ray 2.60's wheel lacks fake_multi_node/example.yaml, which `_generate_config` reads;
        build the same fake-multinode config here instead (../shared/docs/ray-notes.md)."""

        def _generate_config(self, head_resources, worker_node_types, autoscaler_v2=False, **config_kwargs):
            if autoscaler_v2:
                raise NotImplementedError("autoscaler v2 also needs example.yaml on disk")
            config = {
                "cluster_name": "beat-ray-fake",
                "max_workers": sum(t.get("max_workers", 0) for t in worker_node_types.values()),
                "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                             "disable_node_updaters": True, "disable_launch_config_check": True},
                "available_node_types": {
                    **copy.deepcopy(worker_node_types),
                    "ray.head.default": {"resources": dict(head_resources), "node_config": {}, "max_workers": 0},
                },
                "head_node_type": "ray.head.default",
                "auth": {}, "docker": {}, "upscaling_speed": 1.0, "idle_timeout_minutes": 5,
                "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
                "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
                "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
                "rsync_exclude": [], "rsync_filter": [],
            }
            config.update(config_kwargs)
            return config

    return LocalAutoscalingCluster


def _alive_workers() -> int:
    import ray
    return sum(1 for n in ray.nodes() if n["Alive"] and HEAD_KEY not in n["Resources"])


class NodeSampler(threading.Thread):
    """Counts alive worker nodes every `every_s` seconds: [(monotonic time, count), ...]."""

    def __init__(self, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.errors = every_s, [], []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.samples.append((time.monotonic(), _alive_workers()))
            except Exception as e:
                self.errors.append(repr(e))
            self._halt.wait(self.every_s)

    def stop(self):
        self._halt.set()
        self.join(timeout=10)

    def first(self, after: float, pred) -> float | None:
        return next((t for t, n in self.samples if t >= after and pred(n)), None)


@pytest.fixture(scope="module")
def auth_token(tmp_path_factory) -> Path:
    """One token for the module: this process's Ray reads a token once and keeps it (so one per test would
    leave the second test's driver holding the first one's)."""
    token = tmp_path_factory.mktemp("auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    return token


def cluster_env(monkeypatch, token: Path) -> dict[str, str]:
    """This process's environment for a local autoscaling cluster, which `cluster.start(override_env=...)` also
    hands the head: token auth on, as on a user's cluster, with the module's own token (the head, the fake
    provider's worker nodes, started with the head's environment, and this driver all read it), and the venv's
    `ray` on PATH (AutoscalingCluster calls it)."""
    from ray._raylet import Config
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)          # it would win over the token file
    Config.initialize("")           # this process read RAY_AUTH_MODE when it imported ray: read it again
    return env


def test_workers_scale_up_for_a_sweep_and_back_to_zero(beat_ray_cache, tmp_path, monkeypatch, auth_token):
    import ray

    env = cluster_env(monkeypatch, auth_token)

    cells = load_presets("data_efficiency")["smoke"].cells()
    cluster = _local_autoscaling_cluster()(
        head_resources={"CPU": 0},
        worker_node_types={"cpu_worker": {"resources": {"CPU": 1}, "node_config": {},
                                          "min_workers": 0, "max_workers": MAX_WORKERS}},
        idle_timeout_minutes=IDLE_TIMEOUT_MIN,
    )
    sampler = None
    try:
        cluster.start(override_env=env)
        address = f"{ray._private.services.get_node_ip_address()}:6379"
        ray.init(address=address, log_to_driver=False)
        assert ray.cluster_resources().get("CPU", 0) == 0          # the head offers no CPU
        time.sleep(5)
        assert _alive_workers() == 0                                 # min_workers 0: nothing before demand

        sampler = NodeSampler()
        sampler.start()
        res, storage = tmp_path / "results", tmp_path / "storage"
        cmd = [sys.executable, "experiments/data_efficiency.py", "--preset", "smoke",
               "--set", "n_records=300", "--set", "epochs=2",
               "--results-root", str(res), "--storage-path", str(storage), "--name", "autoscale",
               # a 0-CPU cluster would otherwise make run_study pick 1 concurrent trial
               "--max-concurrent-trials", str(MAX_WORKERS)]
        t_start = time.monotonic()
        run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "RAY_ADDRESS": address,
                                                 "BEAT_RAY_CACHE": str(beat_ray_cache)},
                             capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S, check=False)
        t_end = time.monotonic()
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

        deadline = t_end + SCALE_DOWN_DEADLINE_S
        while time.monotonic() < deadline and sampler.first(t_end, lambda n: n == 0) is None:
            time.sleep(1)
        sampler.stop()

        during = [n for t, n in sampler.samples if t_start <= t <= t_end]
        peak = max(during, default=0)
        t_up = sampler.first(t_start, lambda n: n >= 1)
        t_down = sampler.first(t_end, lambda n: n == 0)
        print(f"\nautoscaling: {len(cells)} trials in {t_end - t_start:.1f} s; "
              f"scale-up {t_up - t_start if t_up else float('nan'):.1f} s (sweep start -> first worker alive), "
              f"peak {peak} worker nodes (max {MAX_WORKERS}), "
              f"scale-down {t_down - t_end if t_down else float('nan'):.1f} s (sweep end -> 0 workers, "
              f"idle timeout {IDLE_TIMEOUT_MIN * 60:.0f} s); {len(sampler.samples)} samples, "
              f"{len(sampler.errors)} sampling errors")

        assert not sampler.errors[:3], sampler.errors[:3]
        assert during and during[0] == 0, during[:5]                # it started from zero workers
        assert t_up is not None and t_up <= t_end, "no worker node came up during the sweep"
        assert 1 <= peak <= MAX_WORKERS
        assert t_down is not None, f"workers still alive {SCALE_DOWN_DEADLINE_S:.0f} s after the sweep"

        rows = pd.read_parquet(res / "data_efficiency" / "smoke" / "trials.parquet")
        assert len(rows) == len(cells)
        assert rows["trial_id"].is_unique
        want = sorted((c["model"], c["label_fraction"], c["seed"]) for c in cells)
        got = sorted(zip(rows["config/model"], rows["config/label_fraction"], rows["config/seed"]))
        assert got == want
        assert (rows["config/n_records"] == 300).all() and (rows["epoch"] == 2).all()
        assert rows["test/macro_auc"].between(0, 1).all()
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        ray.shutdown()
        cluster.shutdown()


def test_gpu_trials_make_the_autoscaler_launch_a_gpu_node_type(beat_ray_cache, tmp_path, monkeypatch, auth_token):
    """Issue K: a worker type that declares {"GPU": 1} and starts at zero. A sweep of GPU trials (no
    --gpus-per-trial: the driver sees no GPU now and must look at the autoscaler's node types) makes the
    autoscaler launch that type, the trials train there holding the GPU fraction they asked for, and,
    this machine having no CUDA, run on CPU under --allow-cpu-fallback, which the rows record."""
    import ray

    env = cluster_env(monkeypatch, auth_token)
    cluster = _local_autoscaling_cluster()(
        head_resources={"CPU": 0},
        worker_node_types={"gpu_worker": {"resources": {"CPU": 2, "GPU": 1}, "node_config": {},
                                          "min_workers": 0, "max_workers": 1}},
        idle_timeout_minutes=IDLE_TIMEOUT_MIN,
    )
    seen_gpu_nodes: set[str] = set()
    halt = threading.Event()

    def sample():
        while not halt.is_set():
            try:
                seen_gpu_nodes.update(n["NodeID"] for n in ray.nodes()
                                      if n["Alive"] and n["Resources"].get("GPU", 0) > 0)
            except Exception:
                pass
            halt.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        cluster.start(override_env=env)
        address = f"{ray._private.services.get_node_ip_address()}:6379"
        ray.init(address=address, log_to_driver=False)
        assert ray.cluster_resources().get("GPU", 0) == 0          # no GPU now: only the autoscaler has one
        sampler.start()
        cells = [{"dataset": "synth", "task": "all", "n_records": 120, "epochs": 1, "batch_size": 32,
                  "threads": 1, "model": "resnet1d_wang", "model_kwargs": {"width": 16}, "seed": s,
                  "use_gpu": True, "gpus_per_trial": 0.5} for s in (0, 1)]
        cmd = [sys.executable, "tests/sweep_driver.py", str(tmp_path / "storage"), str(tmp_path / "results"),
               json.dumps(cells), "--connect", "--allow-cpu-fallback", "--max-concurrent", "0"]
        run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "RAY_ADDRESS": address,
                                                 "BEAT_RAY_CACHE": str(beat_ray_cache)},
                             capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S, check=False)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        assert "devices: 2 of 2 trials on GPU ([0.5] per worker); cluster: 0 GPUs now, up to 1" in run.stdout, \
            run.stdout[-3000:]
        halt.set()
        sampler.join(timeout=10)
        assert seen_gpu_nodes, "the autoscaler never launched the GPU node type"
        rows = pd.read_parquet(tmp_path / "results" / "faults" / "test" / "trials.parquet")
        assert len(rows) == 2
        assert set(rows["train_node_id"]) <= seen_gpu_nodes, (set(rows["train_node_id"]), seen_gpu_nodes)
        assert (rows["gpu_fraction"] == 0.5).all() and rows["config/use_gpu"].all()
        assert (rows["device"] == "cpu").all() and rows["cpu_fallback"].all()
    finally:
        halt.set()
        ray.shutdown()
        cluster.shutdown()
