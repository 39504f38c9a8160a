"""Hyperparameter search: every model gets the same search budget on validation data (issue L).

Ray Tune with OptunaSearch (TPE) and an ASHA scheduler, one search per (model, test fold), on the
best validation macro-AUC (beat_ray/train/search.py). Tuning never sees a test fold: the search for
test fold k trains on k's eight training folds and selects on its validation fold, the fold before k
(`fold_layout(k)`, the same split every study trains test fold k with), with `score_test=False`, so
fold k's records are never predicted or scored. This is nested cross-validation whose inner split is
the studies' own: each test fold of a rotation gets its own tuned config, and a study that takes
`--hparams results/hparams/<preset>/best.json` refuses a test fold that has none.

Equal budget: the same `num_samples`, maximum epochs and ASHA rungs for every model (in the rows).
The spaces below are data; a dimension is a TrialConfig field or `model_kwargs.<name>`.

Read the `real` preset's 6 trials for what they are: Optuna's TPE draws its first 10 trials at random
(`n_startup_trials`), and with one sampler seed every (model, fold) search draws the same ones. So `real`
is a seeded random search over 6 configurations shared by all test folds (and by models, in the
dimensions they share); TPE proper starts at the 11th trial (the `paper` preset's 32). ASHA compares
trials at epochs 3 and 9 of a 15-epoch one-cycle schedule, i.e. while the learning rate still warms up
or is at its peak, which can stop a slow starter that would have finished well.

Launch on a cluster:
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/hparams.py --preset paper --data-root /data/ptb-xl/1.0.3 --storage-path s3://bucket/beat-ray
Locally:
    python experiments/hparams.py --preset smoke                 # about a minute
    python experiments/hparams.py --preset real --name hp-real   # same --name again = resume
Then every model at its tuned config (the real_tuned presets carry this best.json):
    python experiments/benchmark.py --preset real_tuned --name bench-tuned
    python experiments/data_efficiency.py --preset real_tuned --name de-tuned
or any study with --hparams results/hparams/real/best.json.

Measured wall times (2 cores, 2 trials at a time): `real` (test folds 2, 4, 6, 8, 10; 3 models x 5 folds
x 6 trials = 90 trials) 3,283 s = 55 min at commit a84ebd3 (2026-12-02): beatnet 2.5-4 min a fold, resnet1d_wang
1-1.5 min, xresnet1d101 5-7 min. The other five folds (`--folds 1,3,5,7,9`, same --name) cost about as much
again, so all ten do not fit one 90-minute preset; they are a second launch. smoke: the test's 2 x 3
trials take about 1 min of its 140 s. cpu (graded synth, 2 x 8 trials, test fold 10): 6.6 min wall at commit 20488e3
(2026-12-02, alone on this 2-core machine); best validation macro-AUC beatnet 0.938, resnet1d_wang 0.950.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.train.config import TrialConfig
from beat_ray.train.search import Dim, Search, search_main
from beat_ray.train.study import shared_ptbxl

# What every model searches: the optimiser. The CNNs have no dropout of their own to search.
OPTIMISER = {"lr": Dim("loguniform", (3e-4, 3e-2)), "weight_decay": Dim("loguniform", (1e-4, 1e-1)),
             "batch_size": Dim("choice", (32, 64, 128))}
SPACES = {
    "beatnet": {**OPTIMISER, "model_kwargs.size": Dim("choice", ("tiny", "small")),
                "model_kwargs.dropout": Dim("uniform", (0.0, 0.3)),
                "max_beats": Dim("choice", (24, 32)), "token_mode": Dim("choice", ("fixed", "adaptive"))},
    "resnet1d_wang": {**OPTIMISER, "model_kwargs.width": Dim("choice", (32, 64, 128))},
    "xresnet1d101": dict(OPTIMISER),
}
# smoke: one lr that cannot learn in 3 epochs and one that can, both evaluated first (a planted answer)
PLANTED_LR = {"lr": Dim("choice", (1e-7, 3e-3))}
PLANTED = ({"lr": 1e-7}, {"lr": 3e-3})

PRESETS = {
    "smoke": Search(base=TrialConfig(n_records=300, epochs=3, batch_size=32), models=("beatnet", "resnet1d_wang"),
                    spaces={"beatnet": PLANTED_LR, "resnet1d_wang": PLANTED_LR},
                    kwargs={"beatnet": {"size": "tiny"}, "resnet1d_wang": {"width": 32}},
                    num_samples=3, grace=1, reduction=2,
                    planted={"beatnet": PLANTED, "resnet1d_wang": PLANTED}),
    "cpu": Search(base=TrialConfig(n_records=2000, epochs=12), models=("beatnet", "resnet1d_wang"),
                  spaces={m: SPACES[m] for m in ("beatnet", "resnet1d_wang")}, num_samples=8),
    "real": Search(base=TrialConfig(dataset="ptbxl", task="superdiagnostic", root=shared_ptbxl(), epochs=15),
                   models=("beatnet", "resnet1d_wang", "xresnet1d101"), spaces=SPACES, num_samples=6,
                   grace=3, test_folds=(2, 4, 6, 8, 10)),          # the data_efficiency real folds; --folds for more
    "paper": Search(base=TrialConfig(dataset="ptbxl", task="superdiagnostic", epochs=50, batch_size=128),
                    models=("beatnet", "resnet1d_wang", "xresnet1d101"), spaces=SPACES, num_samples=32,
                    grace=5, test_folds=tuple(range(1, 11))),
}

if __name__ == "__main__":
    sys.exit(search_main(PRESETS))
