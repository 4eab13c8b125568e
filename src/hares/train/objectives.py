"""Pre-training objectives as modules: `objective(batch, generator) -> {"loss": ..., **logs}`.

Each objective owns the frontend (log-mel on the training device, in fp32; none for waveform networks, whose class
says `input_kind = "waveform"`), the encoder and its heads, so the training loop never branches on the method
(timm `task/`): SimCLR and supervised (either kind), BYOL-A (log-mel), CPC and wav2vec 2.0 (their waveform
networks). The batch is {"wav": (B, V, N), "target": (B, C)} with V = `objective.views` random crops per clip;
example mixing acts on waveforms before the log-mel (docs/PROTOCOL.md section 6). `encoder` is the network that is
exported; heads are discarded after training.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from hares.audio import LogMel
from hares.train.augment import example_mix, log_mixup_exp, random_resize_crop
from hares.train.dist import all_reduce_sum, all_reduce_with_grad, gather_with_grad, world_size
from hares.train.losses import byol_loss, codebook_diversity, cpc_infonce, fp32, nt_xent, wav2vec2_contrastive


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


def input_kind(encoder: nn.Module) -> str:
    """What a network takes: "logmel" (the default) or "waveform" (its class attribute `input_kind`)."""
    return getattr(encoder, "input_kind", "logmel")


def _logmel(frontend: nn.Module, wav: torch.Tensor, encoder: nn.Module | None = None) -> torch.Tensor:
    """(B, N) -> (B, 1, T, F); the frontend runs in fp32 even under autocast, the result takes the waveform's
    dtype (fp32 in training; the equality tests run the whole objective in fp64). A waveform network
    (`input_kind == "waveform"`) gets the waveform itself."""
    if encoder is not None and input_kind(encoder) == "waveform":
        return wav
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
        x = _logmel(self.frontend, torch.cat(mixed), self.encoder)  # (2B, 1, T, F), or (2B, N) for waveform nets
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
        logits = self.head(self.encoder(_logmel(self.frontend, wav, self.encoder))).float()  # (B, C)
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
        if input_kind(encoder) != "logmel":
            raise ValueError("BYOL-A augments log-mel spectrograms: it needs a log-mel network, not a waveform one")
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


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient times `scale` backward (fairseq's `GradMultiply`, wav2vec 2.0's feature_grad_mult)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad * ctx.scale, None


class CPC(nn.Module):
    """Bidirectional CPC (Oord et al. 2018; Borgholt et al. 2021): InfoNCE over `steps` future frames, both ways.

    One random crop per clip -> conv encoder frames z (B, T, C) -> forward context predicts z_{t+k}, backward
    context predicts z_{t-k}, k = 1..12, each step with its own linear head (CPC_audio's `PredictionNetwork`).
    Negatives: `negatives` (128) frames per anchor drawn uniformly from all frames of the global batch (every
    rank's frames, gathered with gradients; CPC_audio's "uniform" sampling, not "samespeaker", pretraining.md
    section 6), shared by the 12 steps of one direction, drawn afresh for the other. Loss: the sum over steps of
    the mean cross-entropy, forward + backward. Differences from CPC_audio: negatives come from the global batch
    rather than one GPU's, and the pool includes the anchor's own frames (CPC_audio skips frames at the anchor's
    time index).
    """

    views = 1

    def __init__(self, encoder: nn.Module, steps: int = 12, negatives: int = 128) -> None:
        super().__init__()
        if not (hasattr(encoder, "encoder") and hasattr(encoder, "context") and hasattr(encoder, "frame_dim")):
            raise ValueError("the cpc objective needs a CPC network (cpc_bidir, cpc_bidir_tiny)")
        self.encoder, self.steps, self.negatives = encoder, steps, negatives
        h, c = encoder.hidden, encoder.frame_dim
        self.forward_heads = nn.ModuleList(nn.Linear(h, c) for _ in range(steps))
        self.backward_heads = nn.ModuleList(nn.Linear(h, c) for _ in range(steps))

    def draw(self, b: int, t: int, pool: int, generator: torch.Generator | None, device) -> list[torch.Tensor]:
        """Negative indices into the global frame pool: one (B, T - steps, negatives) tensor per direction."""
        shape = (b, t - self.steps, self.negatives)
        return [torch.randint(pool, shape, generator=generator).to(device) for _ in range(2)]

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        wav = batch["wav"][:, 0]  # (B, N)
        z = self.encoder.encoder(wav)  # (B, T, C)
        fwd, bwd = self.encoder.context(z)  # (B, T, H) each
        b, t, c = z.shape
        pool = gather_with_grad(z.reshape(b * t, c))  # (W * B * T, C), rank-major like the global batch
        neg_f, neg_b = self.draw(b, t, pool.shape[0], generator, z.device)
        loss_f, acc_f = cpc_infonce(fwd, z, self.forward_heads, pool, neg_f)
        loss_b, acc_b = cpc_infonce(bwd.flip(1), z.flip(1), self.backward_heads, pool, neg_b)
        return {"loss": loss_f + loss_b, "loss_forward": loss_f, "loss_backward": loss_b, "acc": (acc_f + acc_b) / 2}

    def on_step_end(self) -> None:
        """Nothing to do after an optimiser step."""


class Wav2Vec2(nn.Module):
    """wav2vec 2.0 (Baevski et al. 2020) with fairseq's BASE settings, on transformers' `Wav2Vec2ForPreTraining`.

    Per clip: feature encoder (gradient x `feature_grad_mult`) -> layer norm; projected features with spans of
    `mask_length` frames masked (starts drawn with probability `mask_prob`, at least 2, every clip of a rank
    trimmed to the same count, as fairseq's `require_same_masks`) -> transformer -> `project_hid`; targets: the
    un-masked normalised features at the masked frames -> Gumbel product quantizer (hard, straight-through,
    temperature max(2 * 0.999995^update, 0.5)) -> `project_q`; `num_negatives` distractors per frame from the
    same clip's masked frames. Loss = mean contrastive cross-entropy over masked frames (cosine / 0.1)
    + 0.1 * diversity + 10 * mean squared feature (fairseq `loss_weights [0.1, 10]`).

    Why the loss is computed here rather than by `Wav2Vec2ForPreTraining.forward`: transformers draws masks and
    negatives with numpy's global RNG and Gumbel noise with torch's, computes the codebook perplexity over one
    process's batch, and leaves out the feature penalty and the gradient scaling of the feature encoder. Here
    masks, negatives and Gumbel noise come from the step's generator (a function of seed, step and rank, so runs
    resume bit-exactly), the perplexity is taken over the global batch (summed across ranks with gradients, so N
    processes compute what one process computes on the combined batch; fairseq takes it per GPU), and the
    contrastive sum is divided by the global number of masked frames (as fairseq's sample size).
    Layer drop (0.05) and dropout use torch's global RNG, which checkpoints save and restore.
    """

    views = 1
    ddp_find_unused_parameters = True  # layer drop leaves a skipped layer without gradient

    def __init__(
        self,
        encoder: nn.Module,
        mask_prob: float = 0.65,
        mask_length: int = 10,
        negatives: int = 100,
        logit_temp: float = 0.1,
        diversity_weight: float = 0.1,
        feature_pen_weight: float = 10.0,
        feature_grad_mult: float = 0.1,
        gumbel_temp: tuple = (2.0, 0.5, 0.999995),
    ) -> None:
        super().__init__()
        if not hasattr(encoder, "hf"):
            raise ValueError("the wav2vec2 objective needs a wav2vec 2.0 network (wav2vec2_base, wav2vec2_tiny)")
        self.encoder = encoder
        self.mask_prob, self.mask_length, self.negatives = mask_prob, mask_length, negatives
        self.logit_temp, self.diversity_weight = logit_temp, diversity_weight
        self.feature_pen_weight = feature_pen_weight
        self.feature_grad_mult, self.gumbel_temp = feature_grad_mult, tuple(gumbel_temp)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))  # drives the Gumbel temperature

    def temperature(self) -> float:
        start, end, decay = self.gumbel_temp
        return max(start * decay ** int(self.num_updates), end)

    def draw(self, b: int, t: int, generator: torch.Generator | None, device) -> dict[str, torch.Tensor]:
        """The step's random choices: masks (B, T) with the same count M per clip, negatives (B, M, K) indices
        into the clip's M masked frames (never the frame itself), Gumbel noise (B, M, G * V)."""
        length = self.mask_length
        if t <= length + 1:
            raise ValueError(f"wav2vec 2.0 masking needs more than {length + 1} frames per crop (got {t})")
        mask = torch.zeros(b, t, dtype=torch.bool)
        for i in range(b):  # fairseq compute_mask_indices (static lengths, overlaps allowed)
            num = max(2, int(self.mask_prob * t / length + float(torch.rand((), generator=generator))))
            span = length if t - length > num else t - num - 1
            starts = torch.randperm(t - span, generator=generator)[:num]
            idx = (starts[:, None] + torch.arange(length)[None]).reshape(-1)
            mask[i, idx[idx < t]] = True
        m = int(mask.sum(1).min())
        for i in range(b):  # require_same_masks: keep a random subset of m masked frames in every clip
            on = mask[i].nonzero()[:, 0]
            if len(on) > m:
                mask[i] = False
                mask[i, on[torch.randperm(len(on), generator=generator)[:m]]] = True
        neg = torch.randint(max(m - 1, 1), (b, m, self.negatives), generator=generator)
        neg = neg + (neg >= torch.arange(m)[None, :, None]).long() if m > 1 else torch.zeros_like(neg)
        cfg = self.encoder.hf.config
        u = torch.rand(b, m, cfg.num_codevector_groups * cfg.num_codevectors_per_group, generator=generator)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
        return {"mask": mask.to(device), "negatives": neg.to(device), "gumbel": gumbel.to(device)}

    def quantize(self, x: torch.Tensor, gumbel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gumbel product quantizer with transformers' parameters: x (B, M, C) -> (quantized (B, M, D), probs (G, V)
        summed over the B * M frames for the diversity loss, chosen codeword ids (B, M, G))."""
        q = self.encoder.hf.quantizer
        g, v = q.num_groups, q.num_vars
        logits = fp32(q.weight_proj(x))  # (B, M, G * V)
        bm = logits.shape[0] * logits.shape[1]
        logits = logits.reshape(bm * g, v)
        probs_sum = torch.softmax(logits, dim=-1).reshape(bm, g, v).sum(0)  # (G, V)
        if self.training:
            soft = torch.softmax((logits + gumbel.reshape(bm * g, v).to(logits.dtype)) / self.temperature(), dim=-1)
            ids = soft.argmax(-1)  # (BM * G,)
            onehot = F.one_hot(ids, v).to(soft.dtype) - soft.detach() + soft  # straight-through
        else:
            ids = logits.argmax(-1)
            onehot = F.one_hot(ids, v).to(logits.dtype)
        codes = onehot.reshape(bm, g * v, 1).to(q.codevectors.dtype) * q.codevectors  # (BM, G * V, D / G)
        codes = codes.reshape(bm, g, v, -1).sum(2).reshape(x.shape[0], x.shape[1], -1)  # (B, M, D)
        return codes, probs_sum, ids.reshape(x.shape[0], x.shape[1], g)

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        hf = self.encoder.hf
        w2v = hf.wav2vec2
        wav = batch["wav"][:, 0]  # (B, N)
        feats = w2v.feature_extractor(self.encoder._check(wav))  # (B, C, T)
        if self.feature_grad_mult != 1.0:
            feats = GradMultiply.apply(feats, self.feature_grad_mult)
        feats = feats.transpose(1, 2)  # (B, T, C)
        pen = fp32(feats).pow(2).mean()
        hidden, normed = w2v.feature_projection(feats)  # (B, T, E) with dropout_input, (B, T, C) layer-normed
        b, t = hidden.shape[:2]
        r = self.draw(b, t, generator, hidden.device)
        mask = r["mask"]
        hidden = w2v._mask_hidden_states(hidden, mask_time_indices=mask)
        out = w2v.encoder(hidden).last_hidden_state  # (B, T, E)
        m = int(mask[0].sum())
        context = hf.project_hid(out[mask].reshape(b, m, -1))  # (B, M, D)
        quantized, probs_sum, ids = self.quantize(hf.dropout_features(normed)[mask].reshape(b, m, -1), r["gumbel"])
        targets = hf.project_q(quantized)  # (B, M, D)
        ce_sum, correct = wav2vec2_contrastive(context, targets, r["negatives"], self.logit_temp, ids)
        frames = all_reduce_sum(b * m, ce_sum.device)  # masked frames of the global batch
        contrastive = ce_sum * (world_size() / frames)  # DDP's mean over ranks makes this the global mean
        count = torch.tensor(float(b * m), device=probs_sum.device, dtype=probs_sum.dtype)
        diversity, perplexity = codebook_diversity(all_reduce_with_grad(probs_sum), all_reduce_with_grad(count))
        loss = contrastive + self.diversity_weight * diversity + self.feature_pen_weight * pen
        return {
            "loss": loss,
            "contrastive": contrastive.detach(),
            "diversity": diversity.detach(),
            "feature_pen": pen.detach(),
            "code_perplexity": perplexity.detach(),
            "acc": correct.float() * (world_size() / frames),
            "gumbel_temp": torch.tensor(self.temperature()),
        }

    @torch.no_grad()
    def on_step_end(self) -> None:
        """Count optimiser updates (the Gumbel temperature anneals with them)."""
        self.num_updates += 1


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
    if cfg.objective == "cpc":
        return CPC(encoder, cfg.cpc_steps, cfg.cpc_negatives)
    if cfg.objective == "wav2vec2":
        return Wav2Vec2(
            encoder, cfg.w2v_mask_prob, cfg.w2v_mask_length, cfg.w2v_negatives, cfg.w2v_logit_temp,
            cfg.w2v_diversity_weight, cfg.w2v_feature_pen_weight, cfg.w2v_feature_grad_mult, cfg.w2v_gumbel_temp,
        )  # fmt: skip
    raise KeyError(f"unknown objective {cfg.objective!r}")
