"""Probes on frozen embeddings (docs/PROTOCOL.md section 3): the whole lr x weight-decay grid trained in one pass.

- Features are standardised with the train split's mean and std only.
- The grid (4 lr x 2 wd = 8 heads) is one batched model: weights (G, D, C) (linear) or (G, D, H), (G, H, C)
  (1-hidden-layer MLP, ReLU, dropout), applied with one einsum. All heads of a seed share the initial weights
  and the minibatch order, so they differ only by their grid point.
- Optimiser: Adam (betas 0.9/0.999, eps 1e-8) written out per head so each head has its own lr. Weight decay
  is **L2 added to the gradient** (exactly `torch.optim.Adam(weight_decay=wd)`), applied to weight matrices,
  not biases. Batch 1024 (full batch if smaller), up to 200 epochs.
- Early stopping per head on the validation metric with patience 20 epochs; each head's best-on-validation
  weights are restored; a stopped head drops out of the computation. The grid point is chosen on validation
  only (ties: first in grid order); the test split is scored once, for the chosen head.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from hares.evaluate.metrics import METRICS
from hares.schema import Float, Int, Seq


def _spec(spec) -> dict:
    """Field metadata: the range `--set` accepts (hares.schema, interface I3)."""
    return {"spec": spec}


@dataclass(frozen=True)
class ProbeConfig:
    """Every probe value of docs/PROTOCOL.md section 3; each one is an overridable, recorded setting."""

    lrs: tuple[float, ...] = field(default=(1e-4, 3e-4, 1e-3, 3e-3), metadata=_spec(Seq(Float(gt=0, le=10))))
    weight_decays: tuple[float, ...] = field(default=(0.0, 1e-4), metadata=_spec(Seq(Float(ge=0, le=10))))
    batch_size: int = field(default=1024, metadata=_spec(Int(ge=1, le=2**20)))  # probe minibatch
    max_epochs: int = field(default=200, metadata=_spec(Int(ge=1, le=100_000)))
    patience: int = field(default=20, metadata=_spec(Int(ge=1, le=100_000)))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=_spec(Seq(Int(ge=0, lt=2**32))))
    mlp_hidden: int = field(default=512, metadata=_spec(Int(ge=1, le=65536)))
    mlp_dropout: float = field(default=0.1, metadata=_spec(Float(ge=0, lt=1)))
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_spec(Seq(Float(ge=0, lt=1), length=2)))
    adam_eps: float = field(default=1e-8, metadata=_spec(Float(gt=0, le=1)))
    # descriptive: what the code does, recorded with every result, not settable
    weight_decay_mode: str = field(default="l2_in_gradient(torch.optim.Adam), weights only", metadata={"fixed": True})
    standardize: str = field(default="train mean/std", metadata={"fixed": True})

    def grid(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lrs for wd in self.weight_decays]


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
    """Standardised features on `device`: held as one tensor when it fits `max_bytes`, else read per batch."""

    def __init__(self, rows: Rows, mean: torch.Tensor, std: torch.Tensor, device: torch.device, max_bytes: int):
        self.rows, self.mean, self.std, self.device = rows, mean, std, device
        self.n = len(rows)
        self.data: torch.Tensor | None = None
        if self.n * rows.dim * 4 <= max_bytes:
            self.data = torch.cat([self._load(c) for c in _chunks(np.arange(self.n), 8192)]) if self.n else None

    def _load(self, idx: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(self.rows.get(idx)), dtype=torch.float32).to(self.device)
        return (x - self.mean) / self.std

    def __getitem__(self, idx: np.ndarray) -> torch.Tensor:
        if self.data is not None:
            return self.data[torch.as_tensor(idx, device=self.device)]
        order = np.argsort(idx, kind="stable")  # sorted reads from the memory maps
        x = self._load(idx[order])
        return x[torch.as_tensor(np.argsort(order), device=self.device)]


def _chunks(idx: np.ndarray, size: int) -> list[np.ndarray]:
    return [idx[i : i + size] for i in range(0, len(idx), size)]


def standardizer(rows: Rows, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (population, float64 accumulation) of `rows`, streamed; std < 1e-6 is set to 1."""
    total = np.zeros(rows.dim, np.float64)
    total_sq = np.zeros(rows.dim, np.float64)
    for c in _chunks(np.arange(len(rows)), chunk):
        x = np.asarray(rows.get(c), dtype=np.float64)
        total += x.sum(0)
        total_sq += (x * x).sum(0)
    mean = total / len(rows)
    std = np.sqrt(np.maximum(total_sq / len(rows) - mean * mean, 0.0))
    std[std < 1e-6] = 1.0
    return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


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

    def forward(self, x: torch.Tensor, heads: torch.Tensor, train: bool) -> torch.Tensor:
        """x (N, D) -> logits (g, N, C) for the heads `heads` (g,)."""
        p = [q[heads] for q in self.params]
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


def _backward(model: GridModel, x: torch.Tensor, y: torch.Tensor, heads: torch.Tensor, multilabel: bool) -> None:
    """Set the gradients of the summed per-head mean losses; closed form for the linear probe (no autograd)."""
    if model.kind != "linear":
        _loss(model.forward(x, heads, train=True), y, multilabel).backward()
        return
    with torch.no_grad():
        logits = model.forward(x, heads, train=False)  # (g, B, C)
        if multilabel:
            dlogits = (torch.sigmoid(logits) - y.float()[None]) / (logits.shape[1] * logits.shape[2])
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
    """Sum over heads of each head's mean loss: logits (g, B, C)."""
    if multilabel:
        target = y.float()[None].expand_as(logits)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2)).sum()
    g, b, c = logits.shape
    return F.cross_entropy(logits.reshape(g * b, c), y.repeat(g), reduction="sum") / b


@torch.no_grad()
def _predict(model: GridModel, x: _Features, heads: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Logits (g, N, C) of `heads` on all rows of `x`."""
    outs = [model.forward(x[c], heads, train=False) for c in _chunks(np.arange(x.n), chunk)]
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
) -> dict[str, Any]:
    """Train the grid for every seed; returns test score (mean/std over seeds, fractions) and the selections.

    `"test_logits"`: one float32 array (N_test, C) per seed, the chosen grid point's raw test logits in test-row
    order (for paired comparisons and intervals over test clips).

    Each of train/valid/test is (rows, targets): class indices (N,) int64, or multi-hot (N, C) for multi-label.
    """
    device = torch.device(device)
    metric_fn = METRICS[metric]
    mean, std = standardizer(train[0])
    mean, std = mean.to(device), std.to(device)
    xs = [_Features(r, mean, std, device, max_bytes) for r, _ in (train, valid, test)]
    ys = [torch.as_tensor(y).to(device) for _, y in (train, valid, test)]
    if xs[1].n == 0 or xs[0].n == 0 or xs[2].n == 0:
        raise ValueError(f"probe needs non-empty splits, got train/valid/test sizes {[x.n for x in xs]}")
    runs, test_logits = [], []
    for seed in cfg.seeds:
        record, _ = _train_seed(xs, ys, kind, multilabel, num_classes, metric_fn, cfg, seed, device, progress)
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
) -> tuple[dict[str, Any], GridModel]:
    """One seed of the grid: (record, model with every head's best-on-validation weights restored)."""
    (xtr, xva, xte), (ytr, yva, yte) = xs, ys
    grid = cfg.grid()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        gen = np.random.default_rng(seed)
        model = GridModel(kind, xtr.rows.dim, num_classes, len(grid), cfg, device)
        opt = GridAdam(
            model.params, model.decayed, [g[0] for g in grid], [g[1] for g in grid], cfg.adam_betas, cfg.adam_eps
        )
        best = [p.detach().clone() for p in model.params]
        best_score = np.full(len(grid), -np.inf)
        best_epoch = np.zeros(len(grid), dtype=int)
        active = np.ones(len(grid), dtype=bool)
        batch = min(cfg.batch_size, xtr.n)
        epochs_run = 0
        for epoch in range(cfg.max_epochs):
            heads = torch.as_tensor(np.nonzero(active)[0], device=device)
            perm = gen.permutation(xtr.n)
            for idx in _chunks(perm, batch):
                _backward(model, xtr[idx], ytr[torch.as_tensor(idx, device=device)], heads, multilabel)
                opt.step(heads)
            val_logits = _predict(model, xva, heads)
            epochs_run = epoch + 1
            with torch.no_grad():
                for j, h in enumerate(heads.tolist()):
                    score = metric_fn(val_logits[j], yva)
                    if score > best_score[h]:
                        best_score[h], best_epoch[h] = score, epoch + 1
                        for b, p in zip(best, model.params):
                            b[h] = p[h]
                    elif epoch + 1 - best_epoch[h] >= cfg.patience:
                        active[h] = False
            if progress is not None:
                progress(1)
            if not active.any():
                break
        with torch.no_grad():
            for b, p in zip(best, model.params):
                p.copy_(b)
        chosen = int(np.argmax(best_score))  # first maximum: ties go to the earlier grid point
        test_logits = _predict(model, xte, torch.as_tensor([chosen], device=device))[0]
        test_score = metric_fn(test_logits, yte)
    record = {
        "seed": seed,
        "lr": grid[chosen][0],
        "weight_decay": grid[chosen][1],
        "best_epoch": int(best_epoch[chosen]),
        "valid": float(best_score[chosen]),
        "test": float(test_score),
        "epochs_run": epochs_run,
        "test_logits": test_logits.float().cpu().numpy(),  # (N_test, C) raw logits of the chosen head
        "grid_valid": [
            {"lr": g[0], "weight_decay": g[1], "valid": float(s), "best_epoch": int(e)}
            for g, s, e in zip(grid, best_score, best_epoch)
        ],
    }
    return record, model


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
