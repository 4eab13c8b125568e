"""Slowfast ResNet50 (with batch, layer, instance or no normalisation) and Slowfast NF-ResNet50.

Paper: Wang et al., ICASSP 2022 (arXiv:2111.12124), Tables 2 and 3. Topology: the audio Slow-Fast of
Kazakos et al., "Slow-Fast Auditory Streams for Audio Recognition", ICASSP 2021 (ekazakos/auditory-slow-fast,
`configs/VGG-Sound/SLOWFAST_R50.yaml`), reimplemented from its description (that code is CC BY-NC-SA, not
copied). NF-ResNet blocks: Brock et al., arXiv:2101.08692, deepmind-research `nfnets/nf_resnet.py` (Apache-2.0).

Slow pathway: T//4 frames picked with `linspace` (as Kazakos), widths 64..2048; fast: every frame, widths / 8.
Bottleneck: [kt,1] conv -> [1,3] conv with the frequency stride -> 1x1 conv, temporal kernels slow 1,1,3,3 /
fast 3,3,3,3; fusions (7,1)/(4,1) conv to 2x the fast width before res2..res5, concatenated after the slow
channels. Embedding: per-pathway global mean, slow first: 2048 + 256 = 2304. `sf_resnet50` has 25,967,208
parameters (the paper's 26M).

Differences from reference: `norm` in {"bn", "ln", "in", "none"} swaps every norm (stem, blocks, shortcuts,
fusions) for BatchNorm2d, GroupNorm(1, C), GroupNorm(C, C) or nothing; with "none" the convs get biases and the
zero-initialised last gamma of each block becomes a zero-initialised scalar gain (a reconstruction: no public
code defines these variants). `sf_nf_resnet50` puts NF-ResNet pre-activation bottlenecks (scaled ReLU,
WSConv, beta/alpha, skip gain, stochastic depth 0.1 without rescaling, no SE) into the same topology; its
fusions are WSConv + ReLU and the head is scaled ReLU + mean, as in NF-ResNet. If a fused tensor's time size
differs from the slow one (it never does for the lengths tested), it is cropped or zero-padded to match.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hares.models._registry import register_model
from hares.models.layers import StochDepth, WSConv2d, activation, frames_from_map, max_pool_same
from hares.schema import Bool, Float, Int, Seq, Str

SLOW_KT = (1, 1, 3, 3)  # temporal kernel of conv a, per stage (Kazakos `_TEMPORAL_KERNEL_BASIS['slowfast']`)
FAST_KT = (3, 3, 3, 3)
FREQ_STRIDES = (1, 2, 2, 2)


def _norm(kind: str, ch: int, zero: bool = False) -> nn.Module:
    if kind == "bn":
        m: nn.Module = nn.BatchNorm2d(ch, eps=1e-5, momentum=0.1)
    elif kind == "ln":
        m = nn.GroupNorm(1, ch)
    elif kind == "in":
        m = nn.GroupNorm(ch, ch)
    elif kind == "none":
        return nn.Identity()
    else:
        raise ValueError(f"unknown norm {kind!r}; choose from bn, ln, in, none")
    if zero:
        nn.init.zeros_(m.weight)
    return m


def _conv(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int], norm: str) -> nn.Conv2d:
    pad = (kernel[0] // 2, kernel[1] // 2)
    conv = nn.Conv2d(cin, cout, kernel, stride, pad, bias=norm == "none")
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # c2_msra_fill
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _slow_frames(x: torch.Tensor, alpha: int) -> torch.Tensor:
    """Kazakos `pack_pathway_output`: T//alpha frames picked by linspace (at least one)."""
    t = x.shape[2]
    idx = torch.linspace(0, t - 1, max(1, t // alpha), device=x.device).long()
    return x.index_select(2, idx)


def _match_time(fused: torch.Tensor, t: int) -> torch.Tensor:
    if fused.shape[2] > t:
        return fused[:, :, :t]
    if fused.shape[2] < t:
        return F.pad(fused, (0, 0, 0, t - fused.shape[2]))
    return fused


class Bottleneck(nn.Module):
    """[kt,1] conv-norm-ReLU -> [1,3]/stride conv-norm-ReLU -> 1x1 conv-norm(zero); + shortcut; ReLU."""

    def __init__(self, cin: int, inner: int, cout: int, kt: int, stride: int, norm: str) -> None:
        super().__init__()
        self.a = _conv(cin, inner, (kt, 1), (1, 1), norm)
        self.a_norm = _norm(norm, inner)
        self.b = _conv(inner, inner, (1, 3), (1, stride), norm)
        self.b_norm = _norm(norm, inner)
        self.c = _conv(inner, cout, (1, 1), (1, 1), norm)
        self.c_norm = _norm(norm, cout, zero=True)
        # With no norm, a zero-initialised scalar gain plays the zero-initialised last gamma.
        self.gain = nn.Parameter(torch.zeros(())) if norm == "none" else None
        self.shortcut = None
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(_conv(cin, cout, (1, 1), (1, stride), norm), _norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.a_norm(self.a(x)))
        out = F.relu(self.b_norm(self.b(out)))
        out = self.c_norm(self.c(out))
        if self.gain is not None:
            out = out * self.gain
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class NFBottleneck(nn.Module):
    """NF-ResNet pre-activation bottleneck on the Slowfast topology ([kt,1] -> [1,3]/stride -> 1x1)."""

    def __init__(
        self, cin: int, inner: int, cout: int, kt: int, stride: int, *, proj: bool, beta: float, alpha: float, sd: float
    ) -> None:
        super().__init__()
        self.act = activation("relu")
        self.beta, self.alpha = beta, alpha
        self.conv0 = WSConv2d(cin, inner, (kt, 1))
        self.conv1 = WSConv2d(inner, inner, (1, 3), (1, stride))
        self.conv2 = WSConv2d(inner, cout, 1)
        self.conv_shortcut = WSConv2d(cin, cout, 1, (1, stride)) if proj else None
        self.stoch_depth = StochDepth(sd) if 0.0 < sd < 1.0 else None
        self.skip_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(x) * self.beta
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(out)
        out = self.conv0(out)
        out = self.conv1(self.act(out))
        out = self.conv2(self.act(out))
        if self.stoch_depth is not None:
            out = self.stoch_depth(out)
        return out * self.skip_gain * self.alpha + shortcut


class Pathway(nn.Module):
    """Stem ([kt,7]/2 conv, norm, ReLU, 3x3/2 max-pool) and four stages of bottlenecks."""

    def __init__(
        self, width: int, depths, kts, stem_kt: int, extra_in, norm: str, nf: bool, alpha=0.2, stochdepth_rate=0.1
    ) -> None:
        super().__init__()
        self.nf = nf
        if nf:
            self.stem_conv = WSConv2d(1, width, (stem_kt, 7), 2)
        else:
            self.stem_conv = _conv(1, width, (stem_kt, 7), (2, 2), norm)
            self.stem_norm = _norm(norm, width)
        stages, ch, expected_std, index, total = [], width, 1.0, 0, sum(depths)
        for s, (depth, kt, stride, extra) in enumerate(zip(depths, kts, FREQ_STRIDES, extra_in)):
            inner, cout, blocks = width * 2**s, width * 4 * 2**s, []
            for b in range(depth):
                cin, st = ch + (extra if b == 0 else 0), stride if b == 0 else 1
                if nf:
                    proj = st > 1 or ch != cout
                    blk = NFBottleneck(
                        cin,
                        inner,
                        cout,
                        kt,
                        st,
                        proj=proj,
                        beta=1 / expected_std,
                        alpha=alpha,
                        sd=stochdepth_rate * index / total,
                    )
                    if b == 0:
                        expected_std = 1.0
                    expected_std = (expected_std**2 + alpha**2) ** 0.5
                else:
                    blk = Bottleneck(cin, inner, cout, kt, st, norm)
                blocks.append(blk)
                ch, index = cout, index + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_ch = ch

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.nf:
            return max_pool_same(self.stem_conv(x), (3, 3), (2, 2))
        return F.max_pool2d(F.relu(self.stem_norm(self.stem_conv(x))), 3, 2, 1)


class Fuse(nn.Module):
    """Fast -> slow lateral: (7,1)/(4,1) conv to 2x channels, norm, ReLU (WSConv + ReLU when NF)."""

    def __init__(self, cin: int, norm: str, nf: bool, alpha: int = 4) -> None:
        super().__init__()
        if nf:
            self.conv: nn.Module = WSConv2d(cin, 2 * cin, (7, 1), (alpha, 1))
            self.norm: nn.Module = nn.Identity()
        else:
            self.conv = _conv(cin, 2 * cin, (7, 1), (alpha, 1), norm)
            self.norm = _norm(norm, 2 * cin)

    def forward(self, x_f: torch.Tensor, x_s: torch.Tensor) -> torch.Tensor:
        fused = F.relu(self.norm(self.conv(x_f)))
        return torch.cat([x_s, _match_time(fused, x_s.shape[2])], dim=1)


class SlowFastResNet(nn.Module):
    """Slowfast ResNet (Kazakos audio topology) with a choice of norm, or NF-ResNet blocks (`nf=True`)."""

    def __init__(
        self,
        depths: list[int] | tuple[int, ...] = (3, 4, 6, 3),
        width: int = 64,
        beta_inv: int = 8,
        alpha: int = 4,
        norm: str = "bn",
        nf: bool = False,
        stochdepth_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if len(depths) != 4:
            raise ValueError(f"a Slowfast ResNet has 4 stages, got depths {depths}")
        _norm(norm, 8)  # validate the name early
        self.alpha, self.nf, self.norm = alpha, nf, norm
        fw = width // beta_inv
        fast_out = [fw] + [fw * 4 * 2**s for s in range(3)]  # fast stream fed to each fusion
        kw = dict(norm=norm, nf=nf, stochdepth_rate=stochdepth_rate)
        self.fast = Pathway(fw, depths, FAST_KT, 5, [0] * 4, **kw)
        self.slow = Pathway(width, depths, SLOW_KT, 1, [2 * c for c in fast_out], **kw)
        self.fuse = nn.ModuleList(Fuse(c, norm, nf, alpha) for c in fast_out)
        self.act = activation("relu") if nf else nn.Identity()
        self.embed_dim = self.slow.out_ch + self.fast.out_ch

    def forward_maps(
        self, x: torch.Tensor, stages: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, T, F) -> slow and fast final maps; `stages`, when given, receives each stage's (slow, fast) maps."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected log-mels of shape (B, 1, T, F), got {tuple(x.shape)}")
        h_s = self.slow.stem(_slow_frames(x, self.alpha))
        h_f = self.fast.stem(x)
        for fuse, slow_stage, fast_stage in zip(self.fuse, self.slow.stages, self.fast.stages):
            h_s = fuse(h_f, h_s)
            h_s, h_f = slow_stage(h_s), fast_stage(h_f)
            if stages is not None:
                stages.append((h_s, h_f))
        return self.act(h_s), self.act(h_f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_s, h_f = self.forward_maps(x)
        return torch.cat([h_s.mean(dim=(2, 3)), h_f.mean(dim=(2, 3))], dim=1)  # (B, 2304), slow first

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-layer probes: each stage's slow and fast maps averaged over time and frequency, then the embedding."""
        stages: list[tuple[torch.Tensor, torch.Tensor]] = []
        h_s, h_f = self.forward_maps(x, stages)
        out = {f"stage{i + 1}": torch.cat([s.mean(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1) for i, (s, f) in
               enumerate(stages[:-1])}  # fmt: skip
        out["final"] = torch.cat([h_s.mean(dim=(2, 3)), h_f.mean(dim=(2, 3))], dim=1)  # == forward(x)
        return out

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) -> (B, T_fast', D): fast frames with the slow frames repeated to their rate, slow first."""
        h_s, h_f = self.forward_maps(x)
        f = frames_from_map(h_f)  # (B, Tf, Cf)
        s = frames_from_map(h_s).repeat_interleave(self.alpha, dim=1)
        s = _match_time(s.transpose(1, 2), f.shape[1]).transpose(1, 2)  # (B, Tf, Cs)
        return torch.cat([s, f], dim=2)


SCHEMA = {
    "depths": Seq(Int(ge=1, le=64), length=4, as_list=True),
    "width": Int(ge=8, le=16384),
    "beta_inv": Int(ge=1, le=64),
    "alpha": Int(ge=1, le=64),
    "norm": Str(choices=("bn", "ln", "in", "none")),
    "nf": Bool(),
    "stochdepth_rate": Float(ge=0, lt=1),
}


@register_model(schema=SCHEMA)
def sf_resnet50(**kwargs: Any) -> SlowFastResNet:
    """Slowfast ResNet50, batch norm by default (`norm="ln" | "in" | "none"`): 25,967,208 parameters, 2304-d."""
    return SlowFastResNet(**kwargs)


@register_model(schema=SCHEMA)
def sf_resnet50_ln(**kwargs: Any) -> SlowFastResNet:
    """Slowfast ResNet50 with layer norm (GroupNorm(1, C)) everywhere."""
    return SlowFastResNet(norm="ln", **kwargs)


@register_model(schema=SCHEMA)
def sf_resnet50_in(**kwargs: Any) -> SlowFastResNet:
    """Slowfast ResNet50 with instance norm (GroupNorm(C, C)) everywhere."""
    return SlowFastResNet(norm="in", **kwargs)


@register_model(schema=SCHEMA)
def sf_resnet50_nonorm(**kwargs: Any) -> SlowFastResNet:
    """Slowfast ResNet50 without normalisation (conv biases, zero-initialised block gains)."""
    return SlowFastResNet(norm="none", **kwargs)


@register_model(schema=SCHEMA)
def sf_nf_resnet50(**kwargs: Any) -> SlowFastResNet:
    """Slowfast NF-ResNet50: NF-ResNet bottlenecks (scaled ReLU, WSConv, skip gains) in the Slowfast topology."""
    return SlowFastResNet(nf=True, **kwargs)


@register_model(schema=SCHEMA)
def sf_resnet_tiny(**kwargs: Any) -> SlowFastResNet:
    """A tiny Slowfast ResNet for tests: one block per stage, slow stem width 16 (any `norm`)."""
    return SlowFastResNet(**{"depths": [1, 1, 1, 1], "width": 16, **kwargs})


@register_model(schema=SCHEMA)
def sf_nf_resnet_tiny(**kwargs: Any) -> SlowFastResNet:
    """A tiny Slowfast NF-ResNet for tests: one block per stage, slow stem width 16."""
    return SlowFastResNet(**{"depths": [1, 1, 1, 1], "width": 16, "nf": True, **kwargs})
