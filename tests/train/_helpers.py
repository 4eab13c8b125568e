"""Helpers for the training tests: a registered tiny conv encoder, a tone writer (importable by spawned ranks) and
a run killed right after a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import hares.train.loop as loop
from hares.models import list_models, register_model
from hares.train.config import get_preset


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


def write_tone(path: Path, freq: float, seconds: float = 1.5, sr: int = 16000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.astype(np.float32), sr)
    return path


class Crash(RuntimeError):
    """Stands in for a kill right after a checkpoint was written."""


def run_killed_after(monkeypatch: pytest.MonkeyPatch, preset: str, out: Path, step: int, **config) -> None:
    """Run `preset` into `out` and kill it (raise `Crash`) right after the checkpoint of `step` was written."""
    real_save = loop.save_training_state

    def save_then_die(out, at, *args, **kwargs):
        path = real_save(out, at, *args, **kwargs)
        if at == step:
            raise Crash
        return path

    monkeypatch.setattr(loop, "save_training_state", save_then_die)
    with pytest.raises(Crash):
        loop.pretrain(get_preset(preset, out=str(out), **config))
    monkeypatch.setattr(loop, "save_training_state", real_save)
