"""Class-conditional lead attribution (Table 6, Fig. 3): how much each lead drives each class's logit.

Why not BEAT-Net's lead attention: its weights come from one learned query applied to every beat
before the rhythm encoder, so they cannot differ between a rhythm decision and a morphology
decision. A gradient attribution of the class-c logit can, and it applies to every model alike, so
"BEAT-Net leans on lead II for rhythm" can be set beside what a CNN does.

Measure: integrated gradients (Sundararajan et al., 2017) of the class-c logit with respect to the
model's lead inputs: BEAT-Net's token windows (N, B, 12, W), a CNN's standardised signal (N, 12, T)
scored as in evaluation (sliding-window max). Baseline: an all-zero input, i.e. a flat lead (for
the CNNs' standardised signals, each lead's training mean); the beat mask, RR intervals and beat
times stay as they are, so only the waveforms are attributed. `steps` midpoint Riemann steps.
Per record and class, a lead's attribution is the L1 mass of its integrated gradients summed over
beats and samples, divided by the total over the 12 leads: a share that sums to 1 (uniform 1/12).

Only a class's positive records are attributed for that class (the question is what drives the
decision that a record *has* c); other entries are NaN. A tokens-model record without tokens gets
the uniform share, as it gets the fallback prediction.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from beat_ray.models import sliding_window_logits

N_LEADS = 12


def _logits(model: nn.Module, batch: dict[str, torch.Tensor], kind: str, fs: float) -> torch.Tensor:
    if kind == "signal":
        return sliding_window_logits(model, batch["signal"], fs, model.eval_win_s, model.eval_stride_s,
                                     model.eval_reduce)
    return model(batch)


def integrated_gradients(model: nn.Module, batch: dict[str, torch.Tensor], key: str, lead_dim: int, cls: int,
                         kind: str, fs: float, steps: int = 16) -> torch.Tensor:
    """(N, 12) lead shares of the integrated gradients of logit `cls` w.r.t. `batch[key]`."""
    x = batch[key].detach()
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        xi = (alpha * x).requires_grad_(True)
        out = _logits(model, {**batch, key: xi}, kind, fs)[:, cls].sum()
        (g,) = torch.autograd.grad(out, xi)
        total += g
    ig = x * total / steps
    dims = [d for d in range(1, ig.dim()) if d != lead_dim]
    mass = ig.abs().sum(dim=dims)                                             # (N, 12)
    return mass / mass.sum(1, keepdim=True).clamp_min(1e-30)


def lead_attribution(model: nn.Module, data, idx: np.ndarray, steps: int = 16, batch_size: int = 64) -> np.ndarray:
    """(len(idx), C, 12) float32 lead shares per record and class (NaN where the record is not positive)."""
    from beat_ray.train.inputs import make_batch

    model.eval()
    kind = data.input_kind
    key, lead_dim = ("signal", 1) if kind == "signal" else ("tokens", 2)
    y = data.labels[idx].astype(bool)
    out = np.full((len(idx), y.shape[1], N_LEADS), np.nan, np.float32)
    device = next(model.parameters()).device
    for c in range(y.shape[1]):
        pos = np.flatnonzero(y[:, c])
        flagged = data.flagged[idx[pos]]
        out[pos[flagged], c] = 1.0 / N_LEADS
        pos = pos[~flagged]
        for i in range(0, len(pos), batch_size):
            p = pos[i:i + batch_size]
            b = make_batch(data, idx[p], train=False, rng=np.random.default_rng(0))
            b = {k: v.to(device) for k, v in b.items()}
            share = integrated_gradients(model, b, key, lead_dim, c, kind, data.ds.fs, steps)
            out[p, c] = share.detach().float().cpu().numpy()
    return out
