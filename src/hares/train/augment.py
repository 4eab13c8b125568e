"""Augmentations run on the training device: example mixing (docs/PROTOCOL.md section 6) and BYOL-A's blocks.

Randomness comes from an explicit CPU `torch.Generator` that the caller seeds from (seed, step, rank), so a
resumed run draws exactly the numbers the uninterrupted run drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def example_mix(
    wav: torch.Tensor, max_ratio: float = 0.4, p: float = 1.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each waveform with another clip of the batch: x' = (1 - lam) x + lam x_partner, lam ~ U(0, max_ratio).

    wav: (B, N). Returns the mixed waveforms (B, N), lam (B, 1) (0 where the example was left unmixed, with
    probability 1 - p) and the partner index (B,). Each example draws its partner uniformly among the other
    clips, so the two views of a SimCLR pair get independent partners (docs/PRETRAINING.md section 2) and never
    share a background that would make them trivially similar. With max_ratio <= 0.5 the original clip stays
    dominant, so a positive pair keeps its identity.
    """
    b = wav.shape[0]
    if b == 1:
        return wav, wav.new_zeros(1, 1), torch.zeros(1, dtype=torch.long, device=wav.device)
    partner = ((torch.arange(b) + torch.randint(1, b, (b,), generator=generator)) % b).to(wav.device)
    lam = max_ratio * torch.rand(b, 1, generator=generator)
    lam = lam * (torch.rand(b, 1, generator=generator) < p)
    lam = lam.to(wav.device, wav.dtype)
    return (1 - lam) * wav + lam * wav[partner], lam, partner


def log_mixup_exp(
    x: torch.Tensor, memory: torch.Tensor, ratio: float = 0.4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BYOL-A's Mixup: log((1 - a) exp(x) + a exp(z) + eps) with z a random past input from `memory`, a ~ U(0, ratio).

    x: (B, 1, T, F) normalised log-mels; memory: (M, 1, T, F) with M >= 1 (nttcslab/byol-a `augmentations.py`).
    """
    b = x.shape[0]
    alpha = (ratio * torch.rand(b, 1, 1, 1, generator=generator)).to(x.device, x.dtype)
    pick = torch.randint(0, memory.shape[0], (b,), generator=generator).to(x.device)
    z = memory[pick]
    return torch.log((1 - alpha) * x.exp() + alpha * z.exp() + torch.finfo(x.dtype).eps)


def random_resize_crop(
    x: torch.Tensor,
    virtual_crop_scale: tuple[float, float] = (1.5, 1.0),
    scale: tuple[float, float] = (0.6, 1.5),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """BYOL-A's RandomResizeCrop on (B, 1, T, F) log-mels, per example; the output keeps the input size.

    The input is placed in the centre of a zero canvas `virtual_crop_scale` (time, freq) times larger; a crop of
    `scale` x the input size in each axis (clamped to the canvas) is taken at a random place and resized back
    (bicubic) (nttcslab/byol-a `augmentations.py` RandomResizeCrop).
    """
    b, c, t, f = x.shape
    ct, cf = int(t * virtual_crop_scale[0]), int(f * virtual_crop_scale[1])
    canvas = x.new_zeros(b, c, ct, cf)
    t0, f0 = (ct - t) // 2, (cf - f) // 2
    canvas[:, :, t0 : t0 + t, f0 : f0 + f] = x
    u = torch.rand(b, 4, generator=generator)
    out = []
    for i in range(b):
        ht = min(ct, max(1, int(t * (scale[0] + (scale[1] - scale[0]) * u[i, 0].item()))))
        wf = min(cf, max(1, int(f * (scale[0] + (scale[1] - scale[0]) * u[i, 1].item()))))
        it = int((ct - ht) * u[i, 2].item())
        jf = int((cf - wf) * u[i, 3].item())
        crop = canvas[i : i + 1, :, it : it + ht, jf : jf + wf]
        out.append(F.interpolate(crop, size=(t, f), mode="bicubic", align_corners=True))
    return torch.cat(out)  # (B, 1, T, F)
