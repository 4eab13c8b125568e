"""Encoder weights as safetensors, with the model name and its config in the metadata (no pickle).

A checkpoint is untrusted input. Before anything is built, its metadata is checked: `hares_name` must be a
registered network and `hares_config` must fit that network's declared schema (known keys, types, ranges; see
`hares.models._registry`); the network is then built on the meta device, its size bounded and every tensor shape
compared with the file's header. Only then is the real network allocated and the weights read, and non-finite
weights are refused. No value from the file ever reaches a loader (timm's `checkpoint_path`, `pretrained`, ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from hares.io import atomic_path
from hares.models._registry import check_model_config, create_model


def save_checkpoint(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
    """Write `model`'s state dict to `path` atomically; metadata records `hares_name` and `hares_config`."""
    name = getattr(model, "hares_name", None)
    if name is None:
        raise ValueError("only models built with hares.models.create_model can be saved as hares checkpoints")
    meta = {"hares_name": name, "hares_config": json.dumps(getattr(model, "hares_config", {}))}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise ValueError(f"{path}: not a safetensors checkpoint ({e})") from e


def _plan(path: str | os.PathLike, name: str | None) -> tuple[str, dict[str, Any], dict[str, tuple[int, ...]]]:
    """(network name, checked config, tensor shapes) of a checkpoint, from its header alone (nothing allocated)."""
    meta = read_metadata(path)
    name = name or meta.get("hares_name")
    if not name:
        raise ValueError(f"{path}: has no 'hares_name' metadata; pass the model name (NAME:PATH)")
    try:
        config = json.loads(meta.get("hares_config", "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: its 'hares_config' metadata is not JSON ({e})") from None
    meta_model, config = check_model_config(name, config, where=f"{path}: ")
    expected = {k: tuple(v.shape) for k, v in meta_model.state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k} {found[k]} (expected {expected[k]})" for k in sorted(expected) if k in found and found[k] != expected[k]
    ]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing {missing[:3]}" if missing else "",
                 f"{len(unexpected)} unexpected {unexpected[:3]}" if unexpected else "",
                 f"{len(wrong)} mis-shaped {wrong[:3]}" if wrong else ""]  # fmt: skip
        raise ValueError(f"{path}: weights do not match network {name!r}: " + "; ".join(p for p in parts if p))
    return name, config, expected


def _check_finite(path: str | os.PathLike, key: str, tensor: torch.Tensor) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{path}: tensor {key!r} holds non-finite values (NaN or inf)")


def check_checkpoint(path: str | os.PathLike, name: str | None = None) -> str:
    """Validate a checkpoint without building the network (metadata, schema, shapes, finite weights, one
    tensor in memory at a time); returns the network name. Raises ValueError naming the file and the problem."""
    name, _, _ = _plan(path, name)
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            _check_finite(path, key, f.get_tensor(key))
    return name


def load_checkpoint(path: str | os.PathLike, name: str | None = None, map_location: str = "cpu") -> nn.Module:
    """Build the model recorded in `path` (or `name`) and load its weights strictly (see the module docstring)."""
    from safetensors.torch import load_file

    name, config, _ = _plan(path, name)
    model = create_model(name, **config)
    state = load_file(str(path), device=map_location)
    for key, tensor in state.items():
        _check_finite(path, key, tensor)
    model.load_state_dict(state, strict=True)
    return model


def state_dict_hash(model: nn.Module) -> str:
    """A content hash of the weights (sha256 over names, shapes, dtypes and bytes)."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d tensors too
    return h.hexdigest()
