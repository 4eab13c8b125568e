"""Bootstrap speed (hares.evaluate.stats) at the test-set sizes of the HARES tasks.

Times `task_replicates` (two encoders, 3 probe seeds, shared clip draws) against the obvious reference, a Python
loop per replicate that materialises the drawn clips and scores them (numpy accuracy; scikit-learn
`average_precision_score` per class for mAP, as `metrics.mean_average_precision` is defined), measured on a few
replicates and scaled to the same count. Synthetic logits; sizes from the tasks' test splits:

- ESC-50: 5 folds x 400 clips, 50 classes (accuracy);
- NSynth: 4,096 clips, 128 classes (accuracy);
- MagnaTagATune: 5,329 clips, 50 tags (mAP);
- AudioSet: 20,371 clips, 527 classes (mAP), timed on a few replicates and extrapolated (said so in the output).

    python benchmarks/stats.py [--resamples 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from hares.evaluate.stats import FoldPredictions, TaskPredictions, task_replicates

SEEDS = (0, 1, 2)


def predictions(rng, encoder: str, folds: int, n: int, classes: int, multilabel: bool) -> TaskPredictions:
    out = []
    for k in range(folds):
        if multilabel:
            targets = (rng.random((n, classes)) < 3 / classes).astype(np.uint8)
        else:
            targets = rng.integers(0, classes, n)
        onehot = targets if multilabel else np.eye(classes, dtype=np.uint8)[targets]
        logits = (rng.normal(size=(len(SEEDS), n, classes)) + 1.5 * onehot[None]).astype(np.float32)
        out.append(FoldPredictions(f"fold{k}", targets, logits, np.arange(n).astype(str)))
    return TaskPredictions(encoder, "bench", "mAP" if multilabel else "accuracy", SEEDS, out)


def loop_reference(preds: TaskPredictions, replicates: int, rng) -> float:
    """Seconds for `replicates` replicates of one encoder with a Python loop over replicates, seeds and classes."""
    start = time.perf_counter()
    for _ in range(replicates):
        for f in preds.folds:
            idx = rng.integers(0, len(f.clip_ids), len(f.clip_ids))
            for s in range(len(preds.seeds)):
                x, y = f.logits[s, idx], f.targets[idx]
                if preds.metric == "accuracy":
                    float(np.mean(x.argmax(-1) == y))
                else:
                    np.mean([average_precision_score(y[:, c], x[:, c]) for c in range(y.shape[1]) if y[:, c].any()])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cases = [("ESC-50", 5, 400, 50, False), ("NSynth", 1, 4096, 128, False), ("MagnaTagATune", 1, 5329, 50, True),
             ("AudioSet", 1, 20371, 527, True)]  # fmt: skip
    print(f"{args.resamples} resamples, 2 encoders x 3 seeds, {args.threads} thread(s)")
    for name, folds, n, classes, multilabel in cases:
        pair = {e: predictions(rng, e, folds, n, classes, multilabel) for e in ("a", "b")}
        b = args.resamples if name != "AudioSet" else 8
        start = time.perf_counter()
        task_replicates(pair, 2, seed=0)  # first call: mAP rank plans (one sort per fold and seed), then cached
        first = time.perf_counter() - start
        start = time.perf_counter()
        task_replicates(pair, b, seed=1)
        per = (time.perf_counter() - start) / b
        fixed = max(0.0, first - 2 * per)
        ours = fixed + per * args.resamples
        ref_reps = 3 if multilabel else 50
        ref = 2 * loop_reference(pair["a"], ref_reps, rng) * args.resamples / ref_reps
        note = f", scaled from {b}" if b != args.resamples else ""
        print(f"{name:14s} N={folds * n:6d} C={classes:4d}: hares {ours:8.1f} s (fixed {fixed:.1f} s + "
              f"{1000 * per:.1f} ms/replicate{note}); loop reference {ref:9.1f} s (from {ref_reps} replicates); "
              f"ratio {ref / ours:6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
