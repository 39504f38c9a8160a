"""One trial's configuration: a frozen dataclass whose fields are the result row's config columns.

Studies build grids of these (as dicts, so Tune can carry them); `TrialConfig.from_dict`
rejects unknown keys, so a typo in a grid fails at launch instead of silently training defaults.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from beat_ray.data.dataset import N_FOLDS, fold_layout
from beat_ray.data.noise import NOISE_TYPES
from beat_ray.train.devices import PRECISIONS

# What each recipe fixes beyond the config's own fields. `default`: per-lead standardisation and the
# best-validation epoch is scored. `benchmark`: the PTB-XL benchmark's recipe (helme/ecg_ptbxl_benchmarking,
# see ../shared/docs/anchors.md): one global StandardScaler fitted on the training signals and the
# final epoch's model scored; `hyperparameters` are what `recipe_config` sets with it (lr 1e-2,
# 50 epochs of one-cycle at batch 128; 2.5-s crops and sliding-window max are the CNNs' own).
RECIPES: dict[str, dict] = {
    "default": {"scaler": "lead", "select": "best_val", "hyperparameters": {}},
    "benchmark": {"scaler": "global", "select": "final",
                  "hyperparameters": {"lr": 1e-2, "weight_decay": 1e-2, "epochs": 50, "batch_size": 128,
                                      "schedule": "onecycle"}},
}


BUDGETS = ("epochs", "matched")
# "matched" budget: a subset smaller than 1/MAX_BUDGET_SCALE of the training split gets at most this many
# passes per epoch (the row says `budget_capped`), so a 1 % subset does not loop 100 times over 7 records.
MAX_BUDGET_SCALE = 20.0
# added after rows were committed: see config_hash
LATER_FIELDS: dict[str, Any] = {"noise_source": "synthetic", "precision": "fp32", "gpu_deterministic": False,
                                "records_at_fs": 0}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fold_layout_text(test_fold: int) -> str:
    """'train 1-8 | val 9 | test 10' style text for results rows and captions."""
    train, val, test = fold_layout(test_fold)
    return f"train {','.join(map(str, train))} | val {val} | test {test}"


def recipe_config(recipe: str) -> dict:
    """The config fields a recipe sets (`--set recipe=benchmark` applies them; later --set keys win)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {sorted(RECIPES)}")
    return {"recipe": recipe, **RECIPES[recipe]["hyperparameters"]}


@dataclass(frozen=True)
class TrialConfig:
    # what is trained
    model: str = "beatnet"
    model_kwargs: dict = field(default_factory=dict)   # e.g. {"size": "tiny"} or {"width": 32}
    # on what
    dataset: str = "synth"
    task: str = "all"
    root: str | None = None            # dataset folder (real datasets)
    fs: int = 100
    records_at_fs: int = 0             # ptbxl: 500 = only the records that have a 500-Hz file (same records at 100 Hz)
    n_records: int | None = None       # synth only
    data_seed: int = 0                 # synth generation and fold seed: fixed across training seeds
    label_fraction: float = 1.0        # nested labelled subset of the training split
    synth: dict = field(default_factory=dict)   # extra SynthConfig fields, e.g. {"atrial_lead": "II"}
    test_fold: int = 10                # 10 = the official split (train 1-8, val 9, test 10); see fold_layout
    token_mode: str = "fixed"          # fixed | adaptive (patch models ask for patches themselves)
    max_beats: int = 32
    detector: str = "consensus"        # tokenizer's R peaks: consensus | select (quality-selected, tokenize/select.py)
    # how
    seed: int = 0
    epochs: int = 10
    # "epochs": an epoch is one pass over the labelled subset. "matched": an epoch is as many optimizer
    # steps as one pass over the whole training split, so every label fraction trains for the same number
    # of steps as 100 % (1/f passes of its subset per epoch, at most MAX_BUDGET_SCALE; loop.steps_per_epoch)
    budget: str = "epochs"
    batch_size: int = 64               # per rank: a DDP step sees workers * batch_size records (lr not scaled)
    lr: float = 3e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"         # onecycle | cosine
    recipe: str = "default"            # default | benchmark (global scaler, final-epoch model): see RECIPES
    train_noise: str | None = None     # augmentation "kind:snr_db", e.g. "ma:12"
    eval_noise: tuple[str, ...] = ()   # after training, also score test under each "kind:snr_db"
    noise_source: str = "synthetic"    # or "nstdb:<dir>": real NSTDB bw/em/ma records (pl, wgn stay generated)
    attribution_steps: int = 0         # > 0: store class x lead integrated gradients of test records (attribution.py)
    score_test: bool = True            # False (hyperparameter search): the test fold is never predicted or scored
    hparams: str = ""                  # tuned config this trial took its hyperparameters from ("<best.json>#<sha of its entry>")
    threads: int = 1                   # torch intra-op threads per worker
    precision: str = "fp32"            # fp32 | bf16 (autocast in training and evaluation; bf16 for GPU speed)
    # where
    workers: int = 1                   # > 1: DDP through a TorchTrainer
    use_gpu: bool = False
    gpus_per_trial: float = 1.0        # GPUs per worker when use_gpu (fractional only with workers == 1)
    allow_cpu_fallback: bool = False   # a trial given a GPU but finding no CUDA trains on CPU (recorded)
    # GPU only (CPU reruns are always bit-identical): deterministic cuDNN/cuBLAS kernels, no cuDNN autotuning
    gpu_deterministic: bool = False
    # the study this trial belongs to (for results rows)
    study: str = ""
    preset: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown trial config keys {sorted(unknown)}; known: {sorted(known)}")
        if "eval_noise" in d:
            d = {**d, "eval_noise": tuple(d["eval_noise"] or ())}
        return cls(**d)

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r}; known: {BUDGETS}")
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; known: {sorted(RECIPES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; known: {PRECISIONS}")
        if self.detector not in ("consensus", "select"):
            raise ValueError(f"unknown detector {self.detector!r}; known: consensus, select")
        if not 1 <= int(self.test_fold) <= N_FOLDS:
            raise ValueError(f"test_fold must be in 1..{N_FOLDS}, got {self.test_fold}")
        for spec in ((self.train_noise,) if self.train_noise else ()) + tuple(self.eval_noise):
            kind, _, snr = str(spec).partition(":")
            if kind not in NOISE_TYPES or not _is_number(snr):
                raise ValueError(f"noise spec {spec!r}: expected '<type>:<snr_db>' with type one of {NOISE_TYPES}")
        if self.noise_source != "synthetic" and not self.noise_source.startswith("nstdb:"):
            raise ValueError(f"noise_source {self.noise_source!r}: expected 'synthetic' or 'nstdb:<directory of "
                             "NSTDB's bw, em and ma records>'")
        if self.use_gpu and self.workers > 1 and float(self.gpus_per_trial) != int(self.gpus_per_trial):
            raise ValueError(f"gpus_per_trial={self.gpus_per_trial} with workers={self.workers}: fractional GPUs "
                             "would put several DDP (NCCL) ranks on one GPU, which NCCL refuses or serialises; "
                             "use whole GPUs per worker (gpus_per_trial=1) or workers=1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """Columns for a results row: dicts become JSON strings so parquet stays tidy."""
        return {f"config/{k}": json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else v
                for k, v in self.to_dict().items()}

    def config_hash(self) -> str:
        """16 hex digits of SHA-256 over every field: two rows with equal hashes ran the same config.
        A field added later is left out at its default, so older rows keep their hash."""
        d = {k: v for k, v in self.to_dict().items() if LATER_FIELDS.get(k, object()) != v}
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def distributed(self) -> bool:
        """A TorchTrainer trial: only where ranks must talk. One GPU (or a fraction) is a plain Tune function
        trial holding that GPU itself, without the 15-20 s of Train worker start-up (benchmarks/ray_overhead)."""
        return self.workers > 1
