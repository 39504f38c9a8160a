"""Ablations: BEAT-Net with each of its mechanisms removed, one registered name each.

  beatnet_no_morphology  beat CNN -> linear projection of the window (keeps the shape: the MLPs can read it)
  beatnet_no_shape       beat CNN -> each window's mean level (no beat shape), like the two removals below
  beatnet_no_spatial     no lead embedding or lead attention: leads averaged
  beatnet_no_temporal    no rhythm transformer: masked mean over beats
  beatnet_patch          fixed patches instead of QRS-aligned beat tokens (no tokenization)

On synth (the positive control) each removal should cost AUC on the class group designed for it
(rhythm, morphology, territory); the report's Table 2 shows the drop per group. `--preset cpu` (graded
synth, generator 2; 15 trials) measured 11.5 min wall at commit 21e9262 (2026-12-02), and beatnet_no_shape's
3 trials 1 min at 8f022ac (`--models beatnet_no_shape`; so the whole preset is about 13 min). There the rhythm
and territory controls hold; the morphology one holds against no_shape and fails against the linear window
map, which beats BeatCNN. On real PTB-XL
(`--preset real`: superdiagnostic, fold rotation, the benchmark real preset's budget of 15 epochs)
Table 2 shows each variant's pooled macro-AUC and its paired difference to beatnet.
`--preset real` (60 trials, 2 at a time, 1 thread each) measured on this 2-core machine: 17.5 min of
running time (commit c3de1ff, 2026-12-01), in two parts: Ray's OOM killer stopped the first run at
trial 44 of 60 (reused trial actors kept every trial's freed heap; fixed since by
`tune_fn.release_memory`), and the same command with the same `--name` resumed the last 16. beatnet_no_shape's 12 trials (no CNN) took
1.1 min at 8f022ac, added with `--models beatnet_no_shape`. Seeds 1-2 on folds 1-9 (issue 34: 108 trials, the same
command and --name `ablations-real`): 30.4 min in one launch at 6faf941 (2026-12-07). Complete, 6 variants x 10
folds x 3 seeds: about 50 min over four launches.

Launch on a cluster:
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/ablations.py --preset paper --data-root /data/ptb-xl/1.0.3 --storage-path s3://bucket/beat-ray
Locally:
    python experiments/ablations.py --preset smoke
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.train.config import TrialConfig
from beat_ray.train.study import Models, fold_seeds, main, shared_ptbxl

VARIANTS = ("beatnet", "beatnet_no_morphology", "beatnet_no_shape", "beatnet_no_spatial", "beatnet_no_temporal",
            "beatnet_patch")


@dataclass(frozen=True)
class Ablations:
    base: TrialConfig
    models: Models
    seeds: tuple[int, ...] = (0, 1, 2)
    rotate: bool = False                 # fold rotation (see study.fold_seeds); False = official split

    def cells(self) -> list[dict]:
        return [self.models.config(self.base, m, seed=s, test_fold=k)
                for m in self.models.names for k, s in fold_seeds(self.rotate, self.seeds)]


def _sized(size: str) -> Models:
    return Models(VARIANTS, {v: {"size": size} for v in VARIANTS})


PRESETS = {
    "smoke": Ablations(base=TrialConfig(dataset="synth", task="all", n_records=300, epochs=2, batch_size=32),
                       models=_sized("tiny"), seeds=(0,)),
    "cpu": Ablations(base=TrialConfig(dataset="synth", task="all", n_records=3000, epochs=12, batch_size=64),
                     models=_sized("tiny")),
    "real": Ablations(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic", epochs=15,
                                       batch_size=64, threads=1),
                      models=_sized("tiny"), rotate=True),
    "paper": Ablations(base=TrialConfig(dataset="ptbxl", task="superdiagnostic", epochs=50, batch_size=128,
                                        threads=4, use_gpu=True, gpus_per_trial=0.25),
                       models=_sized("base")),
}

if __name__ == "__main__":
    sys.exit(main("ablations", PRESETS))
