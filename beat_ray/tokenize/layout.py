"""The token layout: the contract between `tokenize` (producer) and `models` (consumer).

Shapes, for N records, B = max_beats, 12 leads, W = window samples:
  tokens     (N, B, 12, W) float32   one window per (beat, lead); zeros where masked
  beat_mask  (N, B)        bool      True for real beats
  rr         (N, B, 2)     float32   seconds to the previous / next beat (0 where unknown or masked)
  times      (N, B)        float32   beat (R-peak) time in the record, seconds
  r_peaks    (N, B)        int64     R-peak sample index, -1 where masked
  n_beats    (N,)          int64     beats detected before cropping to B
  flags      (N,)          object    '' for a usable record, else the reason it has no tokens
  lead_mask  (N, 12)       bool      leads used for detection (finite, not flat, not clipped);
                                     non-finite leads are zero in `tokens` (optional, added by B)

Flagged records (flags != '') have beat_mask all False and MUST be dropped downstream.

A model's batch is the dict of the first four keys (as torch tensors); baselines instead get
{"signal": (N, 12, T)}.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

MODEL_KEYS = ("tokens", "beat_mask", "rr", "times")


@dataclass(frozen=True)
class TokenizerConfig:
    """Everything that changes the tokens; hashed into the token cache key."""

    mode: Literal["fixed", "adaptive", "patch"] = "fixed"
    pre_s: float = 0.25          # fixed mode: window start before R
    post_s: float = 0.45         # fixed mode: window end after R
    max_beats: int = 32
    patch_s: float = 0.7         # patch mode: patch length = stride (defaults to fixed window length)
    detector: Literal["consensus", "select"] = "consensus"   # select: quality-selected trains (select.py)

    def window(self, fs: float) -> int:
        """Samples per token W at sampling rate fs (same in all modes, so models are mode-agnostic)."""
        if self.mode == "patch":
            return int(round(self.patch_s * fs))
        return int(round(self.pre_s * fs)) + int(round(self.post_s * fs))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Tokens:
    tokens: np.ndarray
    beat_mask: np.ndarray
    rr: np.ndarray
    times: np.ndarray
    r_peaks: np.ndarray
    n_beats: np.ndarray
    flags: np.ndarray
    config: TokenizerConfig = field(default_factory=TokenizerConfig)
    fs: float = 100.0
    lead_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, idx: np.ndarray | slice) -> dict[str, np.ndarray]:
        """The model-input dict for a subset of records (numpy; the caller converts to torch)."""
        return {k: getattr(self, k)[idx] for k in MODEL_KEYS}

    @property
    def n_cropped(self) -> int:
        """Records that had more beats than max_beats and were cropped."""
        return int((self.n_beats > self.config.max_beats).sum())
