"""BEAT-Net: beats -> leads -> rhythm, three encoders that can each be removed.

Input is the token layout (`beat_ray/tokenize/layout.py`), for N records, B beat slots, 12 leads,
W samples per window:

    tokens (N, B, 12, W) float32, beat_mask (N, B) bool, rr (N, B, 2) s, times (N, B) s

Read top to bottom:
  1. BeatCNN        morphology: a small 1-D CNN shared by every (beat, lead) window -> d
  2. LeadEncoder    spatial: lead embeddings + attention across the 12 leads of one beat, then
                    attention pooling with a learned query -> one vector per beat (+ lead weights)
  3. RhythmEncoder  temporal: a transformer over [CLS, beat_1 .. beat_B] with a key-padding mask;
                    position comes from beat time and RR intervals, not the slot index
  4. a linear head on CLS -> multi-label logits

Padding beats never enter a computation. The CNN and the lead encoder run only on the valid beats
(gathered with the mask), times/rr are zeroed where masked, and padded keys are masked out of
attention. So perturbing anything under the mask leaves the logits bit-identical (tested), and a
record with zero valid beats is just CLS (no NaN). No BatchNorm anywhere: its train-mode statistics
would mix records, and per-window norms (GroupNorm/LayerNorm on the waveform) would erase absolute
amplitude, which is diagnostic (LVH voltage criteria, low voltage), so the short CNN goes un-normed.

Ablations are the same class with one encoder swapped for the simplest stand-in; the removed
module is never constructed, so it owns no parameters (see `_ablation` factories at the bottom).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor, nn

from beat_ray.models.registry import register_model

N_LEADS = 12
INDEX_KEYS = ("beat_valid", "beat_keep", "beat_slot")


def beat_index(mask: Tensor) -> dict[str, Tensor]:
    """The integer indices of the forward's beat gathers, for a beat mask (N, B).

    Why: indexing with the boolean mask asks the device how many beats are valid (a nonzero, i.e. a
    blocking GPU->CPU sync) six times a forward and once in backward. The trainer calls this on the
    host, where the mask already is (inputs.make_batch), and the indices travel with the batch, so the
    forward's shapes come from tensor sizes the host already knows. Without them the forward calls it
    on its own mask (same numbers, with the syncs).

    beat_valid  (V,) positions of the valid beats in the flattened (N*B) slots, row-major (as mask[...])
    beat_keep   (K,) beat slots that at least one record of the batch uses, ascending
    beat_slot   (V,) positions of the valid beats in the flattened (N*K) kept slots
    """
    mask = mask.bool()
    B = mask.shape[1]
    valid = mask.reshape(-1).nonzero().squeeze(1)
    used = mask.any(0)
    keep = used.nonzero().squeeze(1)
    rank = used.long().cumsum(0) - 1                             # slot -> its position among the kept
    return {"beat_valid": valid, "beat_keep": keep,
            "beat_slot": torch.div(valid, B, rounding_mode="floor") * keep.numel() + rank[valid % B]}


@dataclass(frozen=True)
class BeatNetConfig:
    d: int = 32                                  # width of every token vector
    cnn_channels: tuple[int, ...] = (8, 16, 32)  # BeatCNN conv widths
    cnn_strides: tuple[int, ...] = (2, 2, 2)     # 70 -> 35 -> 18 -> 9 samples at 100 Hz
    cnn_kernels: tuple[int, ...] = (7, 5, 3)
    lead_layers: int = 1
    lead_heads: int = 2
    temporal_layers: int = 2
    heads: int = 2
    mlp_ratio: int = 2
    n_freqs: int = 8                             # sinusoidal frequencies for beat time
    dropout: float = 0.0                         # tiny: dropout slowed learning on small tasks
    morphology: Literal["cnn", "linear", "mean"] = "cnn"
    spatial: Literal["attention", "mean"] = "attention"
    temporal: Literal["transformer", "mean"] = "transformer"
    window: int = 70                             # W; only morphology="linear" depends on it
    # Design variants of issue L (experiments/beatnet_variants.py); the defaults are the original network.
    token_norm: Literal["raw", "baseline"] = "raw"   # baseline: subtract each (beat, lead) window's median
    rf_s: float | None = None                    # BeatCNN receptive field in seconds (kernels sized for fs)
    fs: float = 100.0                            # sampling rate the kernels are sized for (only with rf_s)
    rr_norm: Literal["seconds", "record"] = "seconds"  # record: log RR relative to the record's mean RR
    cnn_bins: int = 0                            # 0: global avg+max pooling; n: mean over n ordered bins (keeps where)


# The CNN stays narrow even in `base`: it runs on every (beat, lead) window, ~10^4 per batch of 64
# records, and on CPU its cost (mostly backward) dominates the step; width goes to d instead.
SIZES: dict[str, dict] = {
    "tiny": dict(d=32, cnn_channels=(8, 16, 32), lead_heads=2, temporal_layers=2, heads=2),
    "small": dict(d=64, cnn_channels=(16, 32, 64), lead_heads=4, temporal_layers=3, heads=4, dropout=0.1),
    "base": dict(d=128, cnn_channels=(16, 32, 64), lead_heads=4, temporal_layers=4, heads=4, dropout=0.1),
}


# ---------------------------------------------------------------------------------------------
# shared transformer pieces (pre-LN, explicit attention so the weights can be returned)

class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        assert d % heads == 0, "d must be divisible by heads"
        self.heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (M, L, d), key_mask (M, L) True = may be attended. Returns y and weights (M, h, L, L)."""
        M, L, d = x.shape
        q, k, v = self.qkv(x).view(M, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        if key_mask is not None:
            att = att.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        att = att.softmax(dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(M, L, d)
        return self.drop(self.proj(y)), att


class Block(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(d), Attention(d, heads, dropout), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d),
                                 nn.Dropout(dropout))

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, att = self.attn(self.ln1(x), key_mask)
        x = x + y
        return x + self.mlp(self.ln2(x)), att


# ---------------------------------------------------------------------------------------------
# 1. beat morphology encoder

def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples one output of the conv stack sees: 1 + sum (k_i - 1) * prod(strides before i)."""
    rf, jump = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        rf, jump = rf + (k - 1) * jump, jump * s
    return rf


def kernels_for(cfg: BeatNetConfig) -> tuple[int, ...]:
    """The conv kernels: `cnn_kernels` as given, or, with `rf_s`, scaled (odd, >= 1) so that the
    receptive field is rf_s seconds at cfg.fs, whatever the sampling rate. The default kernels see
    23 samples: 0.23 s at 100 Hz but 46 ms at 500 Hz, less than one QRS complex."""
    if cfg.rf_s is None:
        return tuple(cfg.cnn_kernels)
    target = cfg.rf_s * cfg.fs
    base = receptive_field(cfg.cnn_kernels, cfg.cnn_strides) - 1
    if target < 1 or base <= 0:
        raise ValueError(f"rf_s={cfg.rf_s} at fs={cfg.fs} is below one sample")
    scale = (target - 1) / base
    return tuple(1 + 2 * max(0, round((k - 1) / 2 * scale)) for k in cfg.cnn_kernels)


class BeatCNN(nn.Module):
    """(M, W) windows -> (M, d). Global avg+max pooling, so any W (100 or 500 Hz) works, but it forgets
    where in the window a feature was; cnn_bins=n keeps that (n ordered bins, still any W).

    token_norm="baseline" subtracts each window's median first: baseline wander and electrode offset
    go, while the amplitudes of one beat's 12 leads keep their ratios (no per-lead scaling)."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        layers, c_in = [], 1
        for c, s, k in zip(cfg.cnn_channels, cfg.cnn_strides, kernels_for(cfg), strict=True):
            layers += [nn.Conv1d(c_in, c, k, stride=s, padding=k // 2), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.bins = cfg.cnn_bins
        self.proj = nn.Linear(c_in * cfg.cnn_bins if cfg.cnn_bins else 2 * c_in, cfg.d)
        self.baseline = cfg.token_norm == "baseline"

    def forward(self, x: Tensor) -> Tensor:
        if self.baseline:
            x = x - x.median(dim=-1, keepdim=True).values
        h = self.convs(x.unsqueeze(1))
        if self.bins:                            # ST level and T sign are *where* a deflection is
            return self.proj(nn.functional.adaptive_avg_pool1d(h, self.bins).flatten(1))
        return self.proj(torch.cat([h.mean(-1), h.amax(-1)], dim=-1))


class WindowLinear(nn.Module):
    """Ablation stand-in for BeatCNN: one linear map of the flattened window (needs a fixed W)."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        self.window, self.proj = cfg.window, nn.Linear(cfg.window, cfg.d)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.window:
            raise ValueError(f"beatnet_no_morphology was built for window={self.window}, got "
                             f"W={x.shape[-1]}; pass window=W to create()")
        return self.proj(x)


class WindowMean(nn.Module):
    """Ablation stand-in that removes beat shape: each window averaged to one level, projected to d.
    The counterpart of the spatial and temporal removals (leads averaged, beats averaged); the
    linear map above keeps the whole window, so the transformer MLPs can still read its shape."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        self.proj = nn.Linear(1, cfg.d)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.mean(-1, keepdim=True))


# ---------------------------------------------------------------------------------------------
# 2. spatial lead encoder

class LeadEncoder(nn.Module):
    """(V, 12, d) per-lead vectors of V beats -> (V, d) beat vectors and (V, 12) lead weights.

    Lead embeddings tell the attention which projection of the cardiac dipole it is looking at
    ("normalising lead perspectives"); the pooling query then picks the leads that matter, and its
    softmax weights are the lead attention reported by `explain`.
    """

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        self.lead_emb = nn.Parameter(torch.randn(N_LEADS, cfg.d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.d, cfg.lead_heads, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(cfg.lead_layers))
        self.ln, self.ln_out = nn.LayerNorm(cfg.d), nn.LayerNorm(cfg.d)
        self.query = nn.Parameter(torch.randn(cfg.d) * 0.02)
        self.key = nn.Linear(cfg.d, cfg.d)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = h + self.lead_emb
        for blk in self.blocks:
            h, _ = blk(h)
        # scores from normalised leads, values un-normalised: a per-lead norm would erase how
        # large one lead is relative to another (the electrical axis, voltage criteria)
        w = (self.key(self.ln(h)) @ self.query / math.sqrt(h.shape[-1])).softmax(dim=-1)  # (V, 12)
        return self.ln_out((w.unsqueeze(-1) * h).sum(1)), w


class LeadMean(nn.Module):
    """Ablation stand-in: average the 12 per-lead CNN vectors. Averaging (not concatenating) keeps
    the beat vector width d and the morphology encoder unchanged, and it carries no lead identity,
    which is exactly what the spatial encoder adds. Its implicit lead weights are uniform 1/12."""

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return h.mean(1), h.new_full(h.shape[:2], 1.0 / h.shape[1])


# ---------------------------------------------------------------------------------------------
# 3. temporal rhythm encoder

class BeatPosition(nn.Module):
    """Position of a beat from *when* it happened and its RR context, not from its slot index:
    sinusoids of the R-peak time (periods 1..30 s: beats are >= 0.3 s apart, so faster
    phases would be noise), rr_prev, rr_next and log(rr_next / rr_prev)
    (the successive-RR ratio that separates irregular from regular rhythm; 0 where an RR is
    unknown), through a 2-layer MLP. The output is layer-normed so that it has the scale of the
    beat vectors it is added to; otherwise RR would be a small perturbation the network must
    first learn to amplify.

    rr_norm="record" replaces the RR seconds by log(RR / the record's mean RR) (0 where unknown) plus
    the log mean RR itself: irregularity becomes scale-free and the heart rate one centred feature."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        periods = torch.logspace(0.0, math.log10(30.0), cfg.n_freqs)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.relative = cfg.rr_norm == "record"
        n_rr = 4 if self.relative else 3
        self.mlp = nn.Sequential(nn.Linear(2 * cfg.n_freqs + n_rr, cfg.d), nn.GELU(), nn.Linear(cfg.d, cfg.d),
                                 nn.LayerNorm(cfg.d))

    def forward(self, times: Tensor, rr: Tensor) -> Tensor:
        phase = times.unsqueeze(-1) * self.omega
        known = (rr > 0).all(-1)
        ratio = torch.where(known, torch.log(rr[..., 1].clamp(min=1e-3) / rr[..., 0].clamp(min=1e-3)), 0.0)
        if self.relative:
            pos = rr > 0
            log_rr = torch.log(rr.clamp(min=1e-3))
            mean = (log_rr * pos).sum((1, 2), keepdim=True) / pos.sum((1, 2), keepdim=True).clamp(min=1)
            rr_feats = torch.cat([torch.where(pos, log_rr - mean, 0.0), mean.expand(*rr.shape[:2], 1)], dim=-1)
        else:
            rr_feats = rr
        feats = torch.cat([phase.sin(), phase.cos(), rr_feats, ratio.unsqueeze(-1)], dim=-1)
        return self.mlp(feats)


class RhythmEncoder(nn.Module):
    """[CLS, beats] -> CLS vector, with the attention maps of every layer."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        self.pos = BeatPosition(cfg)
        self.cls = nn.Parameter(torch.randn(cfg.d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.d, cfg.heads, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(cfg.temporal_layers))
        self.ln = nn.LayerNorm(cfg.d)

    def forward(self, beats: Tensor, mask: Tensor, times: Tensor, rr: Tensor) -> tuple[Tensor, Tensor]:
        N = beats.shape[0]
        x = torch.cat([self.cls.expand(N, 1, -1), beats + self.pos(times, rr)], dim=1)
        key_mask = torch.cat([mask.new_ones(N, 1), mask], dim=1)  # CLS is always there
        atts = []
        for blk in self.blocks:
            x, att = blk(x, key_mask)
            atts.append(att)
        return self.ln(x[:, 0]), torch.stack(atts, dim=1)  # (N, d), (N, layers, h, B+1, B+1)


class BeatMean(nn.Module):
    """Ablation stand-in: masked mean over the valid beats (no order, no RR, no CLS)."""

    def __init__(self, cfg: BeatNetConfig):
        super().__init__()
        self.ln = nn.LayerNorm(cfg.d)

    def forward(self, beats: Tensor, mask: Tensor, times: Tensor, rr: Tensor) -> tuple[Tensor, Tensor]:
        w = mask.float() / mask.sum(1, keepdim=True).clamp(min=1)  # zero beats -> zero vector
        return self.ln((w.unsqueeze(-1) * beats).sum(1)), w


# ---------------------------------------------------------------------------------------------
# the network

class BeatNet(nn.Module):
    input_kind = "tokens"
    token_mode = "fixed"

    def __init__(self, n_classes: int, cfg: BeatNetConfig = BeatNetConfig()):
        super().__init__()
        self.cfg, self.n_classes = cfg, n_classes
        self.morphology = {"cnn": BeatCNN, "linear": WindowLinear, "mean": WindowMean}[cfg.morphology](cfg)
        self.spatial = LeadEncoder(cfg) if cfg.spatial == "attention" else LeadMean()
        self.temporal = RhythmEncoder(cfg) if cfg.temporal == "transformer" else BeatMean(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d, n_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """Zero biases, Kaiming convs, Xavier linears. PyTorch's default conv bias (~U(+-1/sqrt(k)))
        dominates a beat window that is flat except for ~10 QRS samples: at init every beat then
        gives almost the same vector (std across windows ~0.002 vs ~0.1 with this init) and the
        network needs many steps just to start telling records apart."""
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
        if isinstance(m, (nn.Conv1d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        tokens, mask = batch["tokens"], batch["beat_mask"].bool()
        N, B, L, W = tokens.shape
        ix = {k: batch[k] for k in INDEX_KEYS} if all(k in batch for k in INDEX_KEYS) else beat_index(mask)
        valid, keep, slot = ix["beat_valid"], ix["beat_keep"], ix["beat_slot"]
        per_beat = tokens.reshape(N * B, L, W)[valid]               # (V, 12, W): only real beats
        per_lead = self.morphology(per_beat.reshape(-1, W)).view(-1, L, self.cfg.d)
        beat_vec, lead_w = self.spatial(per_lead)                  # (V, d), (V, 12)
        lead_att = lead_w.new_zeros(N * B, L)                      # the source's dtype: bf16 under autocast
        lead_att[valid] = lead_w
        # Beat slots that no record in this batch uses are dropped before the rhythm encoder (10 s
        # fill ~14 of 32 slots): same result, half the attention cost. `keep` maps back for explain.
        mask = mask.index_select(1, keep)
        beats = beat_vec.new_zeros(N * mask.shape[1], self.cfg.d)
        beats[slot] = beat_vec
        beats = beats.view(N, mask.shape[1], self.cfg.d)
        times = torch.where(mask, batch["times"].index_select(1, keep), 0.0)   # masked values never reach a layer
        rr = torch.where(mask.unsqueeze(-1), batch["rr"].index_select(1, keep), 0.0)
        rec, temporal_att = self.temporal(beats, mask, times, rr)
        return rec, lead_att.view(N, B, L), temporal_att, keep

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        rec = self._encode(batch)[0]
        return self.head(self.drop(rec))

    @torch.no_grad()
    def explain(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits and attention for issue E (call in eval mode).

        lead_attention      (N, B, 12) weights over leads per beat; sum to 1 on valid beats, 0 on padding
                            (uniform 1/12 for beatnet_no_spatial)
        temporal_attention  (N, B) last layer, head-averaged CLS->beat weights; 0 on padding. They sum
                            to 1 minus CLS's attention to itself. (Masked-mean weights for no_temporal.)
        temporal_attention_layers  (N, layers, heads, B+1, B+1), index 0 = CLS (transformer only)
        """
        rec, lead_att, t_att, keep = self._encode(batch)
        N, B = batch["beat_mask"].shape
        out = {"logits": self.head(rec), "lead_attention": lead_att}
        if t_att.dim() == 2:                                       # BeatMean weights (N, B_kept)
            out["temporal_attention"] = t_att.new_zeros(N, B)
            out["temporal_attention"][:, keep] = t_att
            return out
        idx = torch.cat([keep.new_zeros(1), keep + 1])              # CLS + kept slots
        full = t_att.new_zeros(*t_att.shape[:3], B + 1, B + 1)
        full[..., idx[:, None], idx] = t_att
        out["temporal_attention"] = full[:, -1].mean(1)[:, 0, 1:]
        out["temporal_attention_layers"] = full
        return out


class BeatNetPatch(BeatNet):
    """Same network; the trainer must feed fixed-patch tokens (TokenizerConfig(mode="patch"))."""

    token_mode = "patch"


# ---------------------------------------------------------------------------------------------
# registry: one name per model and per ablation

def beatnet_config(size: str = "tiny", **overrides) -> BeatNetConfig:
    if size not in SIZES:
        raise KeyError(f"unknown beatnet size {size!r}; choose from {sorted(SIZES)}")
    cfg = replace(BeatNetConfig(), **SIZES[size])
    return replace(cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def _factory(name: str, cls: type[BeatNet] = BeatNet, default_size: str = "tiny", **fixed):
    def factory(n_classes: int, size: str = default_size, **overrides) -> BeatNet:
        clash = {k for k in fixed if k in overrides and overrides[k] != fixed[k]}
        if clash:
            raise ValueError(f"{name} fixes {sorted(clash)}; use another registered name instead")
        return cls(n_classes, beatnet_config(size, **{**overrides, **fixed}))

    factory.sized_by_fs = True                   # the trainer passes the trial's fs and token window W
    factory.__name__ = name
    factory.__doc__ = f"{name}: BEAT-Net ({cls.__name__}) with {fixed or 'all three encoders'}"
    return register_model(name)(factory)


_factory("beatnet")
for _size in SIZES:
    _factory(f"beatnet_{_size}", default_size=_size)
_factory("beatnet_no_morphology", morphology="linear")
_factory("beatnet_no_shape", morphology="mean")
_factory("beatnet_no_spatial", spatial="mean")
_factory("beatnet_no_temporal", temporal="mean")
_factory("beatnet_patch", cls=BeatNetPatch)
