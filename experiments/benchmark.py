"""Benchmark: BEAT-Net against the PTB-XL benchmark's CNNs, per dataset and task, over seeds.

Launch on a cluster (the paper preset covers PTB-XL, CPSC2018 and Chapman: one root per dataset):
    ray job submit --address http://HEAD:8265 --runtime-env cluster/runtime_env.yaml -- \
        python experiments/benchmark.py --preset paper --storage-path s3://bucket/beat-ray \
        --data-root ptbxl=/data/ptb-xl/1.0.3,cpsc2018=/data/cpsc2018,chapman=/data/chapman
Locally, on the real PTB-XL subset in ../shared/realdata/ptbxl (the headline of the README):
    python experiments/benchmark.py --preset real --name benchmark-real     # same --name again = resume
    python -m beat_ray.report                                             # make figures

The `real` preset (superdiagnostic, published model sizes, fold rotation at seeds 0, 1 and 2: every
record tested once per seed) trains every model with the same budget: 15 epochs of
one-cycle AdamW at lr 3e-3, batch 64, best-validation epoch (`recipe=default`). The three
baselines also run once with the benchmark's own recipe (`recipe=benchmark`: lr 1e-2, global
scaler, 50 epochs at batch 128, final epoch scored) on the official split, so both recipes are
reported. 123 trials, run as launches of one `--name` on this 2-core machine (2 trials at a time, 1 thread
each): seed 0 and the recipe arm, 51 trials, 73 min (c3de1ff, 2026-12-01), of which inception1d takes about
half (319 s per 15-epoch trial, 1,122 s for its 50-epoch benchmark-recipe trial); seeds 1-2 on fold 10 and
inception1d's on folds 1-2 (two short launches); seeds 1-2 of beatnet, resnet1d_wang and xresnet1d101,
54 trials, 33.6 min (`--models beatnet,resnet1d_wang,xresnet1d101`, 257a4ef, 2026-12-07); inception1d's 16
cells of seeds 1-2, 42.5 min (`--models inception1d`, b498f2f, 2026-12-07). Complete: about 3 h 10 min in
all over four launches plus two short ones. Rhythm and form tasks do not fit in the 90-minute budget.

`--preset cpu` (graded synth, generator 2; 21 trials): 18 min wall at commit 21e9262 (2026-12-02).
Plus BEAT-Net tokenised by the opt-in quality-selected detector, its own arm (`beatnet (select detector)`):
    python experiments/benchmark.py --preset cpu --models beatnet --set detector=select --name bench-cpu-select
9 trials, 772 s = 12.9 min at 891b22c with a fresh token cache (2026-12-03): what select costs a classifier on
clean records. (Earlier runs, replaced: 779 s at 6e72d66, before select's artefact waiver; 494 s, served tokens
cached by select's first version.)

The `real500` preset (issue 34): seeds 0, 1, 2, 180 trials, one whole seed per launch (every model, fold and
rate), each under its own name; 500-Hz trials take 3-7 min each, 100-Hz ones under 1.5 min.
Seed 0: 60 trials, 4,908 s = 82 min (`--name benchmark-real500`, bd11890, 2026-12-07). Seed 1: 60 trials,
4,105 s = 68 min at 62ee5fe (2026-12-08):
    python experiments/benchmark.py --preset real500 --seeds 1 --name benchmark-real500-s1
Seed 2, not run yet (about 70-80 min):
    python experiments/benchmark.py --preset real500 --seeds 2 --name benchmark-real500-s2

The `real_tuned` preset (issues L and 34): xresnet1d101, resnet1d_wang and beatnet at the configs
experiments/hparams.py tuned per test fold, all ten folds at seeds 0, 1, 2: 90 trials, one `--models` launch
per model into one results folder, each under its own name (a name keeps its grid; the same name resumes it):
    python experiments/benchmark.py --preset real_tuned --name bench-tuned --models beatnet
    python experiments/benchmark.py --preset real_tuned --name bench-tuned-resnet --models resnet1d_wang
    python experiments/benchmark.py --preset real_tuned --name bench-tuned-xresnet --models xresnet1d101
Measured at 97f60e1 (2026-12-07): beatnet 30 trials, 1,251 s = 20.9 min; resnet1d_wang 30 trials, 1,181 s =
19.7 min; xresnet1d101 30 trials, 1,412 s = 23.5 min. Complete: 90 trials, 64 min in three launches.
The first version (5 folds, beatnet
with KEPT_VARIANT; 21 trials, about 20 min at f370516 and de5bd6e) is kept unscored in
results/benchmark/real_tuned/superseded/.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.train.config import TrialConfig, recipe_config
from beat_ray.train.study import Models, fold_seeds, main, shared_ptbxl

BASELINES = ("xresnet1d101", "inception1d", "resnet1d_wang")
# BEAT-Net design change kept on validation data (experiments/beatnet_variants.py, results/beatnet_variants/real
# at 2930507): the BeatCNN's receptive field set to 0.45 s, mean validation Δ +0.0041 [-0.026, +0.034] over
# 5 folds, the largest of the two variants whose mean Δ was above 0 (the other: all three, +0.0006)
KEPT_VARIANT: dict = {"rf_s": 0.45}
TUNED_REAL = "results/hparams/real/best.json"     # the real search's configs, per model and test fold


@dataclass(frozen=True)
class RecipeArm:
    """Extra cells: `models` trained with another `recipe`, on the official split (or rotated)."""

    recipe: str
    models: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    rotate: bool = False


@dataclass(frozen=True)
class Benchmark:
    base: TrialConfig
    models: Models
    tasks: tuple[tuple[str, str], ...] = (("synth", "all"),)      # (dataset, task)
    seeds: tuple[int, ...] = (0, 1, 2)
    # model -> the only (dataset, task) pairs it runs on; models not named run on every task
    only: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    rotate: bool = False                 # fold rotation (see study.fold_seeds); False = official split
    folds: tuple[int, ...] | None = None     # rotation test folds (None = all ten)
    arms: tuple[RecipeArm, ...] = ()
    hparams: str | None = None           # best.json every cell takes its tuned config from (study --hparams)
    rates: tuple[int, ...] = ()          # every cell at each of these sampling rates (empty: the base's fs)

    def cells(self) -> list[dict]:
        return [c for fs in (self.rates or (self.base.fs,)) for c in self._cells(replace(self.base, fs=fs))]

    def _cells(self, grid_base: TrialConfig) -> list[dict]:
        out = []
        for d, t in self.tasks:
            base = replace(grid_base, dataset=d, task=t)
            for arm in self.arms:
                arm_base = replace(base, **recipe_config(arm.recipe))
                out += [self.models.config(arm_base, m, seed=s, test_fold=k)
                        for m in arm.models for k, s in fold_seeds(arm.rotate, arm.seeds)
                        if (d, t) in self.only.get(m, self.tasks)]
            out += [self.models.config(base, m, seed=s, test_fold=k)
                    for m in self.models.names for k, s in fold_seeds(self.rotate, self.seeds, self.folds)
                    if (d, t) in self.only.get(m, self.tasks)]
        return out


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
    # Published sizes (no shrunken widths); beatnet is the registered default (size tiny), the best
    # of tiny/small on this subset in a first try (issue H). Per epoch at 1 thread on 721 training
    # records, validation included (measured): beatnet 3 s, resnet1d_wang 5 s, xresnet1d101 6 s,
    # inception1d 18 s.
    "real": Benchmark(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), epochs=15, batch_size=64, threads=1),
                      models=Models(("inception1d", "xresnet1d101", "resnet1d_wang", "beatnet")),
                      tasks=(("ptbxl", "superdiagnostic"),), rotate=True,
                      arms=(RecipeArm("benchmark", BASELINES),)),
    # Issues L and 34: every model at the config experiments/hparams.py tuned for each test fold (a fold's
    # search trained on its eight training folds and selected on its validation fold), all ten folds, seeds
    # 0-2, 15 epochs. beatnet takes no KEPT_VARIANT here: that choice averaged validation scores of models
    # trained on folds 2-10, so every test fold's labels shaped it (docs/studies.md, "Tuned benchmark").
    "real_tuned": Benchmark(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), epochs=15, threads=1),
                            models=Models(("xresnet1d101", "resnet1d_wang", "beatnet")),
                            tasks=(("ptbxl", "superdiagnostic"),), rotate=True, hparams=TUNED_REAL),
    # Issue 34: 500 Hz on real ECG. The 477 superdiagnostic records that have a 500-Hz file, every model at
    # 500 Hz and at 100 Hz on exactly those records (records_at_fs=500), fold rotation at seed 0. BEAT-Net's
    # BeatCNN is held at its default field in seconds (rf_s=0.23: kernels 7/5/3 at 100 Hz, the default net,
    # 33/21/11 at 500 Hz); the CNNs keep their kernels in samples, as the PTB-XL benchmark's do, so their field
    # in seconds is a fifth at 500 Hz (benchmarks/receptive_fields.py).
    "real500": Benchmark(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), epochs=15, batch_size=64, threads=1,
                                          records_at_fs=500),
                         models=Models(("xresnet1d101", "resnet1d_wang", "beatnet"), {"beatnet": {"rf_s": 0.23}}),
                         tasks=(("ptbxl", "superdiagnostic"),), rotate=True, seeds=(0, 1, 2), rates=(100, 500)),
    # The baselines train with the benchmark's own recipe, so they reproduce the published table;
    # BEAT-Net gets the same 50 epochs at batch 128 with its default recipe.
    "paper": Benchmark(base=TrialConfig(epochs=50, batch_size=128, threads=4, use_gpu=True, gpus_per_trial=0.25),
                       models=Models(("beatnet",), {"beatnet": {"size": "base"}}),
                       tasks=(("ptbxl", "superdiagnostic"), ("ptbxl", "all"), ("ptbxl", "rhythm"),
                              ("cpsc2018", "all"), ("chapman", "rhythm")),
                       arms=(RecipeArm("benchmark", BASELINES, seeds=(0, 1, 2)),)),
}

if __name__ == "__main__":
    sys.exit(main("benchmark", PRESETS))
