"""Fixtures for the training tests: a registered tiny encoder and small audio folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import write_tone  # noqa: E402  (importing it registers `train_test_tiny`)


@pytest.fixture
def tone_folder(tmp_path: Path) -> Path:
    """12 tones of 1.5 s in nested folders, 4 classes (by folder)."""
    root = tmp_path / "clips"
    for i in range(12):
        write_tone(root / f"class{i % 4}" / f"clip{i:02d}.wav", 200.0 + 150 * (i % 4) + 7 * i, seed=i)
    return root
