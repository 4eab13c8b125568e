"""Fixtures for the evaluation tests: a tiny registered network, tone clips and a small CSV task."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hares.models import MODELS, register_model

sys.path.insert(0, str(Path(__file__).parent))
from _eval_helpers import make_csv_task  # noqa: E402

TINY = "evaluate_test_net"


class TinyNet(nn.Module):
    """log-mel (B, 1, T, F) -> (B, 8): a conv, then global average pooling (length-independent)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.embed_dim = width
        self.conv = nn.Conv2d(1, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))  # (B, width)


@pytest.fixture
def tiny_net() -> str:
    """Registers `evaluate_test_net` for one test (removed afterwards, so registry-wide tests never see it)."""

    def evaluate_test_net(**overrides) -> nn.Module:
        return TinyNet(**overrides)

    register_model(evaluate_test_net)
    yield TINY
    MODELS._items.pop(TINY, None)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spinning on a busy 2-core box (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def csv_task(tmp_path: Path) -> Path:
    return make_csv_task(tmp_path / "task")
