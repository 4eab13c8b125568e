"""NT-Xent and the BYOL loss against hand-written references."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hares.train.losses import byol_loss, nt_xent


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR's definition written out with Python loops: mean over the 2B anchors of -log softmax(positive)."""
    z = torch.cat([z1, z2]).double()
    n, b = z.shape[0], z1.shape[0]
    total = 0.0
    for i in range(n):
        sims = [F.cosine_similarity(z[i], z[k], dim=0) / tau for k in range(n)]
        pos = (i + b) % n
        denom = sum(math.exp(float(s)) for k, s in enumerate(sims) if k != i)
        total += -(float(sims[pos]) - math.log(denom))
    return torch.tensor(total / n, dtype=torch.float64)


def test_nt_xent_equals_naive_reference() -> None:
    g = torch.Generator().manual_seed(0)
    for b, d, tau in [(4, 8, 0.1), (7, 3, 0.5), (2, 16, 1.0)]:
        z1, z2 = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
        got = nt_xent(z1, z2, tau)
        assert torch.allclose(got.double(), naive_nt_xent(z1, z2, tau), atol=1e-5), (b, d, tau)


def test_nt_xent_is_symmetric_in_the_views_and_scale_invariant() -> None:
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    assert torch.allclose(nt_xent(z1, z2), nt_xent(z2, z1), atol=1e-6)
    assert torch.allclose(nt_xent(z1, z2), nt_xent(3 * z1, 0.5 * z2), atol=1e-5)


def test_nt_xent_analytic_value() -> None:
    """Identical views, mutually orthogonal clips: each anchor sees exp(1/t) once and exp(0) 2B-2 times."""
    b, tau = 3, 0.5
    z = torch.eye(b)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * b - 2))
    assert abs(float(nt_xent(z, z.clone(), tau)) - expected) < 1e-5


def test_nt_xent_gradients_flow_and_loss_falls() -> None:
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(8, 4, generator=g, requires_grad=True)
    z2 = torch.randn(8, 4, generator=g, requires_grad=True)
    opt = torch.optim.SGD([z1, z2], lr=0.5)
    first = nt_xent(z1, z2).item()
    for _ in range(30):
        opt.zero_grad()
        nt_xent(z1, z2).backward()
        opt.step()
    assert nt_xent(z1, z2).item() < first - 0.5


def test_byol_loss_range_and_target_has_no_gradient() -> None:
    p = torch.randn(4, 8, requires_grad=True)
    t = torch.randn(4, 8, requires_grad=True)
    assert byol_loss(p, p.detach()).item() < 1e-6
    assert abs(byol_loss(p, -p.detach()).item() - 4.0) < 1e-5
    byol_loss(p, t).backward()
    assert p.grad is not None and t.grad is None
