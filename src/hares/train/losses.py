"""Losses: NT-Xent over the global batch (SimCLR) and BYOL's normalised regression loss.

NT-Xent follows docs/PRETRAINING.md section 7: normalise in fp32, gather the projections of every rank with
gradients, compute the loss for the *local* anchors against *all* keys, mask self-similarity with -inf and use
`cross_entropy` (never exp/log by hand). The mean over local anchors, averaged over ranks by DDP, is the mean over
all 2 * global-batch anchors, so the update equals one process on the combined batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hares.train.dist import gather_with_grad, rank


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
