"""BYOL-A's audio encoder (the paper's Table 2 baseline "BYOL-A CNN"), d = 2048.

Paper: Niizumi et al., "BYOL for Audio: Self-Supervised Learning for General-Purpose Audio Representation",
IJCNN 2021, arXiv:2103.06695. Official code: github.com/nttcslab/byol-a (`byol_a/models.py: AudioNTT2020`, MIT).
Written here from that definition.

Three blocks of 3x3 conv (64 ch) -> BN -> ReLU -> 2x2 max-pool; each time step's (mel, channel) map is
flattened and passed through Linear -> ReLU -> Dropout(0.3) -> Linear -> ReLU (the frame embeddings); the clip
embedding is max + mean over time. 5,321,856 parameters at BYOL-A's 64 mel bins; 5,584,000 at hares' 80 bins
(the default here, to fit hares' frontend).

Differences from reference: the input is (B, 1, T, F) rather than (B, 1, F, T); the flattening order
(mel-major, channel-minor) is BYOL-A's, so its weights map one to one. The first Linear ties the model to
`n_mels // 8` frequency bins after pooling; inputs shorter than 8 frames are edge-padded to 8.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hares.models._registry import register_model
from hares.schema import Float, Int


class AudioNTT2020(nn.Module):
    """BYOL-A encoder: (B, 1, T, n_mels) -> (B, d)."""

    def __init__(self, n_mels: int = 80, d: int = 2048, channels: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.n_mels = n_mels
        layers: list[nn.Module] = []
        for cin in (1, channels, channels):
            layers += [nn.Conv2d(cin, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(channels * (n_mels // 8), d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d), nn.ReLU()
        )
        self.embed_dim = d

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) -> (B, T/8, d): BYOL-A's per-time-step features (after its MLP)."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[3] // 8 != self.n_mels // 8:
            raise ValueError(f"BYOL-A's encoder expects log-mels (B, 1, T, {self.n_mels}), got {tuple(x.shape)}")
        if x.shape[2] < 8:
            x = F.pad(x, (0, 0, 0, 8 - x.shape[2]), mode="replicate")
        x = self.features(x)  # (B, C, T', F')
        x = x.permute(0, 2, 3, 1)  # (B, T', F', C)
        return self.fc(x.reshape(x.shape[0], x.shape[1], -1))  # (B, T', d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_frames(x)
        return x.amax(dim=1) + x.mean(dim=1)  # (B, d)


SCHEMA = {
    "n_mels": Int(ge=8, le=1024),
    "d": Int(ge=1, le=65536),
    "channels": Int(ge=1, le=4096),
    "dropout": Float(ge=0, lt=1),
}


@register_model(schema=SCHEMA)
def byola_cnn(**kwargs: Any) -> AudioNTT2020:
    """BYOL-A's AudioNTT2020 encoder, d=2048: 5,584,000 parameters at 80 mel bins (5,321,856 at 64)."""
    return AudioNTT2020(**kwargs)


@register_model(schema=SCHEMA)
def byola_tiny(**kwargs: Any) -> AudioNTT2020:
    """A tiny BYOL-A encoder for tests (16 channels, d=64)."""
    return AudioNTT2020(**{"channels": 16, "d": 64, **kwargs})
