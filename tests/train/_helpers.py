"""A tiny conv encoder registered for the training tests (the real model families register their own)."""

from __future__ import annotations

import torch
from torch import nn

from hares.models import list_models, register_model


class TinyEncoder(nn.Module):
    """(B, 1, T, F) -> (B, width): two strided convs, mean over time and frequency."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.embed_dim = width
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, width, 3, stride=2, padding=1)
        )

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=3).transpose(1, 2)  # (B, T', D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_frames(x).mean(dim=1)  # (B, D)


def train_test_tiny(width: int = 16) -> nn.Module:
    return TinyEncoder(width)


if "train_test_tiny" not in list_models():
    register_model(train_test_tiny)
