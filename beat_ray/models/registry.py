"""Every model is a string: a timm-style registry of factories.

Studies build their grids from names (`"beatnet"`, `"beatnet_no_spatial"`, `"xresnet1d101"`), so a
results row stays readable and a new ablation is one decorated function, not a new code path.

A factory has the signature `factory(n_classes: int, **overrides) -> nn.Module`. The returned module
declares what it eats as class attributes, so the trainer can build the right batches without
knowing any model by name:

    input_kind = "tokens" | "signal"      # token-layout dict, or {"signal": (N, 12, T)}
    token_mode = "fixed" | "patch"        # tokens only: QRS-aligned windows or fixed patches
    crop_s, eval_win_s, eval_stride_s, eval_reduce   # signal only: the PTB-XL training protocol
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import nn

__all__ = ["register_model", "create", "list_models", "is_model", "sized_by_fs"]


class ModelFactory(Protocol):
    def __call__(self, n_classes: int, **overrides) -> nn.Module: ...


_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `fn` under `name` (default: the function's own name)."""

    def deco(fn: ModelFactory) -> ModelFactory:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = fn
        return fn

    return deco


def create(name: str, n_classes: int, **overrides) -> nn.Module:
    """Build a registered model. `overrides` go to the factory (e.g. size="base", window=350)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None
    model = factory(n_classes, **overrides)
    model.model_name = name  # the registry name travels with the module (for result rows)
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally only those containing `pattern`."""
    return sorted(k for k in _REGISTRY if pattern is None or pattern in k)


def is_model(name: str) -> bool:
    return name in _REGISTRY


def sized_by_fs(name: str) -> bool:
    """Whether `name`'s factory sizes itself by the sampling rate: BEAT-Net's receptive field in seconds
    (`fs=`) and the width of its linear window stand-in (`window=`). The trainer passes both."""
    return bool(getattr(_REGISTRY.get(name), "sized_by_fs", False))
