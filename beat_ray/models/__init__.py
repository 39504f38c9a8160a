"""Models: BEAT-Net, its ablations and the PTB-XL CNN baselines, each one registered name.

    from beat_ray.models import create, list_models
    model = create("beatnet", n_classes=5, size="tiny")
    model.input_kind   # "tokens" (token-layout dict) or "signal" ({"signal": (N, 12, T)})

This package sees tensors only: it never imports Ray, `beat_ray.train` or the data readers.
"""
from beat_ray.models import baselines, beatnet  # noqa: F401  (importing registers the models)
from beat_ray.models.baselines import sliding_window_logits
from beat_ray.models.beatnet import BeatNet, BeatNetConfig
from beat_ray.models.registry import create, is_model, list_models, register_model

__all__ = ["create", "list_models", "is_model", "register_model", "sliding_window_logits",
           "BeatNet", "BeatNetConfig"]
