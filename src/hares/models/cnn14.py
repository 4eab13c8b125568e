"""PANNs CNN14 up to its 2048-d embedding (the paper's Table 2 baseline "CNN14").

Paper: Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio Pattern Recognition",
IEEE/ACM TASLP 2020, arXiv:1912.10211. Official code: github.com/qiuqiangkong/audioset_tagging_cnn
(`pytorch/models.py: Cnn14`, MIT). Written here from that definition.

On a log-mel (B, 1, T, F): BatchNorm over the mel bins (`bn0`), six conv blocks (two 3x3 conv-BN-ReLU, 2x2
average pool except the last, dropout 0.2) with 64..2048 channels, mean over frequency, max + mean over time,
dropout 0.5, `fc1` (2048 -> 2048) + ReLU = the embedding. The 527-way AudioSet head is left out.

Parameters: 79,673,824 with 80 mel bins (79,673,792 with PANNs' 64). The paper's Table 2 lists CNN14 at
71m, which matches neither; we follow the PANNs definition. Differences from reference: no built-in STFT /
log-mel / SpecAugment / mixup (hares' frontend and pre-training provide them); `bn0` ties the model to `mel_bins`
input bins; inputs shorter than 32 frames are padded (edge-replicated) to 32 so that the five 2x pools fit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hares.models._registry import register_model
from hares.schema import Int, Seq

MIN_FRAMES = 32


class ConvBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers, then average pooling."""

    def __init__(self, cin: int, cout: int, pool: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = pool
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool > 1 else x


class Cnn14(nn.Module):
    """PANNs CNN14 without the classifier: (B, 1, T, mel_bins) -> (B, 2048)."""

    def __init__(self, mel_bins: int = 80, widths: list[int] | tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)):
        super().__init__()
        self.mel_bins = mel_bins
        self.bn0 = nn.BatchNorm2d(mel_bins)
        chans = [1, *widths]
        self.blocks = nn.ModuleList(
            ConvBlock(chans[i], chans[i + 1], 2 if i < len(widths) - 1 else 1) for i in range(len(widths))
        )
        self.fc1 = nn.Linear(widths[-1], widths[-1])
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.zeros_(self.fc1.bias)
        self.embed_dim = widths[-1]

    def feature_map(self, x: torch.Tensor, blocks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """(B, 1, T, F) -> the last conv block's map (B, C, T/32, F/32); `blocks` receives every block's map."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[3] != self.mel_bins:
            raise ValueError(f"CNN14 expects log-mels (B, 1, T, {self.mel_bins}), got {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            x = F.pad(x, (0, 0, 0, MIN_FRAMES - x.shape[2]), mode="replicate")
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # BatchNorm over mel bins
        for block in self.blocks:
            x = F.dropout(block(x), p=0.2, training=self.training)
            if blocks is not None:
                blocks.append(x)
        return x

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-layer probes: each conv block's map averaged over time and frequency, then the fc1 embedding."""
        maps: list[torch.Tensor] = []
        self.feature_map(x, maps)
        out = {f"block{i + 1}": m.mean(dim=(2, 3)) for i, m in enumerate(maps)}
        out["fc1"] = self.forward(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_map(x).mean(dim=3)  # (B, C, T')
        x = x.amax(dim=2) + x.mean(dim=2)  # (B, C)
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.fc1(x))
        return F.dropout(x, p=0.5, training=self.training)  # PANNs' `embedding`

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) -> (B, T/32, 2048): the last conv map averaged over frequency."""
        return self.feature_map(x).mean(dim=3).transpose(1, 2)


SCHEMA = {"mel_bins": Int(ge=1, le=1024), "widths": Seq(Int(ge=1, le=16384), min_len=1, max_len=16, as_list=True)}


@register_model(schema=SCHEMA)
def cnn14(**kwargs: Any) -> Cnn14:
    """PANNs CNN14 to its fc1 embedding: 79,673,824 parameters at 80 mel bins, 2048-d."""
    return Cnn14(**kwargs)


@register_model(schema=SCHEMA)
def cnn14_tiny(**kwargs: Any) -> Cnn14:
    """A tiny CNN14 for tests (widths 8..256)."""
    return Cnn14(**{"widths": [8, 16, 32, 64, 128, 256], **kwargs})
