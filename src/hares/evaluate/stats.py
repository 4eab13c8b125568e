"""How sure a score is: bootstrap confidence intervals and paired tests from the per-clip test predictions.

The method (docs/STATISTICS.md has the reasoning and the measured coverage):

- **Test clips.** A replicate draws, for every fold of a task, as many clips as the fold's test split holds, with
  replacement, from that fold's test clips (ESC-50: the 400 clips of each of its 5 folds, so the 2,000 clips of
  all folds; mAP tasks resample clips with all their labels). The metric is computed on the drawn clips: accuracy
  as counts @ correct, mAP as the AP of the count-weighted clip set (`metrics.weighted_ap`, one sort per seed,
  identical to scikit-learn on the clips repeated), so no Python loop runs per replicate.
- **Probe seeds.** Per-seed scores differ by the seed's own effect and by clip noise; the clip bootstrap of the
  seed-mean score covers the noise, and the seed effect's variance (s^2 over seeds minus the clip-noise part, the
  random-effects ANOVA estimate) is added as sqrt(var / S) * Student-t(S - 1) draws, because it is estimated from
  S (often 3) seeds.
- **Aggregates.** Every task's test set is resampled in each replicate (they are independent), so the domain
  averages and the HARES score have replicates, hence intervals.
- **Intervals.** Bias-corrected (BC) percentile intervals of the replicates (95% by default).
- **Paired tests.** Two encoders are compared on the same drawn clips: the variance of their difference is the
  paired clip-bootstrap variance plus both seed variances, tested with Welch-Satterthwaite t (p-values are not
  limited to 1/resamples, which matters after a multiple-comparison correction). All paired tests of a report
  form one family, corrected with Holm's step-down method.
- **Determinism.** Clip draws are keyed by (seed, task, fold, size) and seed draws by (seed, task, encoder), so a
  result does not depend on which other encoders are in the run: merging runs reproduces a joint run.

Own code rather than `scipy.stats.bootstrap`: that resamples one array per statistic call and has no paired,
stratified-by-fold, weighted-AP or two-level form; here one weight matrix serves every encoder and seed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hares.evaluate.metrics import ap_plan, domain_averages, weighted_ap
from hares.io import atomic_path

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
ALPHA = 0.05
SMALL_TEST = 100  # fewer test clips than this: the interval is wide and the bootstrap itself is rough
DRAW_BUDGET = 1 << 22  # clip draws generated per block (fixed, so draws do not depend on memory settings)
WORK_BUDGET = 1 << 22  # elements per block of the weighted-AP computation (B_block * ranks kept)
METHOD = (
    "score intervals: bias-corrected percentile bootstrap over test clips (stratified by fold; mAP resamples "
    "clips) of the seed-mean score, plus the probe-seed spread (s^2/S, Student t with S-1 df); aggregates "
    "resample every task jointly; paired tests: the same clip draws for both encoders, Welch-Satterthwaite t on "
    "the paired bootstrap variance plus both seed variances; Holm correction over all paired tests"
)


@dataclass
class FoldPredictions:
    """One fold's test split: targets (N,) int64 or multi-hot (N, C), logits (S, N, C) for S seeds, clip ids."""

    name: str
    targets: np.ndarray
    logits: np.ndarray
    clip_ids: np.ndarray
    plans: dict[int, dict] = field(default_factory=dict, repr=False, compare=False)  # mAP rank plans per seed


@dataclass
class TaskPredictions:
    """The per-clip test outputs of one encoder on one task, every fold and probe seed."""

    encoder: str
    task: str
    metric: str
    seeds: tuple[int, ...]
    folds: list[FoldPredictions]

    @property
    def num_test(self) -> int:
        return sum(len(f.clip_ids) for f in self.folds)


# ----------------------------------------------------------------------------------------------- storage
def predictions_file(encoder: str, task: str) -> str:
    """A readable, unique file name for (encoder, task) under a run's `predictions/`."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{encoder}__{task}").strip("_")[:80]
    digest = hashlib.sha1(json.dumps([encoder, task]).encode()).hexdigest()[:8]
    return f"{safe}-{digest}.npz"


def save_predictions(path: str | os.PathLike, preds: TaskPredictions) -> None:
    """Compressed .npz: per fold `fold{k}.targets`, `fold{k}.clip_ids`, `fold{k}.seed{s}.logits`; written atomically."""
    meta = {"encoder": preds.encoder, "task": preds.task, "metric": preds.metric, "seeds": list(preds.seeds),
            "folds": [f.name for f in preds.folds], "format": 1}  # fmt: skip
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for k, f in enumerate(preds.folds):
        arrays[f"fold{k}.targets"] = f.targets
        arrays[f"fold{k}.clip_ids"] = np.asarray(f.clip_ids, dtype=str)
        for s, seed in enumerate(preds.seeds):
            arrays[f"fold{k}.seed{seed}.logits"] = np.asarray(f.logits[s], dtype=np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_predictions(path: str | os.PathLike) -> TaskPredictions:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            folds = []
            for k, name in enumerate(meta["folds"]):
                logits = np.stack([z[f"fold{k}.seed{s}.logits"] for s in meta["seeds"]])  # (S, N, C)
                folds.append(FoldPredictions(name, z[f"fold{k}.targets"], logits, z[f"fold{k}.clip_ids"]))
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a readable hares predictions file ({e})") from e
    return TaskPredictions(meta["encoder"], meta["task"], meta["metric"], tuple(meta["seeds"]), folds)


def check_test_targets(where: str, targets: np.ndarray | torch.Tensor, multilabel: bool) -> None:
    """A test split must be able to tell encoders apart: >= 2 classes (single-label), a positive (multi-label)."""
    y = np.asarray(targets)
    if len(y) == 0:
        raise ValueError(f"{where}: the test split is empty")
    if multilabel:
        if not y.any():
            raise ValueError(f"{where}: no test clip has a positive label, so mAP is undefined")
        return
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError(
            f"{where}: every test clip has the same class (index {int(present[0])}); a one-class test split "
            "scores any encoder that predicts that class as perfect, so its score and interval mean nothing. "
            "Give the test split clips of at least two classes."
        )


# ----------------------------------------------------------------------------------------------- metrics
def fold_scores(
    fold: FoldPredictions, metric: str, weights: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Per-seed metric of one fold on each weighted clip set: weights (B, N) counts -> (S, B) fractions."""
    n = len(fold.clip_ids)
    w = torch.from_numpy(weights).to(device)
    if metric == "accuracy":
        correct = torch.from_numpy(fold.logits.argmax(-1) == fold.targets[None]).double().to(device)  # (S, N)
        return (correct @ w.T / n).cpu().numpy()  # torch matmul: numpy's BLAS threads oversubscribe busy machines
    if metric != "mAP":
        raise ValueError(f"no bootstrap for metric {metric!r}; known: accuracy, mAP")
    s_count = fold.logits.shape[0]
    out = np.empty((s_count, len(weights)))
    targets = torch.from_numpy(np.ascontiguousarray(fold.targets)).to(device)
    w = w.int()  # counts: summed exactly in int32
    for s in range(s_count):
        if s not in fold.plans:  # one sort per seed, reused by every block of replicates
            fold.plans[s] = ap_plan(torch.from_numpy(np.ascontiguousarray(fold.logits[s])).to(device), targets)
        block = max(1, WORK_BUDGET // max(1, len(fold.plans[s]["flat_order"])))
        for i in range(0, len(weights), block):
            ap = weighted_ap(fold.plans[s], w[i : i + block])  # (b, C)
            out[s, i : i + block] = torch.nanmean(ap, dim=1).cpu().numpy()
    return out


def seed_scores(preds: TaskPredictions) -> np.ndarray:
    """The task score (percent) of each probe seed recomputed from the stored predictions: mean over folds (S,)."""
    return 100 * np.mean([fold_scores(f, preds.metric, np.ones((1, len(f.clip_ids))))[:, 0] for f in preds.folds], 0)


# ----------------------------------------------------------------------------------------------- bootstrap
@dataclass
class Replicates:
    """Bootstrap replicates of one score or aggregate, in percent.

    clip: (B,) the seed-mean score on each resampled clip set. seed_var: the variance that averaging S probe seeds
    leaves (s^2 / S over the per-seed scores; 0 with one seed) and seed_den its Satterthwaite term (seed_var^2 /
    (S - 1)), so a sum of components has df = seed_var^2 / seed_den. seed_noise: (B,) sqrt(seed_var) * t_(S-1)
    draws, Student's t because the seed spread is estimated from S (often 3) seeds.
    """

    clip: np.ndarray
    seed_var: float
    seed_den: float
    seed_noise: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.clip + self.seed_noise

    def __sub__(self, other: Replicates) -> Replicates:
        return Replicates(self.clip - other.clip, self.seed_var + other.seed_var, self.seed_den + other.seed_den,
                          self.seed_noise - other.seed_noise)  # fmt: skip


def mean_of(reps: Sequence[Replicates]) -> Replicates:
    """The replicates of an unweighted mean of independent scores (a domain average, the HARES score)."""
    k = len(reps)
    return Replicates(
        np.mean([r.clip for r in reps], axis=0),
        sum(r.seed_var for r in reps) / k**2,
        sum(r.seed_den for r in reps) / k**4,
        np.mean([r.seed_noise for r in reps], axis=0),
    )


def _rng(seed: int, *keys: Any) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence(list(np.frombuffer(digest, dtype=np.uint32))))


def _weights(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """Bootstrap counts (b, n): row r says how often each clip was drawn in replicate r (rows sum to n)."""
    idx = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def task_replicates(
    preds: Mapping[str, TaskPredictions],
    resamples: int,
    seed: int,
    device: str | torch.device = "cpu",
    progress: Callable[[int], Any] | None = None,
) -> dict[str, Replicates]:
    """Bootstrap replicates of one task's score for each encoder, on clip draws shared by all encoders."""
    first = next(iter(preds.values()))
    task = first.task
    for p in preds.values():
        if [f.name for f in p.folds] != [f.name for f in first.folds] or any(
            not np.array_equal(a.clip_ids, b.clip_ids) for a, b in zip(p.folds, first.folds)
        ):
            raise ValueError(
                f"{task}: encoders {first.encoder!r} and {p.encoder!r} were tested on different clips; "
                "paired statistics need the same test clips in the same order"
            )
    per_seed = {e: np.zeros((len(p.seeds), resamples)) for e, p in preds.items()}  # sum over folds (S, B)
    for k, fold in enumerate(first.folds):
        n = len(fold.clip_ids)
        rng = _rng(seed, "clips", task, fold.name, n)
        block = max(1, DRAW_BUDGET // n)
        for i in range(0, resamples, block):
            w = _weights(rng, n, min(block, resamples - i))
            for e, p in preds.items():
                per_seed[e][:, i : i + len(w)] += fold_scores(p.folds[k], p.metric, w, device)
            if progress is not None:
                progress(len(w))
    out = {}
    for e, p in preds.items():
        s_count = len(p.seeds)
        clip = 100 * per_seed[e].mean(axis=0) / len(first.folds)  # (B,)
        if s_count > 1:
            # The per-seed scores differ by the seed's own effect and by clip-level noise in how seeds disagree
            # (seed x clip interaction); the clip bootstrap already covers the latter, so only the seed effect
            # is added: s^2 minus the bootstrap variance of a seed's deviation from the seed mean * S / (S - 1)
            # (the random-effects two-way ANOVA estimate, floored at 0).
            dev = 100 * (per_seed[e] - per_seed[e].mean(axis=0)) / len(first.folds)  # (S, B)
            interaction = float(np.var(dev, axis=1, ddof=1).mean()) * s_count / (s_count - 1)
            var = max(0.0, float(np.var(seed_scores(p), ddof=1)) - interaction) / s_count
            noise = np.sqrt(var) * _rng(seed, "seeds", task, e).standard_t(s_count - 1, size=resamples)
            out[e] = Replicates(clip, var, var**2 / (s_count - 1), noise)
        else:
            out[e] = Replicates(clip, 0.0, 0.0, np.zeros(resamples))
    return out


def interval(replicates: np.ndarray, estimate: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bias-corrected percentile interval (Efron's BC) of bootstrap replicates of a score in percent, kept inside
    [0, 100] (the seed term's t draws are unbounded, a score is not).

    The correction matters for mAP: clips drawn twice tie with themselves, which lifts a resampled AP, so the
    replicates sit above the estimate (plain percentiles covered the true mAP 89% of the time in a simulation, BC
    95%, docs/STATISTICS.md). For accuracy the replicates are centred on the estimate and BC is the percentile
    interval."""
    from scipy.stats import norm

    r = replicates[np.isfinite(replicates)]
    below = (np.sum(r < estimate) + 0.5 * np.sum(r == estimate)) / len(r)
    z0 = norm.ppf(np.clip(below, 0.5 / len(r), 1 - 0.5 / len(r)))
    z = norm.ppf(0.5 + confidence / 2)
    q = 100 * norm.cdf([2 * z0 - z, 2 * z0 + z])
    lo, hi = np.clip(np.percentile(r, q), 0.0, 100.0)
    return float(lo), float(hi)


def paired_test(diff: float, reps: Replicates, confidence: float = CONFIDENCE) -> dict[str, float]:
    """Welch-Satterthwaite t-test of a paired difference: variance = paired clip-bootstrap variance + the seed
    variances of both sides; df from the seed components (the clip part counts as infinite df). Returns the
    standard error, df, the two-sided p-value and the t interval."""
    from scipy import stats as st

    var = float(np.var(reps.clip, ddof=1)) + reps.seed_var
    df = var**2 / reps.seed_den if reps.seed_den > 0 else math.inf
    if var <= 0 or not np.isfinite(var):
        p = 1.0 if diff == 0 else 0.0
        return {"se": 0.0, "df": df, "p": p, "ci_low": diff, "ci_high": diff}
    se = math.sqrt(var)
    half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    return {"se": se, "df": df, "p": float(2 * st.t.sf(abs(diff) / se, df)), "ci_low": max(-100.0, diff - half),
            "ci_high": min(100.0, diff + half)}  # fmt: skip


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control, any dependence between the tests)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


# ----------------------------------------------------------------------------------------------- results
def compute_stats(
    results: dict[str, Any],
    predictions: Mapping[tuple[str, str], TaskPredictions],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Add intervals and paired tests to a results dict (in place; returned too).

    Rows gain `ci_low`, `ci_high`, `num_test` (and `ci_note` on small test sets); `aggregates[label]` gains `ci`
    for its domain averages, HARES score and mean; `results["stats"]` records the method, resamples, seed and
    every paired test with its Holm-adjusted p-value. Each row's score must match its predictions.
    """
    from hares.tasks import list_tasks

    if resamples < 2:
        raise ValueError(f"resamples must be >= 2, got {resamples}")
    rows = {(r["encoder"], r["task"]): r for r in results["results"]}
    encoders = list(dict.fromkeys(r["encoder"] for r in results["results"]))
    tasks = list(dict.fromkeys(r["task"] for r in results["results"]))
    missing = [key for key in rows if key not in predictions]
    if missing:
        raise ValueError(f"no stored test predictions for (encoder, task) {missing[:5]}; re-run `hares eval`")
    from tqdm.auto import tqdm

    reps: dict[tuple[str, str], Replicates] = {}
    notes = []
    folds = {t: len(next(predictions[e, t] for e in encoders if (e, t) in rows).folds) for t in tasks}
    bar = tqdm(total=resamples * sum(folds.values()), desc="bootstrap", unit="resample", disable=not progress)
    for task in tasks:
        group = {e: predictions[e, task] for e in encoders if (e, task) in rows}
        for e, r in task_replicates(group, resamples, seed, device, bar.update).items():
            reps[e, task] = r
            row = rows[e, task]
            recomputed = float(seed_scores(group[e]).mean())
            if abs(recomputed - row["score"]) > 1e-6 * max(1.0, abs(row["score"])):
                raise ValueError(f"{e} / {task}: the stored predictions score {recomputed:.4f}, the results "
                                 f"{row['score']:.4f}; the predictions do not belong to this result")  # fmt: skip
            row["ci_low"], row["ci_high"] = interval(r.total, row["score"], confidence)
            row["num_test"] = group[e].num_test
            if row["num_test"] < SMALL_TEST:
                row["ci_note"] = (
                    f"only {row['num_test']} test clips: the interval is wide and a bootstrap this small "
                    "under-covers; treat the score as a rough estimate"
                )
                notes.append(f"{task}: {row['ci_note']}")
            if len(group[e].seeds) == 1:
                notes.append(f"{e}: one probe seed, so the intervals cover the test sample only, not the probe seed")
    bar.close()
    benchmark = list_tasks()
    domains = {r["task"]: r["domain"] for r in results["results"]}
    agg_reps = {e: _aggregate_replicates({t: reps[e, t] for t in tasks if (e, t) in reps}, domains, benchmark)
                for e in encoders}  # fmt: skip
    for e in encoders:
        a, observed = agg_reps[e], results["aggregates"][e]
        observed["ci"] = {
            "domains": {d: interval(v.total, observed["domains"][d], confidence) for d, v in a["domains"].items()},
            "hares": None if a["hares"] is None else interval(a["hares"].total, observed["hares"], confidence),
            "mean": interval(a["mean"].total, observed["mean"], confidence),
        }
    paired = _paired_tests(encoders, tasks, rows, reps, agg_reps, results["aggregates"], domains, confidence)
    adjusted = holm([t["p"] for t in paired]) if paired else []
    for t, p_holm in zip(paired, adjusted):
        t["p_holm"] = p_holm
        t["significant"] = bool(p_holm < alpha)
        t["winner"] = (t["a"] if t["diff"] > 0 else t["b"]) if t["significant"] else None
    results["stats"] = {
        "method": METHOD,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "alpha": alpha,
        "correction": f"Holm step-down over all {len(paired)} paired tests of this report",
        "paired": paired,
        "notes": sorted(dict.fromkeys(notes), key=lambda n: "one probe seed" in n),  # task notes first
    }
    return results


def _aggregate_replicates(
    reps: Mapping[str, Replicates], domains: Mapping[str, str], benchmark: Sequence[str]
) -> dict[str, Any]:
    """Replicates of the domain averages, the HARES score (None without all 12 tasks) and the mean over tasks."""
    names = list(reps)
    order = domain_averages({t: 0.0 for t in names}, {t: domains[t] for t in names})
    return {
        "domains": {d: mean_of([reps[t] for t in names if domains[t] == d]) for d in order},
        "hares": mean_of([reps[t] for t in benchmark]) if all(t in reps for t in benchmark) else None,
        "mean": mean_of([reps[t] for t in names]),
    }


def _paired_tests(encoders, tasks, rows, reps, agg_reps, aggregates, domains, confidence) -> list[dict]:
    out = []
    for a, b in itertools.combinations(encoders, 2):
        common = [t for t in tasks if (a, t) in rows and (b, t) in rows]
        for t in common:
            out.append(_pair(a, b, t, rows[a, t]["score"] - rows[b, t]["score"], reps[a, t] - reps[b, t], confidence))
        same_tasks = {t for t in tasks if (a, t) in rows} == {t for t in tasks if (b, t) in rows}
        if not common or not same_tasks:  # aggregates over different task sets are not comparable
            continue
        tested = [{t} for t in common]  # an aggregate over the same tasks as a test already made is not repeated
        for d, ra in agg_reps[a]["domains"].items():
            in_domain = {t for t in common if domains[t] == d}
            if in_domain not in tested:
                tested.append(in_domain)
                diff = aggregates[a]["domains"][d] - aggregates[b]["domains"][d]
                out.append(_pair(a, b, f"avg:{d}", diff, ra - agg_reps[b]["domains"][d], confidence))
        kind = "hares" if agg_reps[a]["hares"] is not None else "mean"
        if kind == "hares" or set(common) not in tested:
            diff = aggregates[a][kind] - aggregates[b][kind]
            out.append(_pair(a, b, kind, diff, agg_reps[a][kind] - agg_reps[b][kind], confidence))
    return out


def _pair(a: str, b: str, target: str, diff: float, reps: Replicates, confidence: float) -> dict[str, Any]:
    return {"a": a, "b": b, "target": target, "diff": float(diff), **paired_test(diff, reps, confidence)}
