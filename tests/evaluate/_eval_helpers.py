"""Audio fixtures shared by the evaluation tests (a uniquely named module: `conftest` is taken)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(path: Path, freq: float, seconds: float, seed: int = 0, sr: int = 16000) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.astype(np.float32), sr)
    return path


FREQS = {"low": 300.0, "mid": 1100.0, "high": 2900.0}


def make_csv_task(root: Path, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Three tone classes with jittered pitch and 0.3-1.6 s durations; returns the CSV path."""
    per_split = per_split or {"train": 12, "valid": 6, "test": 6}
    rng = np.random.default_rng(seed)
    rows = ["path,label,split"]
    k = 0
    for split, n in per_split.items():
        for label, f in FREQS.items():
            for i in range(n):
                name = f"{label}_{split}_{i}.wav"
                write_tone(root / name, f * (1 + 0.03 * rng.standard_normal()), rng.uniform(0.3, 1.6), seed=k)
                rows.append(f"{name},{label},{split}")
                k += 1
    (root / "task.csv").write_text("\n".join(rows) + "\n")
    return root / "task.csv"


def blobs(n: int, classes: int, dim: int, seed: int, sep: float = 0.6):
    """Gaussian classes with unequal feature scales and an offset (so standardisation matters)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * sep
    scale = rng.uniform(0.5, 3.0, dim)
    out = []
    for m in n:
        y = rng.integers(0, classes, m)
        out.append((((centres[y] + rng.normal(size=(m, dim))) * scale + 2).astype(np.float32), y))
    return out


def multilabel_blobs(n, classes: int, dim: int, seed: int, sep: float = 0.25, bias: float = -2.0):
    """Multi-label rows where one-vs-rest logistic regression is Bayes-optimal: Gaussian features (unequal scales,
    an offset), each label drawn independently with probability sigmoid(z . w_c + b_c). Targets (N, C) uint8."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(dim, classes)) * sep
    b = rng.normal(bias, 0.5, classes)
    scale = rng.uniform(0.5, 3.0, dim)
    out = []
    for m in n:
        z = rng.normal(size=(m, dim))
        y = (rng.random((m, classes)) < 1 / (1 + np.exp(-(z @ w + b)))).astype(np.uint8)
        out.append(((z * scale + 2).astype(np.float32), y))
    return out
