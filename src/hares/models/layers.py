"""Shared blocks: TF-"SAME" padding and pooling, scaled weight-standardised convs, SE, stochastic depth.

The NF parts follow DeepMind's `slowfast_nfnets/base.py` (Apache-2.0) and `nfnets/base.py`, written here
in PyTorch (layout NCHW = (B, C, T, F)); the formulas are those of the official code, not timm's variants
(timm's `ScaledStdConv2d` adds eps to the variance, DeepMind floors `var * fan_in` at 1e-4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Activation gammas from DeepMind's `base.nonlinearities`: act(x) * gamma has unit variance for x ~ N(0, 1).
GAMMAS: dict[str, float] = {
    "identity": 1.0,
    "celu": 1.270926833152771,
    "elu": 1.2716004848480225,
    "gelu": 1.7015043497085571,
    "leaky_relu": 1.70590341091156,
    "relu": 1.7139588594436646,
    "relu6": 1.7131484746932983,
    "selu": 1.0008515119552612,
    "sigmoid": 4.803835391998291,
    "silu": 1.7881293296813965,
    "softplus": 1.9203323125839233,
    "tanh": 1.5939117670059204,
}

_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "celu": F.celu,
    "elu": F.elu,
    # jax.nn.gelu defaults to the tanh approximation; so does this port.
    "gelu": lambda x: F.gelu(x, approximate="tanh"),
    "leaky_relu": F.leaky_relu,
    "relu": F.relu,
    "relu6": F.relu6,
    "selu": F.selu,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "softplus": F.softplus,
    "tanh": torch.tanh,
}
ACTIVATIONS: tuple[str, ...] = tuple(sorted(_ACTS))


def activation(name: str, scaled: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """The named activation, multiplied by its gamma when `scaled` (DeepMind's `nonlinearities[name]`)."""
    if name not in _ACTS:
        raise KeyError(f"unknown activation {name!r}; choose from: {', '.join(sorted(_ACTS))}")
    fn, gamma = _ACTS[name], GAMMAS[name]
    if not scaled or gamma == 1.0:
        return fn
    return lambda x: fn(x) * gamma


def activation_parts(name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """The unscaled activation and its gamma, for callers that fold gamma into the next conv's weight."""
    if name not in _ACTS:
        raise KeyError(f"unknown activation {name!r}; choose from: {', '.join(sorted(_ACTS))}")
    return _ACTS[name], GAMMAS[name]


def sgelu(x: torch.Tensor) -> torch.Tensor:
    """Scaled GELU of the NFNet pathways: tanh-GELU * 1.7015043497085571."""
    return F.gelu(x, approximate="tanh") * GAMMAS["gelu"]


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """Plain (unscaled) tanh-GELU, as `jax.nn.gelu`."""
    return F.gelu(x, approximate="tanh")


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def same_pads(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[int]:
    """TF-"SAME" padding for (H, W) as an `F.pad` list (left, right, top, bottom)."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (t0, t1), (f0, f1) = pads
    return [f0, f1, t0, t1]


def max_pool_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """`hk.max_pool(padding='SAME')`: pads with -inf, so padding never wins."""
    pads = same_pads(x.shape[-2:], kernel, stride)
    if any(pads):
        x = F.pad(x, pads, value=float("-inf"))
    return F.max_pool2d(x, tuple(kernel), tuple(stride))


def avg_pool_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """`hk.avg_pool(padding='SAME')`: the mean over the valid elements of each window."""
    pads = same_pads(x.shape[-2:], kernel, stride)
    if not any(pads):
        return F.avg_pool2d(x, tuple(kernel), tuple(stride))
    total = F.avg_pool2d(F.pad(x, pads), tuple(kernel), tuple(stride))
    ones = torch.ones((1, 1, *x.shape[-2:]), dtype=x.dtype, device=x.device)
    count = F.avg_pool2d(F.pad(ones, pads), tuple(kernel), tuple(stride))
    return total / count


class WSConv2d(nn.Module):
    """Conv2d with scaled weight standardisation, a per-channel gain and an always-present bias (TF-SAME).

    `w_hat = (w - mean) * gain * rsqrt(max(var * fan_in, eps))` per output channel (DeepMind `WSConv2D`),
    recomputed from the raw weight in training, so weight decay and clipping act on the raw `weight`.
    In eval mode without autograd the standardised weight is cached until a parameter changes.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        groups: int = 1,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.groups, self.eps = _pair(kernel), _pair(stride), groups, eps
        if in_ch % groups or out_ch % groups:
            raise ValueError(f"channels {in_ch}->{out_ch} are not divisible by groups={groups}")
        self.in_ch, self.out_ch = in_ch, out_ch
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // groups, *self.kernel))  # (O, I/g, kt, kf)
        self.gain = nn.Parameter(torch.ones(out_ch))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.fan_in = (in_ch // groups) * self.kernel[0] * self.kernel[1]
        # Stride-1 odd kernels: SAME is symmetric k//2, which conv2d can pad itself (no copy).
        self._sym = self.stride == (1, 1) and all(k % 2 == 1 for k in self.kernel)
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=self.fan_in**-0.5)  # VarianceScaling(1, fan_in, normal): not truncated
        nn.init.ones_(self.gain)
        nn.init.zeros_(self.bias)

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, correction=0)
        scale = torch.rsqrt(torch.clamp(var * self.fan_in, min=self.eps)) * self.gain.view(-1, 1, 1, 1)
        return w * scale - mean * scale

    def _weight(self, scale: float) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            self._cache = None
            w = self.standardized_weight()
            return w * scale if scale != 1.0 else w
        w, g = self.weight, self.gain
        key = (w._version, g._version, w.data_ptr(), g.data_ptr(), w.dtype, w.device, scale)
        # Writes through `.data` (e.g. EMA updates) do not bump `_version`: a sample of the weight and the
        # whole gain are compared as well, so such an update (which moves every element) refreshes the cache.
        flat = w.detach().reshape(-1)
        sample = torch.cat([flat[:: max(1, flat.numel() // 256)], g.detach()])
        if self._cache is None or self._cache[0] != key or not torch.equal(self._cache[1], sample):
            w_hat = (self.standardized_weight() * scale).contiguous(memory_format=torch.channels_last)
            self._cache = (key, sample.clone(), w_hat)
        return self._cache[2]

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """conv(x * scale): a constant input scale (an activation gamma, a beta) is folded into the weight."""
        w = self._weight(scale)
        if self._sym:
            pad = (self.kernel[0] // 2, self.kernel[1] // 2)
            return F.conv2d(x, w, self.bias, self.stride, pad, 1, self.groups)
        pads = same_pads(x.shape[-2:], self.kernel, self.stride)
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, w, self.bias, self.stride, 0, 1, self.groups)

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, kernel={self.kernel}, stride={self.stride}, groups={self.groups}"


def _haiku_linear_init(layer: nn.Linear) -> nn.Linear:
    std = layer.in_features**-0.5  # hk.Linear default: TruncatedNormal(1/sqrt(fan_in)) cut at 2 std
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(layer.bias)
    return layer


class SqueezeExcite(nn.Module):
    """Mean over (T, F) -> Linear -> ReLU -> Linear -> sigmoid; returns the (B, C, 1, 1) gate."""

    def __init__(self, in_ch: int, out_ch: int, ratio: float = 0.5) -> None:
        super().__init__()
        hidden = max(1, int(in_ch * ratio))
        self.fc0 = _haiku_linear_init(nn.Linear(in_ch, hidden))
        self.fc1 = _haiku_linear_init(nn.Linear(hidden, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.mean(dim=(2, 3))  # (B, C)
        h = torch.sigmoid(self.fc1(F.relu(self.fc0(h))))
        return h[:, :, None, None]  # (B, C, 1, 1)


class StochDepth(nn.Module):
    """Per-sample drop of a residual branch in training, without 1/keep rescaling (DeepMind `StochDepth`)."""

    def __init__(self, drop_rate: float) -> None:
        super().__init__()
        self.drop_rate = float(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_rate == 0.0:
            return x
        r = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x * torch.floor(1.0 - self.drop_rate + r)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate:.4f}"


def frames_from_map(feature_map: torch.Tensor) -> torch.Tensor:
    """(B, C, T', F') feature map -> (B, T', C) frame embeddings (mean over frequency)."""
    return feature_map.mean(dim=3).transpose(1, 2)
