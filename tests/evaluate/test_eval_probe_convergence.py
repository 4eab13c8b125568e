"""Protocol v2 convergence against scikit-learn on real and benchmark features (slow: minutes on a CPU).

Each test fits scikit-learn's `LogisticRegression` with C chosen on validation on the same standardised
features and asserts the hares probe within 0.5 points: the L-BFGS linear probe, and the AudioSet MLP probe
(pinned width 512, dropout 0.1), which must reach at least what the linear optimum reaches (minus 0.5), on
single-label tasks and on a multi-label one (one `LogisticRegression` per class, scored by mAP).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from _eval_helpers import blobs, multilabel_blobs, sklearn_tuned

from hares.evaluate.probe import ArrayRows, ProbeConfig, train_probe

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def hares(splits, kind="linear", **cfg) -> float:
    rows = [(ArrayRows(x.astype(np.float32)), torch.from_numpy(y)) for x, y in splits]
    return train_probe(*rows, kind=kind, num_classes=int(splits[0][1].max()) + 1, cfg=ProbeConfig(**cfg))["test"]


@pytest.fixture(scope="module")
def fsdd_digits(fsdd_files):
    """`logmel` features of FSDD: 10 spoken digits, 6 speakers; recordings 0-32 / 33-40 / 41-49 of each
    speaker and digit as train (1,980 clips) / valid / test."""
    from hares.audio import load_audio
    from hares.evaluate import load_encoder

    encoder = load_encoder("logmel")
    feats, digits, index = [], [], []
    with torch.no_grad():
        for f in fsdd_files:
            digit, _, i = f.stem.split("_")
            feats.append(encoder(torch.from_numpy(load_audio(str(f))).float()[None])[0].numpy())
            digits.append(int(digit))
            index.append(int(i))
    x, y, index = np.stack(feats), np.array(digits), np.array(index)
    masks = [index < 33, (index >= 33) & (index < 41), index >= 41]
    return [(x[m], y[m]) for m in masks]


def test_fsdd_small_split_linear_and_mlp_within_half_a_point_of_sklearn(fsdd_digits):
    assert len(fsdd_digits[0][0]) <= 2000 and ProbeConfig().batch_size > len(fsdd_digits[0][0]) / 10
    reference = sklearn_tuned(fsdd_digits, 10.0 ** np.arange(-4, 3.1, 0.5))[0]
    linear = hares(fsdd_digits, seeds=(0,))
    mlp = hares(fsdd_digits, kind="mlp", seeds=(0,))
    assert abs(linear - reference) <= 0.005, (linear, reference)
    assert mlp >= reference - 0.005, (mlp, reference)
    # protocol v1 (Adam, lr <= 3e-3, weight decay <= 1e-4, patience and budget in epochs only, the last iterate)
    # stops short here: the reason for v2
    v1 = hares(fsdd_digits, seeds=(0,), linear_solver="adam", lrs=(1e-4, 3e-4, 1e-3, 3e-3), max_steps=0,
               patience_steps=0, weight_decays=(0.0, 1e-4), average_decay=0.0)  # fmt: skip
    assert v1 < reference - 0.005


def _large_split():
    splits = blobs([20000, 3000, 5000], classes=20, dim=64, seed=7, sep=0.3)
    return splits, sklearn_tuned(splits, 10.0 ** np.arange(-5, 2.1, 0.5))[0]


def test_large_split_linear_within_half_a_point_of_sklearn():
    splits, reference = _large_split()  # measured: sklearn 63.28, hares 63.48
    assert abs(hares(splits, seeds=(0,)) - reference) <= 0.005


def test_large_split_mlp_reaches_the_linear_optimum():
    splits, reference = _large_split()
    assert hares(splits, kind="mlp", seeds=(0,)) >= reference - 0.005


def test_multilabel_mlp_reaches_the_one_vs_rest_optimum():
    """AudioSet's case (multi-label, mAP) on a task where one-vs-rest logistic regression is optimal: 20 labels
    (prevalence 14-34%), 20,000 / 3,000 / 5,000 rows of 64 features. Measured: scikit-learn 67.27, L-BFGS 67.27."""
    splits = multilabel_blobs([20000, 3000, 5000], classes=20, dim=64, seed=7)
    reference = sklearn_tuned(splits, 10.0 ** np.arange(-5, 2.1, 0.5), multilabel=True)[0]
    rows = [(ArrayRows(x), torch.from_numpy(y)) for x, y in splits]
    run = {"multilabel": True, "num_classes": 20, "metric": "mAP"}
    linear = train_probe(*rows, **run, cfg=ProbeConfig(seeds=(0,)))["test"]
    mlp = train_probe(*rows, kind="mlp", **run, cfg=ProbeConfig(seeds=(0,)))["test"]
    assert abs(linear - reference) <= 0.005, (linear, reference)
    assert mlp >= reference - 0.005, (mlp, reference)


def test_equal_accuracy_on_the_probe_benchmark_data():
    """benchmarks/eval_pipeline.py's 50,000 x 3456 embeddings, 50 classes: the same selection problem (C = 1 /
    (l2 N) over the hares grid's points around the optimum) gives the same test accuracy within 0.5 points."""
    spec = importlib.util.spec_from_file_location("eval_pipeline", REPO / "benchmarks" / "eval_pipeline.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    splits = bench.synthetic_embeddings(50000, 3456, 50)
    ours = hares(splits, seeds=(0,))
    reference = sklearn_tuned(splits, [1 / (l2 * 50000) for l2 in (3.0, 1.0, 0.3, 0.1, 0.03)])[0]
    assert abs(ours - reference) <= 0.005, (ours, reference)
