"""Bidirectional CPC (the paper's Table 2 row "Bidir-CPC", 38m parameters, waveform input).

The paper (Wang et al. 2022) takes the network of [11] (Wang, Kawakami & van den Oord, "Contrastive predictive
coding of audio with an adversary", Interspeech 2020), which has no public code. The nearest public model is the
bidirectional CPC of Borgholt et al. (arXiv 2102.00850, corticph/scaling-contrastive, `model/encoder.py`,
`model/context.py`); written here from that definition, in PyTorch:

- encoder: six Conv1d layers without bias, channels (64, 128, 192, 256, 512, 512), kernels (10, 8, 4, 4, 4, 1),
  strides (5, 4, 2, 2, 2, 1), TensorFlow "same" padding, each followed by GroupNorm(32) and a ReLU clipped at 5.
  The strides multiply to 160 samples: one frame per **10 ms** at 16 kHz (ceil(N / 160) frames), as in the
  public model and in CPC_audio (whose 12 predicted steps then span 120 ms). A 20 ms variant (wav2vec 2.0's frame
  rate) with the same parameters is `cpc_bidir(encoder={"strides": [5, 4, 2, 2, 2, 2]})`;
- context: a forward LSTM stack on the frames and a backward LSTM stack on the time-reversed frames, their outputs
  concatenated per frame.

Parameter count (what is counted: the encoder and both LSTM stacks, i.e. the network that is exported and
evaluated; the 2 x 12 CPC prediction heads live in the objective and are discarded, like the SimCLR projector,
which the paper's other counts leave out too). The public model's stacks are 4 layers x 512 units: 17,962,496
17,960,832 parameters. The paper says 38m; 4 layers x 768 units per direction give **37,375,872** (1.6% under
38M), the default here (`cpc_bidir`). LSTM biases are counted as cuDNN (and the public model's `CudnnLSTM`) keeps
them: an input and a recurrent bias per gate. The 512-unit public configuration is `cpc_bidir(hidden=512)`.

Evaluation (`hares eval`): `forward` time-averages the context output, i.e. the concatenated last-layer outputs of
the forward and backward stacks (2 x hidden = 1536-d); `forward_frames` gives the frames, `forward_layers` the
time-averaged encoder output and each LSTM layer (both directions concatenated) for a per-layer probe.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hares.models._registry import register_model
from hares.schema import Float, Int, Record, Seq

HOP = 160  # samples per frame (10 ms): 5 * 4 * 2 * 2 * 2 * 1


class ClippedReLU(nn.Module):
    """min(max(x, 0), clip) (scaling-contrastive's activation, clip 5)."""

    def __init__(self, clip: float = 5.0) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0.0, self.clip)


class SameConv1d(nn.Conv1d):
    """Conv1d with TensorFlow's "same" padding for any stride: ceil(N / stride) outputs, the extra pad on the right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        n = x.shape[-1]
        pad = max((-(-n // s) - 1) * s + k - n, 0)
        return super().forward(nn.functional.pad(x, (pad // 2, pad - pad // 2)))


class ConvEncoder(nn.Module):
    """Waveform (B, N) -> frames (B, ceil(N / 160), C) for the default strides."""

    def __init__(
        self,
        channels: tuple[int, ...] = (64, 128, 192, 256, 512, 512),
        kernels: tuple[int, ...] = (10, 8, 4, 4, 4, 1),
        strides: tuple[int, ...] = (5, 4, 2, 2, 2, 1),
        groups: int = 32,
        clip: float = 5.0,
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernels) == len(strides):
            raise ValueError("channels, kernels and strides must have the same length")
        layers: list[nn.Module] = []
        cin = 1
        for c, k, s in zip(channels, kernels, strides):
            layers += [SameConv1d(cin, c, k, s, bias=False), nn.GroupNorm(min(groups, c), c), ClippedReLU(clip)]
            cin = c
        self.net = nn.Sequential(*layers)
        self.dim = cin

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim != 2:
            raise ValueError(f"CPC's encoder expects waveforms (B, N), got {tuple(wav.shape)}")
        return self.net(wav[:, None]).transpose(1, 2)  # (B, T, C)


class BidirCPC(nn.Module):
    """Conv encoder + forward and backward LSTM context stacks: waveform (B, N) -> (B, 2 * hidden)."""

    input_kind = "waveform"

    def __init__(self, hidden: int = 768, layers: int = 4, encoder: dict | None = None) -> None:
        super().__init__()
        self.encoder = ConvEncoder(**(encoder or {}))
        self.forward_lstm = _stack(self.encoder.dim, hidden, layers)
        self.backward_lstm = _stack(self.encoder.dim, hidden, layers)
        self.hidden, self.layers = hidden, layers
        self.embed_dim = 2 * hidden
        self.frame_dim = self.encoder.dim  # what the CPC heads predict

    def context(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames z (B, T, C) -> forward context (B, T, H) (c_t sees z_1..z_t) and backward context (B, T, H)
        (c_t sees z_t..z_T), both aligned with z."""
        fwd, bwd = z, z.flip(1)
        for f, b in zip(self.forward_lstm, self.backward_lstm):
            fwd, bwd = f(fwd)[0], b(bwd)[0]
        return fwd, bwd.flip(1)

    def forward_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, T, 2H): forward and backward context per 10 ms frame."""
        fwd, bwd = self.context(self.encoder(wav))
        return torch.cat([fwd, bwd], dim=-1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.forward_frames(wav).mean(dim=1)  # (B, 2H)

    def forward_layers(self, wav: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Time-averaged outputs of the encoder and of each LSTM layer (both directions): [(name, (B, D)), ...]."""
        z = self.encoder(wav)
        out = [("encoder", z.mean(dim=1))]
        f, b = z, z.flip(1)
        for i, (fl, bl) in enumerate(zip(self.forward_lstm, self.backward_lstm)):
            f, b = fl(f)[0], bl(b)[0]
            out.append((f"context{i + 1}", torch.cat([f, b.flip(1)], dim=-1).mean(dim=1)))
        return out


def _stack(dim: int, hidden: int, layers: int) -> nn.ModuleList:
    """`layers` one-layer LSTMs (the same weights as nn.LSTM(num_layers=layers), each layer's output reachable)."""
    return nn.ModuleList(nn.LSTM(dim if i == 0 else hidden, hidden, batch_first=True) for i in range(layers))


_LAYERS = dict(min_len=1, max_len=16, as_list=True)
# What a checkpoint's (or `create_model`'s) config may set (hares.models._registry).
SCHEMA = {
    "hidden": Int(ge=1, le=8192),
    "layers": Int(ge=1, le=32),
    "encoder": Record(
        {
            "channels": Seq(Int(ge=1, le=8192), **_LAYERS),
            "kernels": Seq(Int(ge=1, le=1024), **_LAYERS),
            "strides": Seq(Int(ge=1, le=1024), **_LAYERS),
            "groups": Int(ge=1, le=1024),
            "clip": Float(gt=0, le=1000),
        }
    ),
}


@register_model(schema=SCHEMA)
def cpc_bidir(**kwargs: Any) -> BidirCPC:
    """Bidirectional CPC (waveform): conv encoder + 2 x 4-layer LSTM (768 units), 37,375,872 parameters."""
    return BidirCPC(**kwargs)


@register_model(schema=SCHEMA)
def cpc_bidir_tiny(**kwargs: Any) -> BidirCPC:
    """A tiny bidirectional CPC for tests and CPU runs: narrow encoder, 2 x 1-layer LSTM of 64 units."""
    enc = {"channels": (16, 16, 32, 32, 64, 64), "groups": 8}
    return BidirCPC(**{"hidden": 64, "layers": 1, "encoder": enc, **kwargs})
