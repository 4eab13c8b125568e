"""Load parameters of the official Haiku Slowfast NFNet (google-deepmind/slowfast_nfnets) into ours.

Haiku names look like `slow_fast_nf_net/~/NFNet_1/~/nf_block_3/~/conv1b/w` (see
`shared/golden/sf_nfnet_f0_params.tsv`): `NFNet` is the fast pathway (built first), `NFNet_1` the slow one,
blocks are numbered over the whole pathway (`nf_block`, `nf_block_1`, ...), fusions are
`fuse_fast2_slow{,_1,_2,_3}/~/conv_f2s`. Conv weights are HWIO and become OIHW; `Linear.w` is (in, out)
and is transposed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

_PATHWAYS = {"NFNet": "fast", "NFNet_1": "slow"}
_CONV_PARAMS = {"w": "weight", "gain": "gain", "bias": "bias"}
_LINEAR = {"linear": "fc0", "linear_1": "fc1"}
_LINEAR_PARAMS = {"w": "weight", "b": "bias"}


def _index(suffix: str | None) -> int:
    return int(suffix[1:]) if suffix else 0


def haiku_to_torch_name(name: str) -> str:
    """Our state-dict key for one Haiku parameter name; `KeyError` if the name is not a Slowfast NFNet's."""
    parts = name.split("/")
    if parts[:2] != ["slow_fast_nf_net", "~"] or len(parts) < 4:
        raise KeyError(f"not a Slowfast NFNet parameter: {name!r}")
    mod, rest = parts[2], parts[3:]
    m = re.fullmatch(r"fuse_fast2_slow(_\d+)?", mod)
    if m and rest[:2] == ["~", "conv_f2s"] and len(rest) == 3 and rest[2] in _CONV_PARAMS:
        return f"fuse.{_index(m.group(1))}.conv_f2s.{_CONV_PARAMS[rest[2]]}"
    if mod not in _PATHWAYS or not rest or rest[0] != "~":
        raise KeyError(f"not a Slowfast NFNet parameter: {name!r}")
    path, rest = _PATHWAYS[mod], rest[1:]
    m = re.fullmatch(r"(stem_conv\d|final_conv)", rest[0])
    if m and len(rest) == 2 and rest[1] in _CONV_PARAMS:
        return f"{path}.{rest[0]}.{_CONV_PARAMS[rest[1]]}"
    m = re.fullmatch(r"nf_block(_\d+)?", rest[0])
    if m:
        block = f"{path}.blocks.{_index(m.group(1))}"
        tail = rest[1:]
        if tail == ["skip_gain"]:
            return f"{block}.skip_gain"
        if len(tail) == 3 and tail[0] == "~" and tail[2] in _CONV_PARAMS:
            if tail[1] in ("conv0", "conv1", "conv1b", "conv2", "conv_shortcut"):
                return f"{block}.{tail[1]}.{_CONV_PARAMS[tail[2]]}"
        if len(tail) == 5 and tail[:3] == ["~", "squeeze_excite", "~"] and tail[3] in _LINEAR:
            if tail[4] in _LINEAR_PARAMS:
                return f"{block}.se.{_LINEAR[tail[3]]}.{_LINEAR_PARAMS[tail[4]]}"
    raise KeyError(f"not a Slowfast NFNet parameter: {name!r}")


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Accept both `{"module/param": array}` and Haiku's nested `{"module": {"param": array}}`."""
    flat: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}/{k}" if prefix else k
        if isinstance(v, Mapping):
            flat.update(_flatten(v, key))
        else:
            flat[key.removeprefix("params/")] = v
    return flat


def _to_torch(key: str, value: Any) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(value, dtype=np.float32).copy())
    if key.endswith(".weight") and t.ndim == 4:
        return t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    if key.endswith(".weight") and t.ndim == 2:
        return t.t().contiguous()  # (in, out) -> (out, in)
    return t


def convert_haiku(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Haiku parameter mapping -> our state dict (float32 tensors), without checking against a model."""
    return {(k := haiku_to_torch_name(name)): _to_torch(k, v) for name, v in _flatten(params).items()}


def load_haiku(model: nn.Module, params: Mapping[str, Any]) -> nn.Module:
    """Load a Haiku Slowfast NFNet parameter mapping into `model` (every parameter, shapes checked); returns it.

    `params` maps `"module path/param"` to arrays (an optional leading `params/` is dropped), or is Haiku's
    nested dict. Raises `ValueError` naming the missing, unexpected or mis-shaped parameters.
    """
    state = convert_haiku(params)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: haiku {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"Haiku parameters do not fit {type(model).__name__}: {len(missing)} missing {missing[:4]}, "
            f"{len(unexpected)} unexpected {unexpected[:4]}, {len(wrong)} mis-shaped {wrong[:4]}"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return model
