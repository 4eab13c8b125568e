"""Probes on frozen embeddings (docs/PROTOCOL.md section 3, protocol v2): every grid point in one pass.

- Features are standardised with the train split's mean and std only. Every choice is made on validation.
- **Linear probe: L2-regularised logistic regression solved to its optimum.** Full-batch L-BFGS (strong Wolfe
  line search, float32) on mean loss + l2/2 |W|^2 (bias not penalised) for each l2 of a wide grid, strongest
  first, each point warm-started from the previous one; the walk stops a few points after the best validation
  score. The optimum is unique, so the result does not depend on the seed or on how long anything ran (protocol
  v1's Adam + early stopping stopped short of it by 1-2 points on small splits). This is the linear evaluation of
  CLIP (scikit-learn's L-BFGS logistic regression, L2 swept on validation) and the objective and stopping rule of
  scikit-learn's `LogisticRegression(C=1 / (l2 N))`, at a 10x tighter tolerance (1e-5: at 1e-4 the choice on
  validation moved with the optimiser's starting point). Ours runs in torch (CPU or GPU), starts L-BFGS from the
  Kronecker-factored inverse Hessian (`_Curvature`: feature covariance x logistic curvature at the class priors)
  and each grid point from the path extrapolated in log(l2), which cut the loss evaluations 4x on correlated
  features; BENCHMARKS.md gives the speed against scikit-learn, side by side (3.3x at the same tolerance).
- **MLP probe (AudioSet) and the optional Adam linear probe**: the lr x weight-decay grid is one batched model,
  weights (G, D, C) (linear) or (G, D, H), (G, H, C) (1 hidden layer, ReLU, dropout), applied with one einsum;
  all heads of a seed share the initial weights and the minibatch order. Adam (betas 0.9/0.999, eps 1e-8) per
  head, weight decay as **L2 added to the gradient** (exactly `torch.optim.Adam(weight_decay=wd)`) on weight
  matrices, over a grid that reaches the regularisation a noisy task needs (up to 1e-2). **Polyak averaging**
  (`GridAverage`): what is validated, kept and tested is each head's exponential moving average of its iterates,
  not the last iterate. Early stopping per head on the validation metric, with patience and budget counted in
  epochs AND optimiser steps (a small split makes few steps per epoch); each head's best weights are restored, a
  stopped head drops out of the computation, the grid point is chosen on validation (ties: first in grid order).
  Why (measured, BENCHMARKS.md "MLP probe"): with weight decay <= 1e-4 and the last iterate, the MLP overfitted a
  linear-optimal 20-class task (20,000 train rows) and scored 1.0 below the linear optimum (62.30 vs 63.28; no
  head beat 62.74 at any epoch); every grid point was about equally good on the 3,000-row validation split, so
  only regularisation, not selection, could close the gap. Weight decay 1e-2 plus averaging: 62.86-63.06 over 3
  probe seeds, and the regularised heads also win on validation.
  The multi-label loss is summed over classes (one logistic loss per class, as the L-BFGS objective): averaged over
  classes, a weight decay acted C times more strongly on a C-class task and only wd 0 was usable at 100 classes.
- The test split is scored once, for the chosen grid point; its raw logits are returned for paired statistics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from hares.evaluate.metrics import METRICS
from hares.schema import Bool, Float, Int, Seq, Str


def _spec(spec) -> dict:
    """Field metadata: the range `--set` accepts (hares.schema, interface I3)."""
    return {"spec": spec}


# The linear probe computes in float64 up to this many train values (N x D; 128 MB), where float32 rounding of the
# loss, not averaged away over few rows, stops L-BFGS short of `lbfgs_tol` (measured: 1.4e-5 to 4e-5 on small
# tasks); above it, float32 (two matmuls per evaluation at twice the speed).
LBFGS_FLOAT64_VALUES = 1 << 24
LBFGS_PLAN_EVALS = 25  # loss + gradient evaluations per L2 point, for estimates (measured, preconditioned: 3-40)
# epoch_hook(seed, epoch, heads (g,), valid logits (g, N_valid, C), test logits (g, N_test, C)): see `train_probe`
EpochHook = Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor], None]
L2_GRID = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


@dataclass(frozen=True)
class ProbeConfig:
    """Every probe value of docs/PROTOCOL.md section 3 (protocol v2); each one is an overridable, recorded setting.

    Linear probe (`linear_solver="lbfgs"`): full-batch L-BFGS on mean loss + l2/2 * |W|^2 along `l2_grid`
    (strongest first, warm-started); the walk stops `path_patience` points after the best validation score.
    MLP probe (and `linear_solver="adam"`): the Adam grid `lrs` x `weight_decays`, batch `batch_size`, early stopping
    after `patience` epochs AND `patience_steps` steps without improvement, up to max(`max_epochs` epochs,
    `max_steps` steps); the weights validated, kept and tested are averaged over steps with `average_decay`
    (0: the last iterate, as protocol v1). Ranges are declared for `--set` (hares.schema) and checked on
    construction.
    """

    linear_solver: str = field(default="lbfgs", metadata=_spec(Str(choices=("lbfgs", "adam"))))
    l2_grid: tuple[float, ...] = field(default=L2_GRID, metadata=_spec(Seq(Float(ge=0, le=1e6))))
    path_patience: int = field(default=2, metadata=_spec(Int(ge=1, le=1000)))
    lbfgs_max_iter: int = field(default=1000, metadata=_spec(Int(ge=1, le=1_000_000)))
    lbfgs_tol: float = field(default=1e-5, metadata=_spec(Float(gt=0, le=1)))
    lbfgs_history: int = field(default=10, metadata=_spec(Int(ge=1, le=1000)))
    lbfgs_precondition: bool = field(default=True, metadata=_spec(Bool()))
    lrs: tuple[float, ...] = field(default=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), metadata=_spec(Seq(Float(gt=0, le=10))))
    weight_decays: tuple[float, ...] = field(default=(0.0, 1e-3, 1e-2), metadata=_spec(Seq(Float(ge=0, le=10))))
    batch_size: int = field(default=1024, metadata=_spec(Int(ge=1, le=2**20)))  # probe minibatch
    max_epochs: int = field(default=200, metadata=_spec(Int(ge=1, le=100_000)))
    max_steps: int = field(default=2000, metadata=_spec(Int(ge=0, le=10_000_000)))
    patience: int = field(default=20, metadata=_spec(Int(ge=1, le=100_000)))
    patience_steps: int = field(default=200, metadata=_spec(Int(ge=0, le=10_000_000)))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=_spec(Seq(Int(ge=0, lt=2**32))))
    mlp_hidden: int = field(default=512, metadata=_spec(Int(ge=1, le=65536)))
    mlp_dropout: float = field(default=0.1, metadata=_spec(Float(ge=0, lt=1)))
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_spec(Seq(Float(ge=0, lt=1), length=2)))
    adam_eps: float = field(default=1e-8, metadata=_spec(Float(gt=0, le=1)))
    average_decay: float = field(default=0.99, metadata=_spec(Float(ge=0, lt=1)))  # Polyak (EMA) averaging per step
    # descriptive: what the code does, recorded with every result, not settable
    weight_decay_mode: str = field(default="l2_in_gradient(torch.optim.Adam), weights only", metadata={"fixed": True})
    standardize: str = field(default="train mean/std", metadata={"fixed": True})

    def __post_init__(self) -> None:
        for f in fields(self):
            if "spec" in f.metadata:
                f.metadata["spec"].check(getattr(self, f.name), f.name)

    def grid(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lrs for wd in self.weight_decays]

    def uses_lbfgs(self, kind: str) -> bool:
        return kind == "linear" and self.linear_solver == "lbfgs"

    def epoch_budget(self, n_train: int) -> tuple[int, int]:
        """(epochs budget, patience in epochs) of the Adam probe for `n_train` rows: steps count as well as epochs."""
        steps = max(1, math.ceil(n_train / self.batch_size))  # optimiser steps per epoch
        return max(self.max_epochs, math.ceil(self.max_steps / steps)), max(
            self.patience, math.ceil(self.patience_steps / steps)
        )

    def plan_passes(self, kind: str, n_train: int) -> tuple[int, int, int]:
        """(heads trained at once, passes over the train split, seeds that are fitted) for a time estimate: the
        L-BFGS path fits once (seed-independent), ~`LBFGS_PLAN_EVALS` loss evaluations per L2 point, every point
        (an upper estimate: the walk stops early); Adam trains the whole grid per seed for the epoch budget."""
        if self.uses_lbfgs(kind):
            return 1, len(self.l2_grid) * LBFGS_PLAN_EVALS, 1
        return len(self.grid()), self.epoch_budget(n_train)[0], len(self.seeds)

    def progress_units(self, kind: str, n_train: int) -> int:
        """Progress units of one seed: grid points (L-BFGS path) or epochs (Adam)."""
        return len(self.l2_grid) if self.uses_lbfgs(kind) else self.epoch_budget(n_train)[0]


class Rows(Protocol):
    """Feature rows that may live on disk: `len(rows)`, `rows.dim` and `rows.get(indices) -> (n, D)`."""

    dim: int

    def __len__(self) -> int: ...

    def get(self, indices: np.ndarray) -> np.ndarray: ...


class ArrayRows:
    """`Rows` over an in-memory (or memory-mapped) array (N, D)."""

    def __init__(self, array: np.ndarray | torch.Tensor) -> None:
        self.array = array.numpy() if isinstance(array, torch.Tensor) else array
        self.dim = int(self.array.shape[1])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.array[indices]


class _Features:
    """Standardised features on `device` in `dtype`: held as one tensor when it fits `max_bytes`, else read per
    batch."""

    def __init__(
        self,
        rows: Rows,
        mean: torch.Tensor,
        std: torch.Tensor,
        device: torch.device,
        max_bytes: int,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.rows, self.device, self.dtype = rows, device, dtype
        self.mean, self.std = mean.to(device, dtype), std.to(device, dtype)
        self.n = len(rows)
        self.data: torch.Tensor | None = None
        if self.n * rows.dim * dtype.itemsize <= max_bytes and self.n:
            self.data = torch.empty(self.n, rows.dim, device=device, dtype=dtype)  # filled in place: one copy
            for c in _chunks(np.arange(self.n), 8192):
                self._load(c, out=self.data[c[0] : c[-1] + 1])

    def _load(self, idx: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(self.rows.get(idx)))
        out = x.to(self.device, self.dtype, copy=True) if out is None else out.copy_(x)
        return out.sub_(self.mean).div_(self.std)

    def span(self, start: int, stop: int) -> torch.Tensor:
        """Rows start..stop (a view when held in memory)."""
        stop = min(stop, self.n)
        return self.data[start:stop] if self.data is not None else self._load(np.arange(start, stop))

    def __getitem__(self, idx: np.ndarray) -> torch.Tensor:
        if self.data is not None:
            return self.data[torch.as_tensor(idx, device=self.device)]
        order = np.argsort(idx, kind="stable")  # sorted reads from the memory maps
        x = self._load(idx[order])
        return x[torch.as_tensor(np.argsort(order), device=self.device)]


def _rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG `torch.random.fork_rng` must save for work on `device`."""
    return [device.index or 0] if device.type == "cuda" else []


def _chunks(idx: np.ndarray, size: int) -> list[np.ndarray]:
    return [idx[i : i + size] for i in range(0, len(idx), size)]


def standardizer(rows: Rows, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (population, float64) of `rows`, streamed; std < 1e-6 is set to 1."""
    total = np.zeros(rows.dim, np.float64)
    total_sq = np.zeros(rows.dim, np.float64)
    for c in _chunks(np.arange(len(rows)), chunk):
        x = np.asarray(rows.get(c), dtype=np.float64)
        total += x.sum(0)
        total_sq += (x * x).sum(0)
    mean = total / len(rows)
    std = np.sqrt(np.maximum(total_sq / len(rows) - mean * mean, 0.0))
    std[std < 1e-6] = 1.0
    return torch.from_numpy(mean), torch.from_numpy(std)  # float64: each use casts to its own precision


class GridModel:
    """G heads as stacked tensors: linear (W (G, D, C), b (G, C)) or MLP (W1, b1, W2, b2)."""

    def __init__(self, kind: str, dim: int, num_classes: int, grid_size: int, cfg: ProbeConfig, device):
        if kind not in ("linear", "mlp"):
            raise ValueError(f"unknown probe {kind!r}; choose from: linear, mlp")
        self.kind, self.dropout = kind, cfg.mlp_dropout
        shapes = [(dim, num_classes)] if kind == "linear" else [(dim, cfg.mlp_hidden), (cfg.mlp_hidden, num_classes)]
        self.params: list[torch.Tensor] = []
        self.decayed: list[bool] = []
        for fan_in, fan_out in shapes:  # nn.Linear's init, one draw shared by all heads
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_in, fan_out) * 2 - 1) * bound
            b = (torch.rand(fan_out) * 2 - 1) * bound
            self.params += [w.expand(grid_size, -1, -1).clone().to(device), b.expand(grid_size, -1).clone().to(device)]
            self.decayed += [True, False]
        for p in self.params:
            p.requires_grad_(True)

    def forward(
        self, x: torch.Tensor, heads: torch.Tensor, train: bool, params: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """x (N, D) -> logits (g, N, C) for the heads `heads` (g,), with `params` (already those heads' weights,
        e.g. `GridAverage.weights(heads)`) in place of the model's own when given."""
        p = [q[heads] for q in self.params] if params is None else params
        if self.kind == "linear":
            return torch.einsum("nd,gdc->gnc", x, p[0]) + p[1][:, None]
        h = F.relu(torch.einsum("nd,gdh->gnh", x, p[0]) + p[1][:, None])  # (g, N, H)
        h = F.dropout(h, self.dropout, training=train)
        return torch.bmm(h, p[2]) + p[3][:, None]  # (g, N, C)


class GridAdam:
    """Adam over stacked heads with per-head lr and L2 weight decay (== `torch.optim.Adam` per head)."""

    def __init__(self, params: list[torch.Tensor], decayed: list[bool], lrs, wds, betas, eps) -> None:
        self.params, self.decayed, self.betas, self.eps = params, decayed, betas, eps
        dev = params[0].device
        self.lrs = torch.as_tensor(lrs, dtype=torch.float32, device=dev)
        self.wds = torch.as_tensor(wds, dtype=torch.float32, device=dev)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, heads: torch.Tensor) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        every = len(heads) == self.lrs.numel()  # all heads active: update in place, no gathers
        for p, decay, m, v in zip(self.params, self.decayed, self.m, self.v):
            shape = (-1,) + (1,) * (p.ndim - 1)
            grad, ph, mh, vh = (p.grad, p, m, v) if every else (p.grad[heads], p[heads], m[heads], v[heads])
            if decay:
                grad = grad.add(self.wds[heads].view(shape) * ph)
            mh.mul_(b1).add_(grad, alpha=1 - b1)
            vh.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            update = mh / (vh.sqrt() / math.sqrt(bc2)).add_(self.eps) * (self.lrs[heads] / bc1).view(shape)
            if every:
                p.sub_(update)
            else:
                m[heads], v[heads] = mh, vh
                p[heads] = ph - update
            p.grad = None


class GridAverage:
    """Polyak averaging per head: an exponential moving average of each head's weights over its own optimiser steps
    (`decay` per step, zero-initialised with Adam's bias correction, so it is an exact weighted mean of the iterates
    seen); `decay` 0 returns the last iterate. Constant-lr Adam's iterates wander around the optimum with the
    minibatch noise; their average lies near it (Polyak & Juditsky 1992; Izmailov et al. 2018, SWA), which is what
    the probe validates, restores and tests (BENCHMARKS.md: measured on a linear-optimal task)."""

    def __init__(self, params: list[torch.Tensor], decay: float) -> None:
        self.params, self.decay = params, decay
        self.avg = [torch.zeros_like(p, requires_grad=False) for p in params] if decay else []
        self.steps = torch.zeros(params[0].shape[0], device=params[0].device)  # (G,) steps averaged per head

    @torch.no_grad()
    def update(self, heads: torch.Tensor) -> None:
        """After an optimiser step of `heads` (g,)."""
        if not self.decay:
            return
        self.steps[heads] += 1
        every = len(heads) == self.params[0].shape[0]
        for a, p in zip(self.avg, self.params):
            if every:
                a.lerp_(p, 1 - self.decay)
            else:
                a[heads] = a[heads].lerp_(p[heads], 1 - self.decay)

    @torch.no_grad()
    def weights(self, heads: torch.Tensor) -> list[torch.Tensor]:
        """The averaged weights of `heads` (g,), one tensor per parameter (g, ...); a head without steps: its own."""
        if not self.decay:
            return [p[heads].detach() for p in self.params]
        steps = self.steps[heads]
        correction = 1 - self.decay**steps  # (g,)
        out = []
        for a, p in zip(self.avg, self.params):
            shape = (-1,) + (1,) * (p.ndim - 1)
            mean = a[heads] / correction.clamp_min(1e-30).view(shape)
            out.append(torch.where((steps > 0).view(shape), mean, p[heads].detach()))
        return out


def _backward(model: GridModel, x: torch.Tensor, y: torch.Tensor, heads: torch.Tensor, multilabel: bool) -> None:
    """Set the gradients of the summed per-head mean losses; closed form for the linear probe (no autograd)."""
    if model.kind != "linear":
        _loss(model.forward(x, heads, train=True), y, multilabel).backward()
        return
    with torch.no_grad():
        logits = model.forward(x, heads, train=False)  # (g, B, C)
        if multilabel:
            dlogits = (torch.sigmoid(logits) - y.float()[None]) / logits.shape[1]
        else:
            dlogits = torch.exp(logits - logits.amax(dim=-1, keepdim=True))  # softmax: faster than torch.softmax
            dlogits /= dlogits.sum(dim=-1, keepdim=True)  # for few classes on CPU
            dlogits[:, torch.arange(len(y), device=y.device), y] -= 1.0
            dlogits /= logits.shape[1]
        w, b = model.params
        w.grad = torch.zeros_like(w)
        b.grad = torch.zeros_like(b)
        w.grad[heads] = torch.einsum("nd,gnc->gdc", x, dlogits)
        b.grad[heads] = dlogits.sum(dim=1)


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Sum over heads of each head's mean loss over rows: logits (g, B, C). Multi-label: the sigmoid BCE summed over
    classes (one logistic loss per class, as the L-BFGS objective), so a weight decay means the same per class
    whatever the number of classes (a mean over classes made it C times stronger: BENCHMARKS.md, "MLP probe")."""
    if multilabel:
        target = y.float()[None].expand_as(logits)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=2).mean(dim=1).sum()
    g, b, c = logits.shape
    return F.cross_entropy(logits.reshape(g * b, c), y.repeat(g), reduction="sum") / b


@torch.no_grad()
def _predict(
    model: GridModel, x: _Features, heads: torch.Tensor, chunk: int = 8192, params: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """Logits (g, N, C) of `heads` on all rows of `x` (with `params`, those heads' weights, when given)."""
    outs = [model.forward(x[c], heads, train=False, params=params) for c in _chunks(np.arange(x.n), chunk)]
    return torch.cat(outs, dim=1)


def train_probe(
    train: tuple[Rows, torch.Tensor],
    valid: tuple[Rows, torch.Tensor],
    test: tuple[Rows, torch.Tensor],
    *,
    kind: str = "linear",
    multilabel: bool = False,
    num_classes: int,
    metric: str = "accuracy",
    cfg: ProbeConfig = ProbeConfig(),
    device: str | torch.device = "cpu",
    max_bytes: int = 4 << 30,
    progress: Callable[[int], Any] | None = None,
    epoch_hook: EpochHook | None = None,
) -> dict[str, Any]:
    """Train the grid for every seed; returns test score (mean/std over seeds, fractions) and the selections.

    `"test_logits"`: one float32 array (N_test, C) per seed, the chosen grid point's raw test logits in test-row
    order (for paired comparisons and intervals over test clips).

    Each of train/valid/test is (rows, targets): class indices (N,) int64, or multi-hot (N, C) for multi-label.

    `epoch_hook` (Adam probes; for analysis, e.g. benchmarks/mlp_probe.py): called after every epoch of every seed
    as `epoch_hook(seed, epoch, heads, valid_logits, test_logits)` with the grid indices of the heads still
    training (g,) and their (averaged) weights' logits (g, N, C). Nothing it sees feeds back into the probe.
    """
    device = torch.device(device)
    metric_fn = METRICS[metric]
    mean, std = standardizer(train[0])  # float64 on CPU: each `_Features` casts them to its device and dtype
    exact = cfg.uses_lbfgs(kind) and len(train[0]) * train[0].dim <= LBFGS_FLOAT64_VALUES
    dtype = torch.float64 if exact else torch.float32
    xs = [_Features(r, mean, std, device, max_bytes, dtype) for r, _ in (train, valid, test)]
    ys = [torch.as_tensor(y).to(device) for _, y in (train, valid, test)]
    if xs[1].n == 0 or xs[0].n == 0 or xs[2].n == 0:
        raise ValueError(f"probe needs non-empty splits, got train/valid/test sizes {[x.n for x in xs]}")
    runs, test_logits = [], []
    if cfg.uses_lbfgs(kind):  # convex and full-batch from zero: the seed changes nothing, so fit once
        record, logits = _fit_linear_path(xs, ys, multilabel, num_classes, metric_fn, cfg, progress)
        runs = [{"seed": seed, **record} for seed in cfg.seeds]
        test_logits = [logits.copy() for _ in cfg.seeds]
        if progress is not None:
            progress(len(cfg.l2_grid) * (len(cfg.seeds) - 1))  # the other seeds' share of the progress bar
    for seed in [] if runs else cfg.seeds:
        record, _ = _train_seed(
            xs, ys, kind, multilabel, num_classes, metric_fn, cfg, seed, device, progress, epoch_hook
        )
        test_logits.append(record.pop("test_logits"))
        runs.append(record)
    scores = np.array([r["test"] for r in runs])
    return {
        "test": float(scores.mean()),
        "test_std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
        "seeds": runs,
        "config": asdict(cfg),
        "kind": kind,
        "test_logits": test_logits,
    }


def _train_seed(
    xs: list[_Features],
    ys: list[torch.Tensor],
    kind: str,
    multilabel: bool,
    num_classes: int,
    metric_fn: Callable[..., float],
    cfg: ProbeConfig,
    seed: int,
    device: torch.device,
    progress: Callable[[int], Any] | None,
    epoch_hook: EpochHook | None = None,
) -> tuple[dict[str, Any], GridModel]:
    """One seed of the grid: (record, model with every head's best-on-validation weights restored)."""
    (xtr, xva, xte), (ytr, yva, yte) = xs, ys
    grid = cfg.grid()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        gen = np.random.default_rng(seed)
        model = GridModel(kind, xtr.rows.dim, num_classes, len(grid), cfg, device)
        opt = GridAdam(
            model.params, model.decayed, [g[0] for g in grid], [g[1] for g in grid], cfg.adam_betas, cfg.adam_eps
        )
        average = GridAverage(model.params, cfg.average_decay)
        best = [p.detach().clone() for p in model.params]
        best_score = np.full(len(grid), -np.inf)
        best_epoch = np.zeros(len(grid), dtype=int)
        active = np.ones(len(grid), dtype=bool)
        batch = min(cfg.batch_size, xtr.n)
        budget, patience = cfg.epoch_budget(xtr.n)
        epochs_run = 0
        for epoch in range(budget):
            heads = torch.as_tensor(np.nonzero(active)[0], device=device)
            perm = gen.permutation(xtr.n)
            for idx in _chunks(perm, batch):
                _backward(model, xtr[idx], ytr[torch.as_tensor(idx, device=device)], heads, multilabel)
                opt.step(heads)
                average.update(heads)
            weights = average.weights(heads)  # what is validated, kept as best, and tested
            val_logits = _predict(model, xva, heads, params=weights)
            epochs_run = epoch + 1
            if epoch_hook is not None:  # analysis only: it gets copies of what the probe sees, plus test
                epoch_hook(
                    seed, epochs_run, heads.clone(), val_logits.clone(), _predict(model, xte, heads, params=weights)
                )
            with torch.no_grad():
                for j, h in enumerate(heads.tolist()):
                    score = metric_fn(val_logits[j], yva)
                    if score > best_score[h]:
                        best_score[h], best_epoch[h] = score, epoch + 1
                        for b, p in zip(best, weights):
                            b[h] = p[j]
                    elif epoch + 1 - best_epoch[h] >= patience:
                        active[h] = False
            if progress is not None:
                progress(1)
            if not active.any():
                break
        if progress is not None:
            progress(budget - epochs_run)  # the epochs that early stopping saved
        with torch.no_grad():
            for b, p in zip(best, model.params):
                p.copy_(b)
        chosen = int(np.argmax(best_score))  # first maximum: ties go to the earlier grid point
        test_logits = _predict(model, xte, torch.as_tensor([chosen], device=device))[0]
        test_score = metric_fn(test_logits, yte)
    record = {
        "seed": seed,
        "solver": "adam",
        "lr": grid[chosen][0],
        "weight_decay": grid[chosen][1],
        "best_epoch": int(best_epoch[chosen]),
        "valid": float(best_score[chosen]),
        "test": float(test_score),
        "epochs_run": epochs_run,
        "steps_run": epochs_run * math.ceil(xtr.n / batch),
        "test_logits": test_logits.float().cpu().numpy(),  # (N_test, C) raw logits of the chosen head
        "grid_valid": [
            {"lr": g[0], "weight_decay": g[1], "valid": float(s), "best_epoch": int(e)}
            for g, s, e in zip(grid, best_score, best_epoch)
        ],
    }
    return record, model


def _linear_objective(
    x: _Features, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, l2: float, multilabel: bool, chunk: int = 2048
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean loss over all rows + l2/2 |w|^2, and its gradients (closed form); w (C, D), b (C,).

    Layout and chunk size are for speed (measured on CPU, BENCHMARKS.md): with w as (C, D) the gradient is
    d^T @ x (a plain row-major product, ~1.3x the rate of x^T @ d), and 2048-row chunks stay in cache.

    Multi-label loss is the sum over classes of the sigmoid BCE, so each class is its own binary logistic
    regression (as scikit-learn's one-vs-rest with C = 1 / (l2 N))."""
    total = 0.0
    gw, gb = torch.zeros_like(w), torch.zeros_like(b)
    for start in range(0, x.n, chunk):
        xc, yc = x.span(start, start + chunk), y[start : start + chunk]  # (n, D), (n,) or (n, C)
        logits = F.linear(xc, w, b)  # (n, C)
        exact = logits.double()  # the loss in float64: near the optimum L-BFGS's line search compares losses
        if multilabel:  # that differ by ~1e-8, below float32's resolution (the gradient stays float32)
            target = yc.to(logits.dtype)
            total += float(F.binary_cross_entropy_with_logits(exact, target.double(), reduction="sum"))
            d = torch.sigmoid(logits) - target
        else:
            lse = torch.logsumexp(exact, dim=1, keepdim=True)  # (n, 1)
            total += float((lse[:, 0] - exact.gather(1, yc[:, None])[:, 0]).sum())
            d = torch.exp(logits - lse.to(logits.dtype))
            d[torch.arange(len(yc), device=d.device), yc] -= 1.0
        gw.addmm_(d.T, xc)
        gb += d.sum(0)
    gw.div_(x.n).add_(w, alpha=l2)
    return total / x.n + 0.5 * l2 * float((w.double() ** 2).sum()), gw, gb.div_(x.n)


PRECONDITION_ROWS = 8192  # train rows (evenly spaced) that estimate the feature covariance
PRECONDITION_RANK = 256  # leading eigenpairs kept exactly; the rest share their mean eigenvalue


class _Curvature:
    """A preconditioner for the linear probe: the Kronecker-factored Hessian at the intercept-only model.

    Near the path's start (strong L2, the intercept-only model) the Hessian of mean loss + l2/2 |W|^2 for class
    row c is a_c * Sigma + l2 * I, with Sigma the (standardised) feature covariance and a_c = pi_c (1 - pi_c) the
    logistic curvature at the class prior pi_c (the diagonal of softmax's diag(pi) - pi pi^T; each sigmoid's own
    curvature for multi-label). Its inverse is L-BFGS's initial inverse Hessian H0, so the iterations no longer
    pay for correlated feature scales (K-FAC's factorisation, Martens & Grosse 2015, used as a fixed
    preconditioner; Nocedal & Wright, Numerical Optimization, section 7.2 on H0). Sigma keeps its leading
    `PRECONDITION_RANK` eigenpairs (all of them for smaller D) from `PRECONDITION_ROWS` evenly spaced train rows;
    the other eigenvalues are replaced by their mean, so applying H0 costs two (C, D, k) products.
    The optimum and the stopping rule do not change: only the number of iterations to reach them does."""

    def __init__(self, x: _Features, y: torch.Tensor, multilabel: bool, num_classes: int) -> None:
        rows = torch.linspace(0, x.n - 1, min(x.n, PRECONDITION_ROWS)).round().long()
        xs = x[rows.numpy()]  # (m, D); standardised, so centred up to sampling
        dim = xs.shape[1]
        if dim <= 2 * PRECONDITION_RANK:
            exact = xs.double()
            lam, vec = torch.linalg.eigh(exact.T @ exact / len(xs))
        else:
            with torch.random.fork_rng(devices=_rng_devices(xs.device)):
                torch.manual_seed(0)
                _, sv, vec = torch.svd_lowrank(xs, q=PRECONDITION_RANK, niter=2)
            lam = sv**2 / len(xs)
        total = float((xs * xs).sum()) / len(xs)  # trace of Sigma
        self.rest = max((total - float(lam.sum())) / max(dim - len(lam), 1), 1e-6) if len(lam) < dim else 0.0
        self.lam, self.vec = lam.clamp_min(1e-6).to(x.dtype), vec.to(x.dtype).contiguous()  # (k,), (D, k)
        prior = y.float().mean(0) if multilabel else torch.bincount(y, minlength=num_classes).float() / len(y)
        self.a = (prior * (1 - prior)).clamp_min(1.0 / x.n).to(x.dtype)  # (C,) curvature of each class row

    def inverse(self, l2: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """H0 for this L2: theta (C, D + 1) -> (a_c Sigma + l2 I)^-1 theta_c per row, bias column / a_c."""
        a = self.a[:, None]
        top = 1.0 / (a * self.lam + l2)  # (C, k)
        rest = 1.0 / (a * self.rest + l2)  # (C, 1)
        vec = self.vec

        def apply(theta: torch.Tensor) -> torch.Tensor:
            w, b = theta[:, :-1], theta[:, -1:]
            proj = w @ vec  # (C, k)
            out_w = torch.addmm(w * rest, proj * (top - rest), vec.T)  # (C, D)
            return torch.cat([out_w, b / a], dim=1)

        return apply


def _lbfgs(
    fun: Callable[[torch.Tensor], tuple[float, torch.Tensor]],
    theta: torch.Tensor,
    loss: float,
    grad: torch.Tensor,
    h0: Callable[[torch.Tensor], torch.Tensor],
    cfg: ProbeConfig,
    tolerance_change: float | None = None,
) -> tuple[torch.Tensor, float, torch.Tensor, int, int]:
    """L-BFGS from `theta` (whose `loss` and `grad` are given) with initial inverse Hessian `h0` (two-loop
    recursion, Nocedal & Wright algorithm 7.4) and torch's strong Wolfe line search; stops at max |gradient| <=
    `cfg.lbfgs_tol`, `cfg.lbfgs_max_iter` iterations, or no further progress (`tolerance_change`: in float32
    `torch.optim.LBFGS`' default 1e-9; in float64 64 eps, scipy's `ftol` as scikit-learn sets it). Written here
    because `torch.optim.LBFGS` and scipy's L-BFGS-B take no preconditioner.

    `theta` is (C, D + 1); `fun(theta) -> (loss, gradient like theta)`. Returns (theta, loss, gradient,
    iterations, evaluations)."""
    from torch.optim.lbfgs import _strong_wolfe  # torch's own line search (used by torch.optim.LBFGS)

    shape = theta.shape
    x, grad = theta.reshape(-1).clone(), grad.reshape(-1)
    if tolerance_change is None:
        tolerance_change = 64 * torch.finfo(torch.float64).eps if theta.dtype == torch.float64 else 1e-9

    def flat(v: torch.Tensor) -> tuple[float, torch.Tensor]:
        loss, grad = fun(v.view(shape))
        return loss, grad.reshape(-1)

    evals, it, pairs = 0, 0, []  # pairs: (s, y, 1 / y.s), oldest first
    while float(grad.abs().max()) > cfg.lbfgs_tol and it < cfg.lbfgs_max_iter:
        q, alphas = grad.clone(), []
        for s, y, rho in reversed(pairs):
            alpha = rho * float(s.dot(q))
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        r = h0(q.view(shape)).reshape(-1)
        for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
            r.add_(s, alpha=alpha - rho * float(y.dot(r)))
        d = r.neg_()
        gtd = float(grad.dot(d))
        if gtd > -tolerance_change:  # not a descent direction: nothing left to gain at this precision
            break
        new_loss, new_grad, t, ls_evals = _strong_wolfe(lambda v, t, d: flat(v + t * d), x, 1.0, d, loss, grad, gtd)
        evals, it = evals + ls_evals, it + 1
        step = d.mul(t)
        ys = new_grad - grad
        sy = float(step.dot(ys))
        if sy > 1e-10:
            pairs = (pairs + [(step, ys, 1.0 / sy)])[-cfg.lbfgs_history :]
        x.add_(step)
        change, loss, grad = abs(new_loss - loss), new_loss, new_grad
        if change < tolerance_change or float(step.abs().max()) <= tolerance_change:
            break
    return x.view(shape), loss, grad.view(shape), it, evals


def _extrapolate(l2s: list[float], thetas: list[torch.Tensor], l2: float) -> torch.Tensor | None:
    """The path's next solution predicted from the last (up to 3) solutions: Lagrange polynomial in log(l2)
    (the solution is a smooth function of log l2); None before two solutions or with a zero L2."""
    if len(thetas) < 2 or min(l2s[-3:] + [l2]) <= 0:
        return None
    ts, t = [math.log(v) for v in l2s[-3:]], math.log(l2)
    weights = [math.prod((t - tm) / (tk - tm) for m, tm in enumerate(ts) if m != k) for k, tk in enumerate(ts)]
    return sum(w * th for w, th in zip(weights, thetas[-3:]))


@torch.no_grad()
def _fit_linear_path(
    xs: list[_Features],
    ys: list[torch.Tensor],
    multilabel: bool,
    num_classes: int,
    metric_fn: Callable[..., float],
    cfg: ProbeConfig,
    progress: Callable[[int], Any] | None,
) -> tuple[dict[str, Any], np.ndarray]:
    """The L2-regularised linear probe along `cfg.l2_grid`, strongest first: full-batch L-BFGS (`_lbfgs`,
    preconditioned by `_Curvature` unless `cfg.lbfgs_precondition` is off) from zero, each later point started
    from the previous solution or, when its loss is lower, from the path extrapolated in log(l2) (`_extrapolate`);
    until max |gradient| <= `lbfgs_tol`, no further progress, or `lbfgs_max_iter` iterations (each point records
    its final max |gradient| and whether it reached the tolerance). The walk stops `path_patience` points after the
    best validation score (weaker points are not fitted); ties go to the stronger L2. Returns (record, test
    logits (N_test, C))."""
    (xtr, xva, xte), (ytr, yva, yte) = xs, ys
    dim = xtr.rows.dim
    curvature = _Curvature(xtr, ytr, multilabel, num_classes) if cfg.lbfgs_precondition else None

    def logits(x: _Features, theta: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.linear(x.span(s, s + 8192), theta[:, :dim], theta[:, dim]) for s in range(0, x.n, 8192)])

    theta = torch.zeros(num_classes, dim + 1, device=xtr.device, dtype=xtr.dtype)  # (C, D + 1): W, bias column
    best_score, best, best_at, points, solutions = -np.inf, theta, 0, [], []
    for i, l2 in enumerate(cfg.l2_grid):

        def fun(theta: torch.Tensor, l2: float = l2) -> tuple[float, torch.Tensor]:
            loss, gw, gb = _linear_objective(xtr, ytr, theta[:, :dim], theta[:, dim], l2, multilabel)
            return loss, torch.cat([gw, gb[:, None]], dim=1)

        evaluations = 0
        if i == 0:
            loss, grad = fun(theta)
            evaluations += 1
        else:  # the previous solution under the new L2: loss and gradient follow in closed form
            shift = l2 - cfg.l2_grid[i - 1]
            w = theta[:, :dim]
            loss = loss + 0.5 * shift * float((w.double() ** 2).sum())  # in float64, as `_linear_objective`
            grad = grad.clone()
            grad[:, :dim].add_(w, alpha=shift)
            guess = _extrapolate(list(cfg.l2_grid[:i]), solutions, l2)
            if guess is not None:
                guess_loss, guess_grad = fun(guess)
                evaluations += 1
                if guess_loss < loss:
                    theta, loss, grad = guess, guess_loss, guess_grad
        h0 = curvature.inverse(l2) if curvature is not None else (lambda v: v)
        theta, loss, grad, iterations, evals = _lbfgs(fun, theta, loss, grad, h0, cfg)
        solutions = (solutions + [theta])[-3:]
        score = metric_fn(logits(xva, theta), yva)
        grad_max = float(grad.abs().max())
        points.append({"l2": l2, "valid": float(score), "iterations": iterations,
                       "evaluations": evaluations + evals, "grad_max": grad_max,
                       "converged": grad_max <= cfg.lbfgs_tol})  # fmt: skip
        if progress is not None:
            progress(1)
        if score > best_score:
            best_score, best, best_at = score, theta, i
        elif i - best_at >= cfg.path_patience:
            break
    if progress is not None:
        progress(len(cfg.l2_grid) - len(points))
    loose = [f"{p['l2']:g} ({p['grad_max']:.1e})" for p in points if not p["converged"]]
    if loose:
        warnings.warn(f"linear probe: L2 point(s) {', '.join(loose)} stopped above lbfgs_tol {cfg.lbfgs_tol:g} "
                      "(max |gradient| in brackets; no further progress at this precision); recorded in results.json",
                      stacklevel=2)  # fmt: skip
    test_logits = logits(xte, best)
    record = {
        "solver": "lbfgs",
        "l2": cfg.l2_grid[best_at],
        "valid": float(best_score),
        "test": float(metric_fn(test_logits, yte)),
        "points_run": len(points),
        "lbfgs_iterations": sum(p["iterations"] for p in points),
        "lbfgs_evaluations": sum(p["evaluations"] for p in points),
        "grid_valid": points,
    }
    return record, test_logits.float().cpu().numpy()


def targets_for(labels: Sequence[Sequence[str]], classes: Sequence[str], multilabel: bool) -> torch.Tensor:
    """Class indices (N,) int64, or multi-hot (N, C) uint8 for multi-label tasks (labels outside `classes` are
    not scored there, as `TaskSpec.classes` specifies; a single-label clip must have a listed class)."""
    index = {c: i for i, c in enumerate(classes)}
    if multilabel:
        y = torch.zeros(len(labels), len(classes), dtype=torch.uint8)
        for i, labs in enumerate(labels):
            y[i, [index[lab] for lab in labs if lab in index]] = 1
        return y
    missing = sorted({labs[0] for labs in labels if labs[0] not in index})
    if missing:
        raise ValueError(f"labels not in the task's classes: {missing[:10]}")
    return torch.tensor([index[labs[0]] for labs in labels], dtype=torch.int64)
