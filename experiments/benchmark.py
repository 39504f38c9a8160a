"""Benchmark: BEAT-Net against the PTB-XL benchmark's CNNs, per dataset and task, over seeds.

Launch on a cluster (the paper preset covers PTB-XL, CPSC2018 and Chapman: one root per dataset):
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/benchmark.py --preset paper --storage-path s3://bucket/beat-ray \
        --data-root ptbxl=/data/ptb-xl/1.0.3,cpsc2018=/data/cpsc2018,chapman=/data/chapman
Locally:
    python experiments/benchmark.py --preset smoke
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
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
    # model -> the only (dataset, task) pairs it runs on; models not named run on every task
    only: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def cells(self) -> list[dict]:
        return [self.models.config(replace(self.base, dataset=d, task=t), m, seed=s)
                for d, t in self.tasks for m in self.models.names for s in self.seeds
                if (d, t) in self.only.get(m, self.tasks)]


SMALL_CNN = {"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32},
             "inception1d": {"depth": 3}, "xresnet1d101": {}}
PRESETS = {
    "smoke": Benchmark(base=TrialConfig(n_records=300, epochs=2, batch_size=32),
                       models=Models(("beatnet", "resnet1d_wang"), SMALL_CNN),
                       tasks=(("synth", "superdiagnostic"), ("synth", "rhythm")), seeds=(0,)),
    # Measured at 1 thread on 2.5-s crops (train samples/s): resnet1d_wang w32 713, beatnet tiny
    # ~470, xresnet1d101 105, inception1d depth 3 64 (default depth 29). xresnet1d101 runs on the
    # "all" task only (3 trials, ~6 min each); inception1d is cut: 9 trials at 64 samples/s would
    # take ~40 min of the 2 cores on their own and break the ~60-minute budget.
    "cpu": Benchmark(base=TrialConfig(n_records=3000, epochs=12, batch_size=64),
                     models=Models(("beatnet", "resnet1d_wang", "xresnet1d101"), SMALL_CNN),
                     tasks=(("synth", "superdiagnostic"), ("synth", "rhythm"), ("synth", "all")),
                     only={"xresnet1d101": (("synth", "all"),)}),
    "paper": Benchmark(base=TrialConfig(epochs=50, batch_size=128, threads=4, use_gpu=True, gpus_per_trial=0.25),
                       models=Models(("beatnet",) + BASELINES, {"beatnet": {"size": "base"}}),
                       tasks=(("ptbxl", "superdiagnostic"), ("ptbxl", "all"), ("ptbxl", "rhythm"),
                              ("cpsc2018", "all"), ("chapman", "rhythm"))),
}

if __name__ == "__main__":
    sys.exit(main("benchmark", PRESETS))
