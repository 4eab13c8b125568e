"""Intervals and paired tests (hares.evaluate.stats): exactness of the vectorised bootstrap, coverage on synthetic
predictions with a known true accuracy, p-values under the null and under a planted difference, and the edge cases
(tiny and one-class test sets)."""

from __future__ import annotations

from math import erf, sqrt

import numpy as np
import pytest
from scipy.stats import kstest
from sklearn.metrics import average_precision_score

from hares.evaluate.metrics import average_precision
from hares.evaluate.stats import (
    FoldPredictions,
    TaskPredictions,
    _rng,
    _weights,
    check_test_targets,
    compute_stats,
    fold_scores,
    holm,
    interval,
    load_predictions,
    paired_test,
    save_predictions,
    seed_scores,
    task_replicates,
)


def _phi(x: float) -> float:
    return 0.5 * (1 + erf(x / sqrt(2)))


def synthetic(rng, n_folds, n, seeds, thr, difficulty, tau=0.02, sigma=0.5, classes=5, encoder="a", task="t"):
    """Accuracy-task predictions from a latent model: clip i is right for seed s when d_i + e_s + sigma*eps < thr,
    with clip difficulty d ~ N(0, 1) (`difficulty`), seed effect e ~ N(0, tau^2). True accuracy (over clips and
    probe seeds): Phi(thr / sqrt(1 + tau^2 + sigma^2))."""
    e = tau * rng.standard_normal(len(seeds))
    right = difficulty[None] + e[:, None] + sigma * rng.standard_normal((len(seeds), len(difficulty))) < thr
    folds = []
    for k in range(n_folds):
        t = np.arange(n) % classes
        pred = np.where(right[:, k * n : (k + 1) * n], t[None], (t[None] + 1) % classes)
        folds.append(FoldPredictions(f"fold{k + 1}", t, np.eye(classes, dtype=np.float32)[pred], IDS[n]))
    return TaskPredictions(encoder, task, "accuracy", tuple(seeds), folds)


IDS = {n: np.arange(n).astype(str) for n in (10, 40, 400)}


def test_weighted_average_precision_equals_sklearn_on_the_resampled_clips():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(60, 6)), 1)  # ties
    targets = (rng.random((60, 6)) < 0.25).astype(np.uint8)
    idx = rng.integers(0, 60, size=(5, 60))
    w = np.stack([np.bincount(i, minlength=60) for i in idx]).astype(np.float64)
    ap = average_precision(scores, targets, w).numpy()  # (5, 6)
    for b in range(5):
        for c in range(6):
            y = targets[idx[b], c]
            if y.sum() == 0:
                assert np.isnan(ap[b, c])
            else:
                assert ap[b, c] == pytest.approx(average_precision_score(y, scores[idx[b], c]), abs=1e-12)
    fold = FoldPredictions("", targets, scores[None].astype(np.float32), IDS[10][:0])
    fold.clip_ids = np.arange(60).astype(str)
    mean_ap = fold_scores(fold, "mAP", w)[0]
    assert mean_ap == pytest.approx(np.nanmean(ap, axis=1), abs=1e-6)


def test_accuracy_replicates_equal_the_metric_on_the_drawn_clips():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 40, 4)).astype(np.float32)
    fold = FoldPredictions("", rng.integers(0, 4, 40), logits, IDS[40])
    w = _weights(_rng(0, "x"), 40, 7)
    assert (w.sum(axis=1) == 40).all()
    got = fold_scores(fold, "accuracy", w)  # (S, B)
    for b in range(7):
        drawn = np.repeat(np.arange(40), w[b].astype(int))
        for s in range(2):
            assert got[s, b] == pytest.approx(np.mean(logits[s, drawn].argmax(-1) == fold.targets[drawn]))


def test_replicates_do_not_depend_on_the_other_encoders_or_their_order():
    rng = np.random.default_rng(2)
    d = rng.standard_normal(800)
    a = synthetic(rng, 2, 400, (0, 1, 2), 1.0, d, encoder="a")
    b = synthetic(rng, 2, 400, (0, 1, 2), 1.0, d, encoder="b")
    both = task_replicates({"b": b, "a": a}, 50, seed=3)
    alone = task_replicates({"a": a}, 50, seed=3)
    assert np.array_equal(both["a"].total, alone["a"].total)
    assert not np.array_equal(task_replicates({"a": a}, 50, seed=4)["a"].total, alone["a"].total)
    assert seed_scores(a).mean() == pytest.approx(100 * np.mean([f.logits.argmax(-1) == f.targets for f in a.folds]))


def test_interval_covers_the_true_accuracy_95_percent_of_the_time():
    """400 synthetic test sets (400 clips, 3 probe seeds, a small seed effect): the 95% interval covers the
    known true accuracy in 93-97% of them (a slow twin checks ESC-50's 5 x 400 clips with 1,000 draws)."""
    rng = np.random.default_rng(10)
    thr, tau, sigma = 1.2, 0.02, 0.5
    truth = 100 * _phi(thr / sqrt(1 + tau**2 + sigma**2))
    covered = []
    for i in range(400):
        preds = synthetic(rng, 1, 400, (0, 1, 2), thr, rng.standard_normal(400), tau, sigma)
        lo, hi = interval(task_replicates({"a": preds}, 400, seed=i)["a"].total, seed_scores(preds).mean())
        covered.append(lo <= truth <= hi)
    assert 0.93 <= np.mean(covered) <= 0.97, np.mean(covered)


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.0, 0.1])
def test_interval_coverage_at_esc50_size(tau):
    """ESC-50: 5 folds x 400 clips; no seed effect, and a seed effect larger than the test-set noise (1.8 points)."""
    rng = np.random.default_rng(11)
    thr, sigma = 1.2, 0.5
    truth = 100 * _phi(thr / sqrt(1 + tau**2 + sigma**2))
    covered = []
    for i in range(1000):
        preds = synthetic(rng, 5, 400, (0, 1, 2), thr, rng.standard_normal(2000), tau, sigma)
        lo, hi = interval(task_replicates({"a": preds}, 500, seed=i)["a"].total, seed_scores(preds).mean())
        covered.append(lo <= truth <= hi)
    assert 0.93 <= np.mean(covered) <= 0.97, np.mean(covered)


def _paired_p(rng, i, shift, n_folds, n, resamples, rho=1.0):
    d = rng.standard_normal(n_folds * n)
    d2 = rho * d + sqrt(1 - rho**2) * rng.standard_normal(len(d))
    a = synthetic(rng, n_folds, n, (0, 1, 2), 1.0 + shift, d, encoder="a")
    b = synthetic(rng, n_folds, n, (0, 1, 2), 1.0, d2, encoder="b")
    reps = task_replicates({"a": a, "b": b}, resamples, seed=i)
    return paired_test(seed_scores(a).mean() - seed_scores(b).mean(), reps["a"] - reps["b"])["p"]


def test_paired_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(20)
    p = np.array([_paired_p(rng, i, 0.0, 1, 400, 200, rho=0.7) for i in range(300)])
    assert kstest(p, "uniform").pvalue > 0.05
    assert 0.02 <= np.mean(p < 0.05) <= 0.08


def test_paired_test_detects_a_planted_3_point_difference_at_esc50_size():
    """2,000 clips (5 folds of 400), accuracy 81.4% vs 84.4%, clip difficulties of the two encoders correlated 0.7
    (measured: detected in 57 of 60 draws; 0.5: 49 of 60; fully independent errors leave ~66% power to any test)."""
    rng = np.random.default_rng(21)
    assert 100 * (_phi(1.13 / sqrt(1.2504)) - _phi(1.0 / sqrt(1.2504))) == pytest.approx(2.95, abs=0.01)
    p = np.array([_paired_p(rng, i, 0.13, 5, 400, 200, rho=0.7) for i in range(60)])
    assert np.mean(p < 0.05) >= 0.85, np.mean(p < 0.05)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.5]) == [0.5]


def _results_and_predictions(preds: dict[str, TaskPredictions]) -> dict:
    rows = [{"encoder": e, "task": p.task, "domain": "custom", "metric": p.metric,
             "score": float(seed_scores(p).mean()), "std": 0.0} for e, p in preds.items()]  # fmt: skip
    results = {"results": rows}
    from hares.evaluate.run import compute_aggregates

    results["aggregates"] = compute_aggregates(results)
    return results


def test_ten_clip_test_sets_give_wide_intervals_and_say_so():
    rng = np.random.default_rng(30)
    preds = {e: synthetic(rng, 1, 10, (0, 1, 2), 1.0, rng.standard_normal(10), encoder=e) for e in ("a", "b")}
    results = compute_stats(_results_and_predictions(preds), {(e, "t"): p for e, p in preds.items()}, resamples=300)
    row = results["results"][0]
    assert row["ci_high"] - row["ci_low"] >= 30 and row["num_test"] == 10
    assert "only 10 test clips" in row["ci_note"] and any("only 10 test clips" in n for n in results["stats"]["notes"])
    (test,) = results["stats"]["paired"]  # one task: its mean over tasks is not tested twice
    assert test["target"] == "t" and not test["significant"]


def test_one_class_in_test_fails_clearly():
    with pytest.raises(ValueError, match="esc50/fold1: every test clip has the same class"):
        check_test_targets("esc50/fold1", np.zeros(40, dtype=np.int64), multilabel=False)
    with pytest.raises(ValueError, match="no test clip has a positive label"):
        check_test_targets("tags", np.zeros((5, 3), dtype=np.uint8), multilabel=True)
    check_test_targets("ok", np.array([0, 1, 1]), multilabel=False)


def test_predictions_round_trip(tmp_path):
    rng = np.random.default_rng(40)
    preds = synthetic(rng, 2, 10, (0, 7), 1.0, rng.standard_normal(20), task="csv:x")
    save_predictions(tmp_path / "p.npz", preds)
    back = load_predictions(tmp_path / "p.npz")
    assert (back.encoder, back.task, back.seeds, back.metric) == ("a", "csv:x", (0, 7), "accuracy")
    for f, g in zip(preds.folds, back.folds):
        assert f.name == g.name and np.array_equal(f.logits, g.logits) and np.array_equal(f.clip_ids, g.clip_ids)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.npz: not a readable hares predictions file"):
        load_predictions(tmp_path / "bad.npz")


def test_stored_predictions_must_match_the_scores():
    rng = np.random.default_rng(50)
    preds = {"a": synthetic(rng, 1, 40, (0, 1), 1.0, rng.standard_normal(40))}
    results = _results_and_predictions(preds)
    results["results"][0]["score"] += 1.0
    with pytest.raises(ValueError, match="do not belong to this result"):
        compute_stats(results, {("a", "t"): preds["a"]}, resamples=20)


@pytest.mark.slow
def test_map_interval_covers_the_population_map():
    """Multi-label: 10 classes (priors 5-30%), 2,000 clips, 3 seeds; the population mAP from 400,000 clips. Clips
    are resampled with all their labels; the bias correction is what brings coverage to 95% (plain percentile
    intervals: 89%, because drawn-twice clips tie with themselves and lift the resampled AP)."""
    from hares.evaluate.metrics import mean_average_precision

    prior, mu = np.linspace(0.05, 0.3, 10), np.linspace(0.8, 2.0, 10)

    def sample(rng, n, seeds):
        y = (rng.random((n, 10)) < prior).astype(np.uint8)
        base = y * mu + 0.5 * rng.standard_normal((n, 1)) + rng.standard_normal((n, 10))
        return y, np.stack([base + 0.3 * rng.standard_normal((n, 10)) for _ in range(seeds)]).astype(np.float32)

    rng = np.random.default_rng(0)
    y, logits = sample(rng, 400_000, 1)
    truth = 100 * mean_average_precision(logits[0], y)
    covered = []
    for i in range(300):
        y, logits = sample(rng, 2000, 3)
        preds = TaskPredictions(
            "a", "m", "mAP", (0, 1, 2), [FoldPredictions("", y, logits, np.arange(2000).astype(str))]
        )
        lo, hi = interval(task_replicates({"a": preds}, 300, seed=i)["a"].total, seed_scores(preds).mean())
        covered.append(lo <= truth <= hi)
    assert 0.93 <= np.mean(covered) <= 0.97, np.mean(covered)
