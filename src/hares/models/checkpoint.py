"""Encoder weights as safetensors, with the model name and its config in the metadata (no pickle)."""

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
from hares.models._registry import create_model


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


def load_checkpoint(path: str | os.PathLike, name: str | None = None, map_location: str = "cpu") -> nn.Module:
    """Build the model recorded in `path` (or `name`) and load its weights strictly."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    name = name or meta.get("hares_name")
    if not name:
        raise ValueError(f"{path}: has no 'hares_name' metadata; pass the model name (NAME:PATH)")
    config = json.loads(meta.get("hares_config", "{}"))
    model = create_model(name, **config)
    state = load_file(str(path), device=map_location)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not match model {name!r}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
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
