"""Example mixing and BYOL-A's augmentation blocks."""

from __future__ import annotations

import torch

from hares.train.augment import example_mix, log_mixup_exp, random_resize_crop


def test_example_mix_formula_partners_and_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(16, 100)
    mixed, lam, partner = example_mix(wav, max_ratio=0.4, generator=g)
    assert mixed.shape == wav.shape and lam.shape == (16, 1)
    assert (lam >= 0).all() and (lam <= 0.4).all() and lam.std() > 0
    assert (partner != torch.arange(16)).all()  # never mixed with itself
    assert torch.allclose(mixed, (1 - lam) * wav + lam * wav[partner])


def test_two_views_get_independent_partners() -> None:
    g = torch.Generator().manual_seed(1)
    wav = torch.randn(32, 10)
    _, _, p1 = example_mix(wav, generator=g)
    _, _, p2 = example_mix(wav, generator=g)
    assert (p1 != p2).float().mean() > 0.5


def test_example_mix_off_and_reproducible() -> None:
    wav = torch.randn(4, 10)
    assert torch.equal(example_mix(wav, max_ratio=0.0)[0], wav)
    assert torch.equal(example_mix(wav, p=0.0)[0], wav)
    a = example_mix(wav, generator=torch.Generator().manual_seed(5))[0]
    b = example_mix(wav, generator=torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)
    one = torch.randn(1, 10)
    assert torch.equal(example_mix(one)[0], one)


def test_byola_blocks_keep_shape() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 20, 8)
    mixed = log_mixup_exp(x, torch.randn(5, 1, 20, 8), ratio=0.4, generator=g)
    assert mixed.shape == x.shape and torch.isfinite(mixed).all()
    assert torch.allclose(log_mixup_exp(x, torch.randn(5, 1, 20, 8), ratio=0.0), x, atol=1e-5)
    out = random_resize_crop(x, generator=g)
    assert out.shape == x.shape and not torch.allclose(out, x)
