"""BEAT-Net design variants, chosen on validation data only (issue L, part 2).

Why: on real PTB-XL, BEAT-Net trailed the CNNs, and part of the gap may be our realisation rather
than the idea. Each suspect is one model kwarg (beat_ray/models/beatnet.py), so every variant tried is
a row here:
  original      raw mV tokens, BeatCNN kernels in samples (receptive field 0.23 s at 100 Hz), RR in s
  baseline      token_norm=baseline: each (beat, lead) window minus its median (baseline wander and
                electrode offset removed; the 12 leads keep their amplitude ratios: nothing is divided)
  rf_0.45s      rf_s=0.45: the BeatCNN's receptive field set in seconds (QRS + ST + T upstroke); at
                100 Hz that is a wider field, at 500 Hz it keeps the field a 100-Hz net has
  rr_record     rr_norm=record: log(RR / the record's mean RR) and the log mean RR, not RR seconds
  all           the three together
  bins9_rf0.45s the 0.45-s field with 9 ordered bins instead of global average+max pooling (keeps where)

Protocol: every variant trains on top of BEAT-Net's tuned config for each test fold
(results/hparams/real/best.json: size, dropout, lr, weight decay, batch, max_beats, token mode), for
the search's 15 epochs, one seed, with `score_test=False`: the test fold is never predicted. The
measure is the best validation macro-AUC on the fold before each test fold, i.e. folds 1, 3, 5, 7 and
9 for test folds 2, 4, 6, 8 and 10, which are disjoint from every test fold the tuned benchmark
scores. Δ is paired per fold against `original`; the table shows its mean, a 95% t interval over the
five folds and the folds improved. Rule, fixed before the run: a variant is kept when its mean Δ is
above 0 (the plain "helps on validation"); of the kept ones, the one with the largest mean Δ goes into
experiments/benchmark.py's KEPT_VARIANT (this tie-break was added after two variants passed). This is a sequential search (the optimiser settings were tuned without the variants),
and it gives BEAT-Net more validation looks than the CNNs got; both are said where it is reported.

Locally:
    python experiments/beatnet_variants.py --preset real --name variants-real    # same --name = resume
    python -m beat_ray.report --summary results/beatnet_variants/real
smoke (synth, 300 records, 2 epochs) is the test's.
Measured: `real`, 25 trials (5 variants x 5 folds, 2 at a time), 1,351 s = 22.5 min wall on this 2-core machine
(commit 2930507, 2026-12-02). Result: only the 0.45-s receptive field had a positive mean Δ on its own
(+0.0041, 95% CI -0.026 to +0.034, 3 of 5 folds); no variant's CI excludes 0.
bins9_rf0.45s (the position-keeping BeatCNN of benchmarks/morphology_probe.py) was added afterwards, with
`--models bins9_rf0.45s --name variants-real-bins`: 5 trials, 241 s at f6c53ba (2026-12-03): +0.0031
[-0.027, +0.034], 2 of 5 folds, below rf_0.45s alone, so KEPT_VARIANT stays rf_s=0.45.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runnable from a checkout without install
from beat_ray.envcheck import require

require()           # before any third-party import: a wrong interpreter gets the fix, not a traceback

from beat_ray.train.config import TrialConfig
from beat_ray.train.study import main, shared_ptbxl
from experiments.benchmark import TUNED_REAL

VARIANTS: dict[str, dict] = {
    "original": {},
    "baseline": {"token_norm": "baseline"},
    "rf_0.45s": {"rf_s": 0.45},
    "rr_record": {"rr_norm": "record"},
    "all": {"token_norm": "baseline", "rf_s": 0.45, "rr_norm": "record"},
    "bins9_rf0.45s": {"cnn_bins": 9, "rf_s": 0.45},   # added later (issue J part 3), see the docstring
}


@dataclass(frozen=True)
class Variants:
    base: TrialConfig
    variants: dict[str, dict] = field(default_factory=lambda: dict(VARIANTS))
    folds: tuple[int, ...] = (10,)
    seeds: tuple[int, ...] = (0,)
    size: dict = field(default_factory=dict)    # model_kwargs under the variant's (e.g. tiny for smoke)
    hparams: str | None = None                  # tuned config per test fold (study --hparams)
    rotate: bool = True                         # each cell names its test fold; kept for the study CLI

    def cells(self) -> list[dict]:
        return [replace(self.base, model="beatnet", model_kwargs={**self.size, **kw}, seed=s, test_fold=k).to_dict()
                for kw in self.variants.values() for k in self.folds for s in self.seeds]

    def arm(self, cell: dict) -> str:
        """A cell's variant name, so that `--models rf_0.45s` runs that variant's cells only."""
        kw = {k: v for k, v in cell["model_kwargs"].items() if k not in self.size}
        return next(name for name, v in self.variants.items() if v == kw)


PRESETS = {
    "smoke": Variants(base=TrialConfig(n_records=300, epochs=2, batch_size=32, score_test=False),
                      variants={k: VARIANTS[k] for k in ("original", "baseline")}, folds=(9, 10),
                      size={"size": "tiny"}),
    "real": Variants(base=TrialConfig(dataset="ptbxl", root=shared_ptbxl(), task="superdiagnostic", epochs=15,
                                      threads=1, score_test=False),
                     folds=(2, 4, 6, 8, 10), hparams=TUNED_REAL),
}

if __name__ == "__main__":
    sys.exit(main("beatnet_variants", PRESETS))
