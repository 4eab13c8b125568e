"""Losses: NT-Xent over the global batch (SimCLR), BYOL's normalised regression loss, CPC's InfoNCE, wav2vec 2.0's
contrastive and diversity terms.

NT-Xent follows docs/PRETRAINING.md section 7: normalise in fp32, gather the projections of every rank with
gradients, compute the loss for the *local* anchors against *all* keys, mask self-similarity with -inf and use
`cross_entropy` (never exp/log by hand). The mean over local anchors, averaged over ranks by DDP, is the mean over
all 2 * global-batch anchors, so the update equals one process on the combined batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hares.train.dist import gather_with_grad, rank


def fp32(x: torch.Tensor) -> torch.Tensor:
    """At least fp32 (bf16/fp16 -> fp32; fp64 stays fp64, for the equality tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, gather: bool = True) -> torch.Tensor:
    """NT-Xent (SimCLR) loss of two views' projections z1, z2: (B, D) of this rank's B clips.

    Each of the 2B local anchors has one positive (its other view) and 2 * world * B - 2 negatives.
    """
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    z = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)  # (2B, D), at least fp32
    keys = gather_with_grad(z) if gather else z  # (W * 2B, D), rank-major
    offset = rank() * 2 * b if gather else 0  # where this rank's anchors sit among the keys
    logits = z @ keys.T / temperature  # (2B, W * 2B)
    i = torch.arange(2 * b, device=z.device)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[i, offset + i] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = offset + torch.cat([i[b:], i[:b]])  # view 1 <-> view 2
    return F.cross_entropy(logits, positives)


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target), mean over the batch (BYOL / BYOL-A); the target carries no gradient."""
    p = F.normalize(prediction.float(), dim=-1)
    t = F.normalize(target.detach().float(), dim=-1)
    return (2 - 2 * (p * t).sum(dim=-1)).mean()


def cpc_infonce(
    context: torch.Tensor,
    frames: torch.Tensor,
    heads,
    pool: torch.Tensor,
    negatives: torch.Tensor,
    dense: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CPC's InfoNCE over K future steps (facebookresearch/CPC_audio `CPCUnsupersivedCriterion`), one direction.

    context (B, T, H) and frames (B, T, C) of this rank; `heads` K modules H -> C; `pool` (P, C) the frames of the
    global batch (all ranks, gathered with gradients); `negatives` (B, T - K, N) indices into `pool`, shared by
    the K steps (as in CPC_audio). For k = 1..K the prediction p = head_k(c_t) scores the true frame z_{t+k}
    against the N negatives with CPC_audio's score, the dot product divided by C. Returns (sum over k of the mean
    cross-entropy over the B * (T - K) anchors, mean top-1 accuracy over k). Two ways to the same numbers:
    `dense` scores every pool frame with one GEMM per step and picks the negatives' scores (P / N times the FLOPs,
    but compute-bound); otherwise the negatives are gathered once, (B, T - K, N, C), and scored elementwise as
    CPC_audio does (memory-bound, cost in N only). By default `dense` when P <= 64 N, which covers the paper
    preset on one to eight devices (P = 1,024 to 8,192 frames, N = 128): a full-size CPU step at batch 8 took
    34 s dense and 80 s elementwise on the loaded dev box (two runs, not side by side; BENCHMARKS.md). Both
    backward passes sum in a fixed order on CPU (bit-exact resumption).
    """
    b, t, c = frames.shape
    k_max = len(heads)
    s = t - k_max
    if s < 1:
        raise ValueError(f"CPC needs more than {k_max} frames per crop (got {t}); use longer crops")
    n = negatives.shape[-1]
    dense = pool.shape[0] <= 64 * n if dense is None else dense
    if not dense:  # index_select: its backward (index_add) sums in a fixed order on CPU (advanced indexing does not)
        negs = pool.index_select(0, negatives.reshape(-1)).reshape(*negatives.shape, c)  # (B, S, N, C)
    labels = torch.zeros(b * s, dtype=torch.long, device=frames.device)
    loss, acc = frames.new_zeros((), dtype=torch.float32), 0.0
    for k, head in enumerate(heads, 1):
        p = head(context[:, :s])  # (B, S, C)
        pos = (p * frames[:, k : k + s]).sum(-1, keepdim=True)  # (B, S, 1)
        if dense:
            neg = (p @ pool.T).gather(-1, negatives)  # (B, S, P) -> (B, S, N)
        else:
            neg = (negs * p[:, :, None]).sum(-1)  # (B, S, N), elementwise (a bmm of tiny matrices is slower)
        logits = (fp32(torch.cat([pos, neg], dim=-1)) / c).reshape(b * s, -1)  # (B * S, 1 + N)
        loss = loss + F.cross_entropy(logits, labels)
        acc += float((logits.detach().argmax(-1) == 0).float().mean()) / k_max
    return loss, torch.tensor(acc)


def wav2vec2_contrastive(
    context: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
    codes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """wav2vec 2.0's contrastive term (fairseq `Wav2Vec2Model.compute_preds` + `wav2vec_criterion`), summed.

    context (B, M, D): the transformer's projected outputs at the M masked frames of each clip; targets (B, M, D):
    the projected quantized frames there; negatives (B, M, K) indices into the same clip's M targets. Logits are
    cosine similarities / temperature in fp32; a negative equal to the positive is masked with -inf. "Equal" is
    decided on the codeword ids `codes` (B, M, G) when given (fairseq compares the projected vectors, which round-off
    can make differ for the same codewords), else on the vectors. Returns
    (sum of the cross-entropy over the B * M masked frames, number of correct top-1 predictions).
    """
    b, m, d = targets.shape
    negs = targets[torch.arange(b, device=targets.device)[:, None, None], negatives]  # (B, M, K, D)
    cands = fp32(torch.cat([targets[:, :, None], negs], dim=2))  # (B, M, 1 + K, D)
    logits = F.cosine_similarity(fp32(context)[:, :, None], cands, dim=-1) / temperature  # (B, M, 1 + K)
    if codes is not None:
        same = (codes[torch.arange(b, device=codes.device)[:, None, None], negatives] == codes[:, :, None]).all(-1)
    else:
        same = (negs == targets[:, :, None]).all(-1)  # (B, M, K)
    logits = torch.cat([logits[..., :1], logits[..., 1:].masked_fill(same, float("-inf"))], dim=-1)
    logits = logits.reshape(b * m, -1)
    labels = torch.zeros(b * m, dtype=torch.long, device=targets.device)
    correct = (logits.detach().argmax(-1) == 0).sum()
    return F.cross_entropy(logits, labels, reduction="sum"), correct


def codebook_diversity(probs_sum: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """wav2vec 2.0's diversity loss from the summed softmax probabilities (G, V) of `count` frames:
    (G V - perplexity) / (G V), perplexity = sum over groups of exp(entropy of the mean distribution)."""
    avg = probs_sum / count  # (G, V)
    perplexity = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()
    n = probs_sum.numel()
    return (n - perplexity) / n, perplexity
