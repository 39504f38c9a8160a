"""Benchmark: BEAT-Net against the PTB-XL benchmark's CNNs, per dataset and task, over seeds.

Launch on a cluster (one dataset per job; --data-root is that dataset's folder):
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/benchmark.py --preset paper --data-root /data/ptb-xl/1.0.3 --storage-path s3://bucket/beat-ray
Locally:
    python experiments/benchmark.py --preset smoke
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install

from beat_ray.train.config import TrialConfig  # noqa: E402
from beat_ray.train.study import Models, main  # noqa: E402

BASELINES = ("xresnet1d101", "inception1d", "resnet1d_wang")


@dataclass(frozen=True)
class Benchmark:
    base: TrialConfig
    models: Models
    tasks: tuple[tuple[str, str], ...] = (("synth", "all"),)      # (dataset, task)
    seeds: tuple[int, ...] = (0, 1, 2)

    def cells(self) -> list[dict]:
        return [self.models.config(replace(self.base, dataset=d, task=t), m, seed=s)
                for d, t in self.tasks for m in self.models.names for s in self.seeds]


SMALL_CNN = {"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32},
             "inception1d": {"depth": 3}, "xresnet1d101": {}}
PRESETS = {
    "smoke": Benchmark(base=TrialConfig(n_records=300, epochs=2, batch_size=32),
                       models=Models(("beatnet", "resnet1d_wang"), SMALL_CNN),
                       tasks=(("synth", "superdiagnostic"), ("synth", "rhythm")), seeds=(0,)),
    # xresnet1d101 (1.8 M params) and inception1d are cut on CPU: they train at a fraction of
    # resnet1d_wang's speed and would not fit the 60-minute budget with 3 seeds.
    "cpu": Benchmark(base=TrialConfig(n_records=3000, epochs=12, batch_size=64),
                     models=Models(("beatnet", "resnet1d_wang"), SMALL_CNN),
                     tasks=(("synth", "superdiagnostic"), ("synth", "rhythm"), ("synth", "all"))),
    "paper": Benchmark(base=TrialConfig(epochs=50, batch_size=128, threads=4, use_gpu=True, gpus_per_trial=0.25),
                       models=Models(("beatnet",) + BASELINES, {"beatnet": {"size": "base"}}),
                       tasks=(("ptbxl", "superdiagnostic"), ("ptbxl", "all"), ("ptbxl", "rhythm"))),
}

if __name__ == "__main__":
    sys.exit(main("benchmark", PRESETS))
