"""Fixtures shared by the evaluation tests (a uniquely named module: `conftest` is taken): audio, synthetic
embeddings where a linear model is Bayes-optimal, and the scikit-learn reference probe (also used by
benchmarks/mlp_probe.py)."""

from __future__ import annotations

import warnings
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


def sklearn_tuned(splits, cs, multilabel: bool = False) -> tuple[float, float, float]:
    """The reference linear probe: scikit-learn `LogisticRegression` (lbfgs, its default tolerance) on the train
    split's standardised features, fitted along increasing C (each fit warm-started from the last), C chosen on
    validation (ties: the smaller C, the stronger L2). Multi-label: one model per class and one C for all, chosen
    on valid mAP (scikit-learn's average precision over the classes with a positive). Returns (test, valid, C),
    scores as fractions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr), (xva, yva), (xte, yte) = splits
    scaler = StandardScaler().fit(xtr)
    xtr, xva, xte = (scaler.transform(x) for x in (xtr, xva, xte))
    columns = [ytr[:, k] for k in range(ytr.shape[1])] if multilabel else [ytr]
    models = [LogisticRegression(max_iter=2000, warm_start=True) for _ in columns]

    def score(x, y) -> float:
        if not multilabel:
            return float(models[0].score(x, y))
        s = np.stack([m.decision_function(x) for m in models], axis=1)
        return float(np.mean([average_precision_score(y[:, c], s[:, c]) for c in range(y.shape[1]) if y[:, c].any()]))

    best = (-1.0, -1.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the weakest L2 on near-separable data
        for c in sorted(cs):
            for model, y in zip(models, columns):
                model.set_params(C=c).fit(xtr, y)
            valid = score(xva, yva)
            if valid > best[1]:
                best = (score(xte, yte), valid, c)
    return best
