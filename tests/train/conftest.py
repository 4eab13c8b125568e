"""Fixtures for the training tests: a registered tiny encoder and small audio folders."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import _tiny  # noqa: E402,F401  (registers `train_test_tiny`)


def write_tone(path: Path, freq: float, seconds: float = 1.5, sr: int = 16000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.astype(np.float32), sr)
    return path


@pytest.fixture
def tone_folder(tmp_path: Path) -> Path:
    """12 tones of 1.5 s in nested folders, 4 classes (by folder)."""
    root = tmp_path / "clips"
    for i in range(12):
        write_tone(root / f"class{i % 4}" / f"clip{i:02d}.wav", 200.0 + 150 * (i % 4) + 7 * i, seed=i)
    return root
