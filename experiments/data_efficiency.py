"""Data efficiency: macro-AUC against the fraction of labelled training records, at a matched budget.

The paper claims full-data performance from 30-35% of the labels. Label fractions are nested
(5% inside 10% inside ...), every class is present in each, and validation and test stay fixed.

Budget (`budget=matched`, issue I): every fraction takes the same number of optimizer steps as the
100% run. An epoch is as many steps as one pass over the whole training split, drawn from 1/f
passes over the labelled subset (at most 20 passes, `config.MAX_BUDGET_SCALE`); the one-cycle
schedule spans the same steps; validation runs after each of the `epochs` epochs, so every
fraction also gets the same number of model-selection checkpoints. Rows record `optimizer_steps`.
A subset smaller than one batch trains in batches of the whole subset (real, 5%: about 39 records),
so the matched quantity is steps, not samples seen.
The validation split stays full size (the whole validation fold, labelled) at every fraction, so
selection is not noisier at small f: the fraction limits the *training* labels only.

Recovery (Table 3, Fig. 1) is a paired non-inferiority test: Δ(f) = AUC(f) − AUC(100%) on the same
test records and seeds, bootstrapped over records and seeds (report/efficiency.py); f recovers when
the lower 95% bound of Δ(f) is above −m (m = 0.01 unless `--margin` says otherwise).

Launch on a cluster:
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/data_efficiency.py --preset paper --data-root /data/ptb-xl/1.0.3 \
        --storage-path s3://bucket/beat-ray
Locally:
    python experiments/data_efficiency.py --preset smoke        # whole study in a few minutes on 2 CPUs
    python experiments/data_efficiency.py --preset cpu --name de-cpu
    python experiments/data_efficiency.py --preset real --name de-real   # the shared real PTB-XL subset

`--preset real`: superdiagnostic, published CNN sizes, 15 epochs of 12 steps (721 training records
at batch 64), fold rotation over test folds 2, 4, 6, 8 and 10 at seed 0 (the other five folds are cut
to fit 90 minutes: 478 of the 975 records get a test prediction). Measured: 81 min wall on this 2-core
machine, 2 trials at a time (commit 601b245, 2026-12-01; the first 20 min shared the CPUs with tests).
The `cpu` preset (graded synth, generator 2; 2,000 records, 36 trials; every trial costs a 100% run):
845 s = 14.1 min wall on this idle 2-core machine, 2 trials at a time (commit 20488e3, 2026-12-02).
`--preset real_tuned` (issue L: xresnet1d101 and beatnet at their tuned configs, beatnet with the 0.45-s receptive
field, fractions 10/35/100%, the same five test folds): 30 trials, 1,982 s = 33 min wall at commit cafee42.
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
from experiments.benchmark import KEPT_VARIANT, TUNED_REAL

FRACTIONS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.50, 0.75, 1.0)


@dataclass(frozen=True)
class DataEfficiency:
    base: TrialConfig
    models: Models
    fractions: tuple[float, ...] = FRACTIONS
    seeds: tuple[int, ...] = (0, 1, 2)
    rotate: bool = False                 # fold rotation (see study.fold_seeds); False = official split
    folds: tuple[int, ...] | None = None     # rotation test folds (None = all ten)
    hparams: str | None = None           # best.json every cell takes its tuned config from (study --hparams)

    def cells(self) -> list[dict]:
        return [self.models.config(self.base, m, label_fraction=f, seed=s, test_fold=k)
                for m in self.models.names for f in self.fractions
                for k, s in fold_seeds(self.rotate, self.seeds, self.folds)]


TINY = {"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32}}
PRESETS = {
    # Big enough that the models learn (test macro-AUC well above chance) and that Ray's fixed
    # start-up is small against training time (benchmarks/ray_overhead.py), still ~2 min on 2 CPUs.
    # Tests that only need the plumbing shrink it with --set n_records=300 --set epochs=2.
    "smoke": DataEfficiency(
        base=TrialConfig(dataset="synth", task="all", n_records=2000, epochs=8, batch_size=32, threads=1,
                         budget="matched"),
        models=Models(("beatnet", "resnet1d_wang"), TINY), fractions=(0.25, 1.0), seeds=(0, 1)),
    "cpu": DataEfficiency(
        base=TrialConfig(dataset="synth", task="all", n_records=2000, epochs=12, batch_size=64, threads=1,
                         budget="matched"),
        models=Models(("beatnet", "resnet1d_wang"), TINY),
        fractions=(0.05, 0.10, 0.20, 0.35, 0.50, 1.0), seeds=(0, 1, 2)),
    "real": DataEfficiency(
        base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic", epochs=15, batch_size=64,
                         threads=1, budget="matched"),
        models=Models(("xresnet1d101", "resnet1d_wang", "beatnet")),
        fractions=(0.05, 0.10, 0.20, 0.35, 0.50, 1.0), seeds=(0,), rotate=True, folds=(2, 4, 6, 8, 10)),
    # Issue L's goal at 10% and 35%: beatnet (tuned, with the variant kept on validation) against the
    # strongest CNN (tuned), paired on the same records; 100% for the recovery Δ. Caveat (issue 34): the
    # variant was chosen on validation scores of models trained on these test folds; benchmark real_tuned
    # dropped it, and these rows keep it until they are rerun without (docs/studies.md).
    "real_tuned": DataEfficiency(
        base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic", epochs=15, threads=1,
                         budget="matched"),
        models=Models(("xresnet1d101", "beatnet"), {"beatnet": KEPT_VARIANT}),
        fractions=(0.10, 0.35, 1.0), seeds=(0,), rotate=True, folds=(2, 4, 6, 8, 10),
        hparams=TUNED_REAL),
    "paper": DataEfficiency(
        base=TrialConfig(dataset="ptbxl", task="superdiagnostic", fs=100, epochs=50, batch_size=128,
                         threads=4, use_gpu=True, gpus_per_trial=0.25, budget="matched"),
        models=Models(("beatnet", "xresnet1d101", "inception1d"), {"beatnet": {"size": "base"}})),
}

if __name__ == "__main__":
    sys.exit(main("data_efficiency", PRESETS))
