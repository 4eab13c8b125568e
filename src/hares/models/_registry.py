"""The model registry: builders registered by name, built with overrides (timm `_registry` / `_factory`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hares.registry import Registry

MODELS = Registry("model")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; the builder records its name and overrides on the model."""
    name = fn.__name__

    def build(**overrides: Any) -> nn.Module:
        model = fn(**overrides)
        model.hares_name = name
        model.hares_config = dict(overrides)
        return model

    build.__name__ = name
    build.__doc__ = fn.__doc__
    MODELS.register(build, name=name)
    return fn


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered network by name; `None` overrides are dropped."""
    return MODELS.build(name, **overrides)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern."""
    return MODELS.list(pattern)
