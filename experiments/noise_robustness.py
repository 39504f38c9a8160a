"""Noise robustness: train on clean records, score the same best checkpoints under electrode noise.

Noise (issue J, `beat_ray.data.electrodes`) is drawn on the nine electrodes and the 12 leads are formed by
the lead equations, so leads that share an electrode share its noise: baseline wander (limb and chest
sources), electrode motion (one or two electrodes), muscle and white noise (per electrode), powerline
(common mode through a small impedance mismatch). SNR is nst(1)'s, from the clean record's QRS amplitude,
at 24, 18, 12, 6, 0 and -6 dB. One realisation per (record, type), seeded by data_seed and scaled to each
SNR, so every model sees the same noisy records; tokens models are re-tokenised from the noisy signal, so
the tokenizer is in the loop. Per-record scores under every spec go into the predictions files and
Table 5 / Fig. 2 pair each model with beatnet. At 100 Hz powerline is added at 500 Hz and decimated with
the standard anti-alias filter, which removes it, as in a real 100-Hz record (the caption says so).

Real NSTDB noise records instead of generated bw, em and ma:
    python experiments/noise_robustness.py --preset real --set noise_source=nstdb:/data/nstdb --name noise-nstdb
To train with noise augmentation instead, override the base config:
    python experiments/noise_robustness.py --preset cpu --set train_noise=ma:12 --name noise-aug

Launch on a cluster:
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/noise_robustness.py --preset paper --data-root /data/ptb-xl/1.0.3 --storage-path s3://bucket/beat-ray
Locally:
    python experiments/noise_robustness.py --preset smoke
    python experiments/noise_robustness.py --preset real --name noise-real   # the shared real PTB-XL subset
    python experiments/noise_robustness.py --preset cpu --name noise-cpu     # synth

`--preset real`: superdiagnostic, fold rotation at seeds 0, 1, 2 (every record tested once per seed), 15 epochs,
xresnet1d101, resnet1d_wang and beatnet, 5 types x 6 SNRs: 90 trials. Seed 0's 30 trials measured 52 min (3,128 s) on this
2-core machine at 4afa72a (2 trials at a time; the noisy scoring adds 60-200 s per trial) for seed 0.
Seeds 1-2: beatnet and resnet1d_wang 40 trials, 1,733 s = 28.9 min at 84c846f (`--name noise-real-seeds
--models beatnet,resnet1d_wang`); xresnet1d101 20 trials, 1,265 s = 21.1 min at 112f760 (`--name
noise-real-seeds-xresnet --models xresnet1d101`). Complete: 90 trials, about 102 min in three launches.
`--preset cpu`: synth, 3000 records, 3 seeds on the official split, the same three models: 9 trials,
measured 18.3 min (1,100 s) on the graded synth (generator 2) at 20488e3, alone on this 2-core machine.

BEAT-Net with the opt-in quality-selected detector (tokenize/select.py), as its own arm of the same folder
(rows labelled `beatnet (select detector)`, paired with plain beatnet on the same records and noise):
    python experiments/noise_robustness.py --preset real --models beatnet --set detector=select --name noise-real-select
    python experiments/noise_robustness.py --preset cpu --models beatnet --set detector=select --name noise-cpu-select
measured 13.1 min (787 s, 10 trials at seed 0 when the preset had one seed) and 19.2 min (1,151 s, 3 trials)
with a fresh token cache at 891b22c, one after the other on this 2-core machine (the 5f43066 rows they replace:
13.4 and 14.5 min). The real arm's seeds 1-2: 20 trials, 1,254 s = 20.9 min at 82f2517 (`--name
noise-real-select-seeds`; a name keeps its grid).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.data.noise import NOISE_TYPES, NSTDB_SNRS
from beat_ray.train.config import TrialConfig
from beat_ray.train.study import Models, fold_seeds, main, shared_ptbxl


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
                           models=Models(("beatnet", "resnet1d_wang", "xresnet1d101"), TINY)),
    "real": NoiseRobustness(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic",
                                             epochs=15, batch_size=64, threads=1),
                            models=Models(("xresnet1d101", "resnet1d_wang", "beatnet")), rotate=True),
    "paper": NoiseRobustness(base=TrialConfig(dataset="ptbxl", task="superdiagnostic", epochs=50, batch_size=128,
                                              threads=4, use_gpu=True, gpus_per_trial=0.25),
                             models=Models(("beatnet", "xresnet1d101", "inception1d"), {"beatnet": {"size": "base"}})),
}

if __name__ == "__main__":
    sys.exit(main("noise_robustness", PRESETS))
