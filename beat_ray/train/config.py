"""One trial's configuration: a frozen dataclass whose fields are the result row's config columns.

Studies build grids of these (as dicts, so Tune can carry them); `TrialConfig.from_dict`
rejects unknown keys, so a typo in a grid fails at launch instead of silently training defaults.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
    n_records: int | None = None       # synth only
    data_seed: int = 0                 # synth generation and fold seed: fixed across training seeds
    label_fraction: float = 1.0        # nested labelled subset of the training split
    token_mode: str = "fixed"          # fixed | adaptive (patch models ask for patches themselves)
    max_beats: int = 32
    # how
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"         # onecycle | cosine
    train_noise: str | None = None     # augmentation "kind:snr_db", e.g. "ma:12"
    eval_noise: tuple[str, ...] = ()   # after training, also score test under each "kind:snr_db"
    threads: int = 1                   # torch intra-op threads per worker
    # where
    workers: int = 1                   # > 1: DDP through a TorchTrainer
    use_gpu: bool = False
    gpus_per_trial: float = 1.0        # fractional GPUs per trial when use_gpu
    # the study this trial belongs to (for results rows)
    study: str = ""
    preset: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown trial config keys {sorted(unknown)}; known: {sorted(known)}")
        if "eval_noise" in d:
            d = {**d, "eval_noise": tuple(d["eval_noise"] or ())}
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """Columns for a results row: dicts become JSON strings so parquet stays tidy."""
        return {f"config/{k}": json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else v
                for k, v in self.to_dict().items()}

    @property
    def distributed(self) -> bool:
        return self.workers > 1 or self.use_gpu
