"""Slowfast NFNet: the paper's audio encoder (Slowfast NFNet-F0, 62,970,654 parameters, 3456-d output).

Paper: Wang et al., "Towards Learning Universal Audio Representations", ICASSP 2022, arXiv:2111.12124.
Official code: github.com/google-deepmind/slowfast_nfnets (JAX/Haiku, Apache-2.0), `slowfast_nfnet.py`, `base.py`.
NFNets: Brock et al., "High-Performance Large-Scale Image Recognition Without Normalization", arXiv:2102.06171.

Two NFNet pathways on a log-mel (B, 1, T, F): the fast one sees every frame with narrow widths, the slow one
sees the spectrogram max-pooled over 4 frames with 8x the widths. Before each stage a (7, 1)/(4, 1) WSConv
carries fast features into the slow pathway (concatenated after the slow channels). The embedding is the
global mean of each pathway's final map, fast first: 384 + 3072 = 3456 for F0.

Differences from reference: none in the function computed; with the same weights the outputs match the
official model to float32 rounding, <= 1.1e-6 relative (golden test, `tests/models/test_nfnet.py`). For CPU
speed the constant factors (activation gammas, betas, 2 * alpha * skip_gain) are folded into the conv weights
and one per-channel gate, standardised weights are cached in eval mode, and activations are channels-last.
Stochastic-depth masks come from torch's RNG. `forward_frames` (not in the official code) returns frames at
the fast rate (T/4): the slow frames are repeated 4x in time and cropped, then concatenated after the fast ones.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from hares.models._registry import register_model
from hares.models.layers import (
    ACTIVATIONS,
    SqueezeExcite,
    StochDepth,
    WSConv2d,
    activation_parts,
    avg_pool_same,
    gelu_tanh,
    max_pool_same,
)
from hares.schema import Bool, Float, Int, Record, Seq, Str

# The official variant table (`base.slowfast_nfnet_params`); kernels and strides are (time, freq).
F0_SLOW: dict[str, Any] = {
    "width": [256, 512, 1536, 1536],
    "depth": [1, 2, 6, 3],
    "expansion": [0.5] * 4,
    "group_width": [128] * 4,
    "big_width": [True] * 4,
    "drop_rate": 0.2,  # unused: the model has no classifier
    "stem_kernel_pattern": [[1, 3], [1, 3], [1, 3], [3, 3]],
    "stem_stride_pattern": [[2, 2], [1, 1], [1, 1], [2, 2]],
    "kernel_pattern": [[1, 1], [1, 1], [3, 1], [3, 1]],
    "stride_pattern": [[1, 1], [1, 2], [1, 2], [1, 2]],
}
F0_FAST: dict[str, Any] = {
    **F0_SLOW,
    "width": [32, 64, 192, 192],
    "group_width": [16] * 4,
    "stem_kernel_pattern": [[3, 3], [1, 3], [1, 3], [3, 3]],
    "kernel_pattern": [[3, 1], [3, 1], [3, 1], [3, 1]],
}
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "f0": {"slow": F0_SLOW, "fast": F0_FAST},
    # The variant of the golden reference (`shared/golden/sf_nfnet_tiny.npz`): 5,430,725 parameters, 1152-d.
    "tiny": {
        "slow": {**F0_SLOW, "width": [128, 256, 512, 512], "depth": [1, 2, 3, 2], "group_width": [64] * 4},
        "fast": {**F0_FAST, "width": [16, 32, 64, 64], "depth": [1, 2, 3, 2], "group_width": [8] * 4},
    },
    # For fast CPU tests and the demo: same design, one block per stage.
    "micro": {
        "slow": {**F0_SLOW, "width": [32, 64, 128, 128], "depth": [1, 1, 1, 1], "group_width": [16] * 4},
        "fast": {**F0_FAST, "width": [16, 16, 32, 32], "depth": [1, 1, 1, 1], "group_width": [8] * 4},
    },
}

_STAGES = 4
_PAIR = dict(length=2, as_list=True)
# What a checkpoint's (or `create_model`'s) config may set: the pathway table keys and the block constants.
PATHWAY_SCHEMA = Record(
    {
        "width": Seq(Int(ge=1, le=16384), length=_STAGES, as_list=True),
        "depth": Seq(Int(ge=1, le=64), length=_STAGES, as_list=True),
        "expansion": Seq(Float(gt=0, le=16), length=_STAGES, as_list=True),
        "group_width": Seq(Int(ge=1, le=16384), length=_STAGES, as_list=True),
        "big_width": Seq(Bool(), length=_STAGES, as_list=True),
        "drop_rate": Float(ge=0, lt=1),
        "stem_kernel_pattern": Seq(Seq(Int(ge=1, le=31), **_PAIR), length=4, as_list=True),
        "stem_stride_pattern": Seq(Seq(Int(ge=1, le=16), **_PAIR), length=4, as_list=True),
        "kernel_pattern": Seq(Seq(Int(ge=1, le=31), **_PAIR), length=_STAGES, as_list=True),
        "stride_pattern": Seq(Seq(Int(ge=1, le=16), **_PAIR), length=_STAGES, as_list=True),
    }
)
SCHEMA = {
    "slow": PATHWAY_SCHEMA,
    "fast": PATHWAY_SCHEMA,
    "time_ratio": Int(ge=1, le=64),
    "fusion_conv_channel_ratio": Int(ge=1, le=64),
    "fusion_kernel": Seq(Int(ge=1, le=63), **_PAIR),
    "se_ratio": Float(gt=0, le=8),
    "alpha": Float(ge=0, le=10),
    "stochdepth_rate": Float(ge=0, lt=1),
    "act": Str(choices=ACTIVATIONS),
}


class NFBlock(nn.Module):
    """NF bottleneck: act*beta -> [shortcut] ; 1x1 -> (kt,1) grouped -> (1,3) grouped -> 1x1 -> 2*SE -> skip gain."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        use_projection: bool,
        expansion: float = 0.5,
        group_size: int = 128,
        kernel: tuple[int, int] = (3, 1),
        stride: tuple[int, int] = (1, 1),
        beta: float = 1.0,
        alpha: float = 0.2,
        se_ratio: float = 0.5,
        stochdepth_rate: float = 0.0,
        big_width: bool = True,
        nominal_in_ch: int | None = None,
        act: str = "gelu",
    ) -> None:
        super().__init__()
        width = int((out_ch if big_width else (nominal_in_ch or in_ch)) * expansion)
        groups = width // group_size
        if groups < 1:
            raise ValueError(f"bottleneck width {width} is smaller than the group width {group_size}")
        width = groups * group_size
        self.act_fn, self.gamma = activation_parts(act)
        self.beta, self.alpha, self.stride = beta, alpha, tuple(stride)
        self.conv0 = WSConv2d(in_ch, width, 1)
        self.conv1 = WSConv2d(width, width, kernel, stride, groups=groups)
        self.conv1b = WSConv2d(width, width, (1, 3), 1, groups=groups)
        self.conv2 = WSConv2d(width, out_ch, 1)
        self.conv_shortcut = WSConv2d(in_ch, out_ch, 1) if use_projection else None
        self.se = SqueezeExcite(out_ch, out_ch, se_ratio)
        self.stoch_depth = StochDepth(stochdepth_rate) if 0.0 < stochdepth_rate < 1.0 else None
        self.skip_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Official order: out = act(x) * gamma * beta; conv0(out); conv1(act(.) * gamma); ...; 2 * SE(out) * out;
        # stochdepth; * skip_gain; * alpha; + shortcut. The constant factors are folded into the conv weights
        # (`WSConv2d(x, scale)`) and one per-sample, per-channel gate: the same function, fewer passes over memory.
        act, g = self.act_fn, self.gamma
        out = act(x)
        s = g * self.beta
        if self.stride[0] * self.stride[1] > 1:
            shortcut = avg_pool_same(out, self.stride, self.stride)
            if self.conv_shortcut is not None:
                shortcut = self.conv_shortcut(shortcut, s)
            else:
                shortcut = shortcut * s
        elif self.conv_shortcut is not None:
            shortcut = self.conv_shortcut(out, s)
        else:
            shortcut = x  # raw x, not activated
        out = self.conv0(out, s)
        out = self.conv1(act(out), g)
        out = self.conv1b(act(out), g)
        out = self.conv2(act(out), g)
        gate = self.se(out) * (2.0 * self.alpha) * self.skip_gain  # (B, C, 1, 1)
        if self.stoch_depth is not None:
            gate = self.stoch_depth(gate)  # per-sample mask, no rescaling
        return torch.addcmul(shortcut, out, gate)


class NFPathway(nn.Module):
    """One NFNet pathway (the official `NFNet` module): 4-conv stem, blocks, final 1x1 conv.

    `extra_in` lists, per stage, the channels concatenated onto the input of the stage's first block (the
    fast-to-slow fusion); they size that block's conv0 and shortcut but not beta or `use_projection`.
    """

    def __init__(
        self,
        cfg: dict[str, Any],
        extra_in: list[int] | None = None,
        se_ratio: float = 0.5,
        alpha: float = 0.2,
        stochdepth_rate: float = 0.1,
        final_conv_mult: int = 2,
        act: str = "gelu",
    ) -> None:
        super().__init__()
        extra_in = extra_in or [0] * len(cfg["depth"])
        self.act_parts = activation_parts(act)
        ch = cfg["width"][0] // 2
        stem_ch = [1, ch // 8, ch // 4, ch // 2, ch]
        for i, (k, s) in enumerate(zip(cfg["stem_kernel_pattern"], cfg["stem_stride_pattern"])):
            self.add_module(f"stem_conv{i}", WSConv2d(stem_ch[i], stem_ch[i + 1], tuple(k), tuple(s)))
        blocks, expected_std, index, num_blocks = [], 1.0, 0, sum(cfg["depth"])
        stages = zip(
            cfg["width"],
            cfg["depth"],
            cfg["expansion"],
            cfg["group_width"],
            cfg["big_width"],
            cfg["kernel_pattern"],
            cfg["stride_pattern"],
            extra_in,
        )
        for width, depth, expansion, group, big, kernel, stride, extra in stages:
            for b in range(depth):
                s = tuple(stride) if b == 0 else (1, 1)
                in_ch = ch + (extra if b == 0 else 0)
                proj = s[0] * s[1] > 1 or ch != width
                blocks.append(
                    NFBlock(
                        in_ch,
                        width,
                        use_projection=proj,
                        expansion=expansion,
                        group_size=group,
                        kernel=tuple(kernel),
                        stride=s,
                        beta=1.0 / expected_std,
                        alpha=alpha,
                        se_ratio=se_ratio,
                        stochdepth_rate=stochdepth_rate * index / num_blocks,
                        big_width=big,
                        nominal_in_ch=ch,
                        act=act,
                    )
                )
                ch, index = width, index + 1
                if b == 0:  # reset the expected std, but give it one block of growth
                    expected_std = 1.0
                expected_std = (expected_std**2 + alpha**2) ** 0.5
        self.blocks = nn.ModuleList(blocks)
        self.depth = list(cfg["depth"])
        self.stem_out = stem_ch[-1]
        self.out_ch = int(final_conv_mult * ch)
        self.final_conv = WSConv2d(ch, self.out_ch, 1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        act, g = self.act_parts
        x = act(self.stem_conv0(x))
        x = act(self.stem_conv1(x, g))  # conv(act(x) * gamma), gamma folded into the weight
        x = act(self.stem_conv2(x, g))
        return self.stem_conv3(x, g)  # no activation after the last stem conv


class FuseFast2Slow(nn.Module):
    """WSConv (7,1)/(4,1) on the fast stream, plain GELU; concatenated after the slow channels."""

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int] = (7, 1), stride: tuple[int, int] = (4, 1)):
        super().__init__()
        self.conv_f2s = WSConv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x_f: torch.Tensor, x_s: torch.Tensor) -> torch.Tensor:
        return torch.cat([x_s, gelu_tanh(self.conv_f2s(x_f))], dim=1)


class SlowFastNFNet(nn.Module):
    """Slowfast NFNet (official `SlowFastNFNet`). `slow` / `fast` are rows of the official variant table."""

    def __init__(
        self,
        slow: dict[str, Any],
        fast: dict[str, Any],
        time_ratio: int = 4,
        fusion_conv_channel_ratio: int = 2,
        fusion_kernel: tuple[int, int] | list[int] = (7, 1),
        se_ratio: float = 0.5,
        alpha: float = 0.2,
        stochdepth_rate: float = 0.1,
        act: str = "gelu",
    ) -> None:
        super().__init__()
        if len(slow["depth"]) != len(fast["depth"]) or list(slow["depth"]) != list(fast["depth"]):
            raise ValueError(f"slow and fast depths must match, got {slow['depth']} and {fast['depth']}")
        self.time_ratio = time_ratio
        fuse_out = [fast["width"][0] * m * fusion_conv_channel_ratio for m in (1, 4, 8, 16)]
        if len(slow["depth"]) != len(fuse_out):
            raise ValueError(f"a Slowfast NFNet has 4 stages, got depth {slow['depth']}")
        kw = dict(se_ratio=se_ratio, alpha=alpha, stochdepth_rate=stochdepth_rate, act=act)
        self.fast = NFPathway(fast, **kw)
        self.slow = NFPathway(slow, extra_in=fuse_out, **kw)
        fast_in = [self.fast.stem_out] + list(fast["width"][:-1])  # the fast stream fed to each fusion
        stride = (time_ratio, 1)
        self.fuse = nn.ModuleList(FuseFast2Slow(c, o, tuple(fusion_kernel), stride) for c, o in zip(fast_in, fuse_out))
        self.embed_dim = self.fast.out_ch + self.slow.out_ch

    def forward_maps(
        self, x: torch.Tensor, stages: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, T, F) -> fast (B, Cf, ceil(T/4), F') and slow (B, Cs, ceil(T/16), F') maps after final conv+GELU.

        `stages`, when given, receives each stage's (fast, slow) output maps.
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected log-mels of shape (B, 1, T, F), got {tuple(x.shape)}")
        # Channels-last activations: oneDNN's fastest CPU convs (free here: with one channel, NCHW is NHWC).
        x = x.contiguous(memory_format=torch.channels_last)
        h_s = max_pool_same(x, (self.time_ratio, 1), (self.time_ratio, 1))  # (B, 1, ceil(T/4), F)
        h_s, h_f = self.slow.stem(h_s), self.fast.stem(x)
        depth = 0
        for stage, n in enumerate(self.fast.depth):
            h_s = self.fuse[stage](h_f, h_s)
            for _ in range(n):
                h_f = self.fast.blocks[depth](h_f)
                h_s = self.slow.blocks[depth](h_s)
                depth += 1
            if stages is not None:
                stages.append((h_f, h_s))
        h_f = gelu_tanh(self.fast.final_conv(h_f))  # plain GELU after the final convs
        h_s = gelu_tanh(self.slow.final_conv(h_s))
        return h_f, h_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_f, h_s = self.forward_maps(x)
        return torch.cat([h_f.mean(dim=(2, 3)), h_s.mean(dim=(2, 3))], dim=1)  # (B, Cf + Cs), fast first

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-layer probes: each stage's fast and slow maps averaged over time and frequency, then the embedding."""
        stages: list[tuple[torch.Tensor, torch.Tensor]] = []
        h_f, h_s = self.forward_maps(x, stages)
        out = {f"stage{i + 1}": torch.cat([f.mean(dim=(2, 3)), s.mean(dim=(2, 3))], dim=1) for i, (f, s) in
               enumerate(stages)}  # fmt: skip
        out["final"] = torch.cat([h_f.mean(dim=(2, 3)), h_s.mean(dim=(2, 3))], dim=1)  # == forward(x)
        return out

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) -> (B, ceil(T/4), embed_dim): fast frames, then slow frames repeated to the fast rate."""
        h_f, h_s = self.forward_maps(x)
        f = h_f.mean(dim=3)  # (B, Cf, Tf)
        s = h_s.mean(dim=3).repeat_interleave(self.time_ratio, dim=2)[:, :, : f.shape[2]]  # (B, Cs, Tf)
        return torch.cat([f, s], dim=1).transpose(1, 2)


def _merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    cfg = copy.deepcopy(base)
    unknown = set(override or {}) - set(base)
    if unknown:
        raise KeyError(f"unknown pathway keys {sorted(unknown)}; known: {sorted(base)}")
    cfg.update(copy.deepcopy(override or {}))
    return cfg


def sf_nfnet(variant: str = "f0", slow: dict | None = None, fast: dict | None = None, **kwargs: Any) -> SlowFastNFNet:
    """A Slowfast NFNet from a named variant, with pathway keys overridden by `slow` / `fast` (plain JSON values)."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown Slowfast NFNet variant {variant!r}; choose from: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    return SlowFastNFNet(_merge(v["slow"], slow), _merge(v["fast"], fast), **kwargs)


@register_model(schema=SCHEMA)
def sf_nfnet_f0(**kwargs: Any) -> SlowFastNFNet:
    """Slowfast NFNet-F0, the paper's encoder: 62,970,654 parameters, 3456-d (fast 384 | slow 3072)."""
    return sf_nfnet("f0", **kwargs)


@register_model(schema=SCHEMA)
def sf_nfnet_tiny(**kwargs: Any) -> SlowFastNFNet:
    """The golden reference's small variant: 5,430,725 parameters, 1152-d (fast 128 | slow 1024)."""
    return sf_nfnet("tiny", **kwargs)


@register_model(schema=SCHEMA)
def sf_nfnet_micro(**kwargs: Any) -> SlowFastNFNet:
    """A very small Slowfast NFNet for CPU tests and the demo (one block per stage), 320-d."""
    return sf_nfnet("micro", **kwargs)
