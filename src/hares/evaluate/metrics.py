"""Task metrics and HARES aggregates (PROTOCOL section 4).

- `accuracy`: top-1, clip level.
- `mean_average_precision`: mean over classes of average precision with scikit-learn's
  `average_precision_score` semantics (AP = sum_n (R_n - R_{n-1}) P_n over distinct score thresholds, ties
  grouped), over the classes with at least one positive in the evaluated split.
- Aggregates on percentages: domain average = mean of its tasks; HARES score = mean over the 12 tasks.

Metric functions take scores/logits (N, C) and targets (class indices (N,) or multi-hot (N, C)) as torch
tensors or numpy arrays and return a fraction in [0, 1]; reports multiply by 100.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

DOMAINS = ("environment", "speech", "music")


def _tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def accuracy(scores: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray) -> float:
    """Top-1 accuracy of scores (N, C) against class indices (N,)."""
    scores, targets = _tensor(scores), _tensor(targets)
    return float((scores.argmax(dim=-1) == targets.to(scores.device)).double().mean())


def average_precision(
    scores: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Per-class AP (C,) of scores (N, C) against multi-hot targets (N, C); NaN for classes with no positive.

    With `weights` (B, N) (e.g. bootstrap counts: clip n drawn w[b, n] times) it returns (B, C): the AP of each
    weighted set, equal to scikit-learn's on the data with clip n repeated w[b, n] times. The sort is done once
    for all B sets; the cost is O(B N C) (`hares.evaluate.stats` uses this for bootstrap intervals of mAP).
    """
    scores = _tensor(scores).double()
    targets = _tensor(targets).to(scores.device).double()
    n = scores.shape[0]
    s, order = torch.sort(scores, dim=0, descending=True)  # (N, C)
    t = torch.gather(targets, 0, order)
    boundary = torch.ones_like(s, dtype=torch.bool)
    boundary[:-1] = s[:-1] != s[1:]  # last row of each run of tied scores
    idx = torch.arange(n, device=s.device)[:, None].expand_as(s)
    ends = torch.where(boundary, idx, torch.full_like(idx, n))
    ends = torch.flip(torch.cummin(torch.flip(ends, [0]), dim=0).values, [0])  # end of each row's tie group
    if weights is None:
        tp = torch.cumsum(t, dim=0)  # true positives at each rank
        precision = torch.gather(tp, 0, ends) / (ends + 1).double()  # precision at that threshold
        positives = t.sum(dim=0)
        ap = (t * precision).sum(dim=0) / positives
        return torch.where(positives > 0, ap, torch.full_like(ap, float("nan")))
    w = _tensor(weights).to(scores.device, torch.float64)[:, order]  # (B, N, C): each class's rank order
    wt = w * t  # weighted positives
    tp = torch.cumsum(wt, dim=1)
    seen = torch.cumsum(w, dim=1)
    at = ends.expand(w.shape[0], -1, -1)
    precision = torch.gather(tp, 1, at) / torch.gather(seen, 1, at).clamp(min=1e-12)  # 0/0 only where wt = 0
    positives = wt.sum(dim=1)  # (B, C)
    ap = (wt * precision).sum(dim=1) / positives.clamp(min=1e-12)
    return torch.where(positives > 0, ap, torch.full_like(ap, float("nan")))


def mean_average_precision(scores: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray) -> float:
    """mAP over the classes with at least one positive in `targets` (N, C)."""
    ap = average_precision(scores, targets)
    ap = ap[~torch.isnan(ap)]
    if ap.numel() == 0:
        raise ValueError("mAP is undefined: no class has a positive example")
    return float(ap.mean())


METRICS: dict[str, Callable[..., float]] = {"accuracy": accuracy, "mAP": mean_average_precision}


def domain_averages(scores: Mapping[str, float], domains: Mapping[str, str]) -> dict[str, float]:
    """Mean score per domain, domains in `DOMAINS` order first, then any other (e.g. "custom")."""
    by_domain: dict[str, list[float]] = {}
    for task, score in scores.items():
        by_domain.setdefault(domains[task], []).append(score)
    order = [d for d in DOMAINS if d in by_domain] + sorted(d for d in by_domain if d not in DOMAINS)
    return {d: float(np.mean(by_domain[d])) for d in order}


def hares_score(scores: Mapping[str, float], benchmark_tasks: Iterable[str]) -> float | None:
    """Mean over all benchmark tasks; None unless every one of them has a score."""
    tasks = list(benchmark_tasks)
    if not tasks or any(t not in scores for t in tasks):
        return None
    return float(np.mean([scores[t] for t in tasks]))
