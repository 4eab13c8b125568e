"""Pre-training objectives as modules: `objective(batch, generator) -> {"loss": ..., **logs}`.

Each objective owns the frontend (log-mel on the training device, in fp32), the encoder and its heads, so the
training loop never branches on the method (timm `task/`). The batch is {"wav": (B, V, N), "target": (B, C)} with
V = `objective.views` random crops per clip; example mixing acts on waveforms before the log-mel
(docs/PROTOCOL.md section 6). `encoder` is the network that is exported; heads are discarded after training.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from hares.audio import LogMel
from hares.train.augment import example_mix, log_mixup_exp, random_resize_crop
from hares.train.dist import all_reduce_with_grad, world_size
from hares.train.losses import byol_loss, nt_xent


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics span the global batch (all ranks), on CPU (gloo) and GPU alike.

    `nn.SyncBatchNorm` refuses CPU tensors; this sums per-rank (count, sum, sum of squares) with a differentiable
    all-reduce, so 2 ranks compute exactly what one process computes on the combined batch (google-research/
    simclr#114: local BN lets a contrastive model cheat). In one process it is a plain BatchNorm1d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        x64 = x.double()  # (N, C); float64 sums keep E[x^2] - E[x]^2 as exact as the one-process two-pass variance
        stats = torch.cat([x64.new_full((1,), x64.shape[0]), x64.sum(0), (x64 * x64).sum(0)])
        stats = all_reduce_with_grad(stats)
        n, s1, s2 = stats[0], stats[1 : 1 + x.shape[1]], stats[1 + x.shape[1] :]
        mean64 = s1 / n
        var64 = (s2 / n - mean64 * mean64).clamp_min(0.0)
        dtype = torch.promote_types(x.dtype, torch.float32)
        mean, var, x32 = mean64.to(dtype), var64.to(dtype), x.to(dtype)
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 0.1
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * float(n) / (float(n) - 1))
            self.num_batches_tracked.add_(1)
        y = (x32 - mean) * torch.rsqrt(var + self.eps)
        return (y * self.weight + self.bias).to(x.dtype) if self.affine else y.to(x.dtype)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear-BN-ReLU) of width `hidden`, then Linear to `out_dim` (SimCLR / BYOL projector)."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(in_dim if i == 0 else hidden, hidden), GlobalBatchNorm1d(hidden), nn.ReLU(inplace=True)]
    blocks.append(nn.Linear(hidden if layers else in_dim, out_dim))
    return nn.Sequential(*blocks)


def _logmel(frontend: nn.Module, wav: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, 1, T, F); the frontend runs in fp32 even under autocast, the result takes the waveform's
    dtype (fp32 in training; the equality tests run the whole objective in fp64)."""
    return frontend(wav).to(wav.dtype)


class SimCLR(nn.Module):
    """Two random crops per clip, each example-mixed, log-mel, encoder, MLP projector, NT-Xent on the global batch."""

    views = 2

    def __init__(
        self,
        encoder: nn.Module,
        proj_hidden: int = 4096,
        proj_layers: int = 3,
        proj_dim: int = 128,
        temperature: float = 0.1,
        mix_max_ratio: float = 0.4,
        mix_p: float = 1.0,
    ) -> None:
        super().__init__()
        self.frontend, self.encoder = LogMel(dtype=torch.float32), encoder
        self.projector = mlp(encoder.embed_dim, proj_hidden, proj_dim, proj_layers)
        self.temperature, self.mix_max_ratio, self.mix_p = temperature, mix_max_ratio, mix_p

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        wav = batch["wav"]  # (B, 2, N)
        mixed = [example_mix(wav[:, v], self.mix_max_ratio, self.mix_p, generator)[0] for v in range(2)]
        x = _logmel(self.frontend, torch.cat(mixed))  # (2B, 1, T, F)
        z = self.projector(self.encoder(x))  # (2B, proj_dim)
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        with torch.no_grad():
            pos_sim = F.cosine_similarity(z1.float(), z2.float()).mean()
        return {"loss": loss, "pos_cosine": pos_sim}

    def on_step_end(self) -> None:
        """Nothing to do after an optimiser step (BYOL-A updates its target network here)."""


class Supervised(nn.Module):
    """One random crop, example mixing with mixed targets, a linear head, BCE with logits (multi-label)."""

    views = 1

    def __init__(self, encoder: nn.Module, num_classes: int, mix_max_ratio: float = 0.4, mix_p: float = 1.0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("supervised pre-training needs labelled data (num_classes >= 1)")
        self.frontend, self.encoder = LogMel(dtype=torch.float32), encoder
        self.head = nn.Linear(encoder.embed_dim, num_classes)
        self.mix_max_ratio, self.mix_p = mix_max_ratio, mix_p

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        wav, y = batch["wav"][:, 0], batch["target"].float()  # (B, N), (B, C)
        wav, lam, partner = example_mix(wav, self.mix_max_ratio, self.mix_p, generator)
        y = (1 - lam.float()) * y + lam.float() * y[partner]
        logits = self.head(self.encoder(_logmel(self.frontend, wav))).float()  # (B, C)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        return {"loss": loss}

    def on_step_end(self) -> None:
        """Nothing to do after an optimiser step."""


class BYOLA(nn.Module):
    """BYOL for Audio (Niizumi et al. 2021; nttcslab/byol-a v1), the third compared framework.

    One crop per clip -> log-mel -> running normalisation -> two views, each Mixup with a FIFO memory of past
    inputs (log-mixup-exp) and Random Resize Crop -> online encoder + projector + predictor vs an EMA target
    encoder + projector; loss 2 - 2 cos, symmetrised. Differences from reference: the HARES log-mel (80 bins,
    25 ms / 10 ms) instead of BYOL-A's 64-bin one; normalisation statistics are a running mean over the first
    `norm_steps` batches (v1 RunningNorm style); the memory is per rank and saved with the training state.
    """

    views = 1
    norm_steps = 1000

    def __init__(
        self,
        encoder: nn.Module,
        frames: int,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        ema: float = 0.99,
        memory: int = 2048,
        mixup_ratio: float = 0.4,
    ) -> None:
        super().__init__()
        self.frontend, self.encoder = LogMel(dtype=torch.float32), encoder
        self.projector = mlp(encoder.embed_dim, proj_hidden, proj_dim, 1)
        self.predictor = mlp(proj_dim, proj_hidden, proj_dim, 1)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_encoder.parameters(), *self.target_projector.parameters()]:
            p.requires_grad_(False)
        self.ema, self.mixup_ratio = ema, mixup_ratio
        n_mels = self.frontend.n_mels
        self.register_buffer("memory", torch.zeros(memory, 1, frames, n_mels))
        self.register_buffer("memory_fill", torch.zeros((), dtype=torch.long))  # entries written so far
        self.register_buffer("norm_stats", torch.zeros(3, dtype=torch.float64))  # batches, sum of means, of vars

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.norm_stats[0] < self.norm_steps:
            self.norm_stats += torch.stack([torch.ones((), dtype=torch.float64), x.mean().double(), x.var().double()])
        mean = self.norm_stats[1] / self.norm_stats[0]
        std = (self.norm_stats[2] / self.norm_stats[0]).sqrt()
        return ((x - mean.float()) / (std.float() + 1e-8)).float()

    def _augment(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        filled = int(min(self.memory_fill.item(), self.memory.shape[0]))
        if filled:
            x = log_mixup_exp(x, self.memory[:filled], self.mixup_ratio, generator)
        return random_resize_crop(x, generator=generator)

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        x = self._normalise(_logmel(self.frontend, batch["wav"][:, 0]))  # (B, 1, T, F)
        v1, v2 = self._augment(x, generator), self._augment(x, generator)
        views = torch.cat([v1, v2])  # (2B, 1, T, F)
        p1, p2 = self.predictor(self.projector(self.encoder(views))).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target_projector(self.target_encoder(views)).chunk(2)
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        if self.training:
            self._remember(x.detach())
        return {"loss": loss}

    @torch.no_grad()
    def _remember(self, x: torch.Tensor) -> None:
        """FIFO: write the un-mixed inputs into the memory ring."""
        m = self.memory.shape[0]
        pos = (int(self.memory_fill.item()) + torch.arange(x.shape[0])) % m
        self.memory[pos.to(self.memory.device)] = x[-m:] if x.shape[0] > m else x
        self.memory_fill += x.shape[0]

    @torch.no_grad()
    def on_step_end(self) -> None:
        """EMA update of the target network after each optimiser step (constant decay, BYOL-A v1)."""
        pairs = [(self.target_encoder, self.encoder), (self.target_projector, self.projector)]
        for target, online in pairs:
            for t, o in zip(target.parameters(), online.parameters()):
                t.mul_(self.ema).add_(o.detach(), alpha=1 - self.ema)
            for t, o in zip(target.buffers(), online.buffers()):
                t.copy_(o)


def build_objective(cfg, encoder: nn.Module, num_classes: int, frames: int) -> nn.Module:
    """The objective named by `cfg.objective` (a `PretrainConfig`), around `encoder`."""
    if cfg.objective == "simclr":
        return SimCLR(
            encoder, cfg.proj_hidden, cfg.proj_layers, cfg.proj_dim, cfg.temperature, cfg.mix_max_ratio, cfg.mix_p
        )
    if cfg.objective == "supervised":
        return Supervised(encoder, cfg.num_classes or num_classes, cfg.mix_max_ratio, cfg.mix_p)
    if cfg.objective == "byola":
        return BYOLA(
            encoder, frames, cfg.proj_hidden, cfg.byol_proj_dim, cfg.byol_ema, cfg.byol_memory, cfg.byol_mixup_ratio
        )
    raise KeyError(f"unknown objective {cfg.objective!r}")
