"""Task metrics and HARES aggregates (docs/PROTOCOL.md section 4).

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
    weighted set, equal to scikit-learn's on the data with clip n repeated w[b, n] times. The sort and the
    positives' bookkeeping are done once (`ap_plan`); each weighted set then costs one gather and one cumulative
    sum over each class's ranks down to its last positive, plus O(positives) (`weighted_ap`).
    """
    plan = ap_plan(_tensor(scores), _tensor(targets))
    n = plan["n"]
    w = torch.ones(1, n, dtype=torch.float64) if weights is None else _tensor(weights)
    w = w.to(plan["flat_order"].device)
    ap = weighted_ap(plan, w)
    return ap[0] if weights is None else ap


def ap_plan(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor | int]:
    """What AP needs of scores (N, C) and multi-hot targets (N, C), independent of clip weights: each class's rank
    order up to its last positive's tie group (flattened, classes one after another: ranks below that do not enter
    its AP), and for every positive its clip, the end of its tie group in that flat order and the number of
    positives ranked up to that end."""
    scores = scores.double()
    targets = targets.to(scores.device)
    n, c = scores.shape
    s, order = torch.sort(scores.T, dim=1, descending=True)  # (C, N): each class's rank order
    t = torch.gather(targets.T.long(), 1, order) > 0  # (C, N) positives in rank order
    boundary = torch.ones_like(s, dtype=torch.bool)
    boundary[:, :-1] = s[:, :-1] != s[:, 1:]  # last rank of each run of tied scores
    idx = torch.arange(n, device=s.device).expand(c, n)
    ends = torch.where(boundary, idx, torch.full_like(idx, n))
    ends = torch.flip(torch.cummin(torch.flip(ends, [1]), dim=1).values, [1])  # (C, N) end of each rank's tie group
    cls, rank = torch.nonzero(t, as_tuple=True)  # positives, by class then rank
    end = ends[cls, rank]
    length = torch.zeros(c, dtype=torch.long, device=s.device).scatter_reduce_(0, cls, end + 1, "amax")  # (C,)
    start = torch.cumsum(length, dim=0) - length  # each class's offset in the flat order
    positives_upto = torch.cumsum(t.long(), dim=1)[cls, end]  # positives ranked <= the tie group's end
    count = t.sum(dim=1)
    first = torch.cumsum(count, dim=0) - count  # index of each class's first positive
    return {"n": n, "c": c, "flat_order": order[idx < length[:, None]], "start": start, "cls": cls,
            "clip": order[cls, rank], "flat_end": start[cls] + end, "ptr": first[cls] + positives_upto - 1,
            "first": first}  # fmt: skip


def weighted_ap(plan: dict, w: torch.Tensor) -> torch.Tensor:
    """AP (B, C) of the weighted clip sets w (B, N) under a plan from `ap_plan`; integer weights (bootstrap counts)
    are summed exactly in int32, float weights in float64."""
    b, c = w.shape[0], plan["c"]
    acc = torch.int32 if not torch.is_floating_point(w) else torch.float64
    cls = plan["cls"]
    flat = torch.cumsum(w[:, plan["flat_order"]], dim=1, dtype=acc)  # (B, sum of lengths)
    base = torch.cat([torch.zeros(b, 1, dtype=acc, device=w.device), flat], dim=1)[:, plan["start"][cls]]
    seen = (flat[:, plan["flat_end"]] - base).double()  # (B, P) weight of the clips scored >= each positive
    wpos = w[:, plan["clip"]]  # (B, P) weight of each positive
    cum = torch.cumsum(wpos, dim=1, dtype=acc)
    before = torch.cat([torch.zeros(b, 1, dtype=acc, device=w.device), cum], dim=1)[:, plan["first"][cls]]
    tp = (cum[:, plan["ptr"]] - before).double()  # weighted positives ranked up to each positive's tie group end
    wpos = wpos.double()
    precision = tp / seen.clamp(min=1e-12)  # 0/0 only where the positive itself has weight 0
    num = torch.zeros(b, c, dtype=torch.float64, device=w.device).index_add_(1, cls, wpos * precision)
    den = torch.zeros(b, c, dtype=torch.float64, device=w.device).index_add_(1, cls, wpos)
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.full_like(num, float("nan")))


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
