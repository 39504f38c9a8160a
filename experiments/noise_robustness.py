"""Noise robustness: train on clean records, score the same best checkpoints under noise.

Each noise type (NSTDB-style baseline wander, muscle, electrode motion, plus powerline and white)
is added to the raw test signal at SNR 24, 18, 12, 6, 0 and -6 dB; tokens models are re-tokenised
from the noisy signal, so the tokenizer is in the loop. The noise draw is the same for every model.
To train with noise augmentation instead, override the base config:
    python experiments/noise_robustness.py --preset cpu --set train_noise=ma:12 --name noise-aug

Launch on a cluster:
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/noise_robustness.py --preset paper --data-root /data/ptb-xl/1.0.3 --storage-path s3://bucket/beat-ray
Locally:
    python experiments/noise_robustness.py --preset smoke
    python experiments/noise_robustness.py --preset real --name noise-real   # the shared real PTB-XL subset

`--preset real` (superdiagnostic, fold rotation at one seed, 15 epochs, 5 types x 6 SNRs) has not
been run yet: estimated from the benchmark's measured per-epoch costs and the tokenizer's
records/s at about 35 minutes on this 2-core machine (issue J replaces the noise model first).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require  # noqa: E402

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.data.noise import NOISE_TYPES, NSTDB_SNRS  # noqa: E402
from beat_ray.train.config import TrialConfig  # noqa: E402
from beat_ray.train.study import Models, fold_seeds, main, shared_ptbxl  # noqa: E402


@dataclass(frozen=True)
class NoiseRobustness:
    base: TrialConfig
    models: Models
    noise_types: tuple[str, ...] = NOISE_TYPES
    snrs: tuple[float, ...] = NSTDB_SNRS
    seeds: tuple[int, ...] = (0, 1, 2)
    rotate: bool = False                 # fold rotation (see study.fold_seeds); False = official split

    def cells(self) -> list[dict]:
        specs = tuple(f"{k}:{s:g}" for k in self.noise_types for s in self.snrs)
        base = replace(self.base, eval_noise=specs)
        return [self.models.config(base, m, seed=s, test_fold=k)
                for m in self.models.names for k, s in fold_seeds(self.rotate, self.seeds)]


TINY = {"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32}}
PRESETS = {
    "smoke": NoiseRobustness(base=TrialConfig(n_records=300, epochs=2, batch_size=32),
                             models=Models(("beatnet", "resnet1d_wang"), TINY),
                             noise_types=("bw", "ma"), snrs=(24.0, 0.0), seeds=(0,)),
    "cpu": NoiseRobustness(base=TrialConfig(n_records=3000, epochs=12, batch_size=64),
                           models=Models(("beatnet", "resnet1d_wang"), TINY)),
    "real": NoiseRobustness(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic",
                                             epochs=15, batch_size=64, threads=1),
                            models=Models(("xresnet1d101", "resnet1d_wang", "beatnet")), seeds=(0,), rotate=True),
    "paper": NoiseRobustness(base=TrialConfig(dataset="ptbxl", task="superdiagnostic", epochs=50, batch_size=128,
                                              threads=4, use_gpu=True, gpus_per_trial=0.25),
                             models=Models(("beatnet", "xresnet1d101", "inception1d"), {"beatnet": {"size": "base"}})),
}

if __name__ == "__main__":
    sys.exit(main("noise_robustness", PRESETS))
