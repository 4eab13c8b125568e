"""The model registry: builders registered by name, built with overrides (timm `_registry` / `_factory`).

Each builder declares the config it accepts (`register_model(schema={...})`, specs from `hares.schema`): the keys,
their types and ranges. Every `create_model` call is checked against it, and a checkpoint's stored config is
checked against it before anything is built (`hares.models.checkpoint`), so nothing from a file reaches a
constructor unvalidated. A builder without a declared schema accepts the keyword parameters of its own signature
(types from their defaults); one that takes only `**kwargs` accepts no config from a checkpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from hares.registry import Registry
from hares.schema import AnyJSON, Bool, Float, Int, OptionError, Record, Seq, Spec, Str

MODELS = Registry("model")
# Networks built from a checkpoint's config are first built on the meta device (no memory) and refused above
# this size: 4 GB of float32, 16x the paper's Slowfast NFNet-F0 (63M).
MAX_PARAMS = 1_000_000_000


def _derived_spec(default: Any) -> Spec:
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, int):
        return Int(ge=-(2**24), le=2**24)
    if isinstance(default, float):
        return Float()
    if isinstance(default, str):
        return Str(max_len=256)
    if isinstance(default, (list, tuple)) and default:
        return Seq(_derived_spec(default[0]), min_len=0, max_len=256, as_list=True)
    return AnyJSON(max_chars=10_000)


def schema_from_defaults(defaults: Mapping[str, Any]) -> dict[str, Spec]:
    """A schema for a flat config dict (e.g. a library's config): each key typed by its default value (ints within
    +-2**24, finite floats, short strings, lists of at most 256 items)."""
    return {k: _derived_spec(v) for k, v in defaults.items()}


def _signature_schema(fn: Callable[..., Any]) -> Record | None:
    """The keyword parameters of `fn` with defaults, typed by the defaults; None when `fn` takes `**kwargs`."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return Record({p.name: _derived_spec(p.default) for p in params if p.default is not inspect.Parameter.empty})


def register_model(fn: Callable[..., nn.Module] | None = None, *, schema: Mapping[str, Spec] | None = None):
    """Register a builder under its function name (`@register_model` or `@register_model(schema={...})`).

    The built model records its name (`hares_name`) and its checked overrides (`hares_config`).
    """

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        record = Record(dict(schema)) if schema is not None else _signature_schema(fn)

        def build(**overrides: Any) -> nn.Module:
            if record is not None:
                overrides = record.check(overrides, "")
            model = fn(**overrides)
            model.hares_name = name
            model.hares_config = dict(overrides)
            return model

        build.__name__ = name
        build.__doc__ = fn.__doc__
        build.config_schema = record
        MODELS.register(build, name=name)
        return fn

    return add(fn) if fn is not None else add


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered network by name; `None` overrides are dropped; the rest must fit its schema."""
    return MODELS.build(name, **overrides)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern."""
    return MODELS.list(pattern)


def config_schema(name: str) -> Record | None:
    return getattr(MODELS.get(name), "config_schema", None)


def check_model_config(name: Any, config: Any, where: str = "") -> tuple[nn.Module, dict[str, Any]]:
    """Validate an untrusted (name, config) pair and build it on the meta device (no memory, no I/O).

    Returns (meta model, checked config). Raises `OptionError` naming `where` when the name is not a
    registered network, the config does not fit the network's schema, or the network would exceed `MAX_PARAMS`.
    """
    if not isinstance(name, str) or name not in MODELS:
        raise OptionError(f"{where}unknown network {_short(name)}; see `hares encoders`")
    if not isinstance(config, dict):
        raise OptionError(f"{where}network config must be a JSON object, got {type(config).__name__}")
    schema = config_schema(name)
    if schema is None and config:
        raise OptionError(
            f"{where}network {name!r} declares no config schema, so its config keys {sorted(config)[:5]} are refused "
            "(declare one with register_model(schema=...))"
        )
    try:
        checked = schema.check(config, "") if schema is not None else {}
    except OptionError as e:
        raise type(e)(f"{where}network {name!r} config: {e}") from None
    try:
        with torch.device("meta"):
            model = MODELS.get(name)(**checked)
    except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError) as e:
        raise OptionError(f"{where}network {name!r} cannot be built from config {_short(checked)}: {e}") from None
    count = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    if count > MAX_PARAMS:
        raise OptionError(
            f"{where}network {name!r} with this config has {count:,d} values, over the {MAX_PARAMS:,d} limit"
        )
    return model, checked


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
