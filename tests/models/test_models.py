"""Every registered encoder under one contract (timm-style tests parametrised over the registry)."""

from __future__ import annotations

import json

import pytest
import torch

from hares.models import (
    Encoder,
    byola,
    cnn14,
    create_model,
    list_models,
    load_checkpoint,
    nfnet,
    read_metadata,
    resnet,
    save_checkpoint,
    timm_models,
)

# The names registered by hares' own family files (test helpers elsewhere register extra test networks).
OURS = sorted(
    name
    for module in (byola, cnn14, nfnet, resnet, timm_models)
    for name, fn in vars(module).items()
    if callable(fn) and getattr(fn, "__module__", None) == module.__name__ and name in list_models()
)
SMALL = [n for n in OURS if n.endswith(("_tiny", "_micro"))]
# sf_nfnet_tiny's backward is slow on 2 CPU cores; sf_nfnet_micro runs the same code in the default suite.
SLOW_GRAD = {"sf_nfnet_tiny"}
FULL_COUNTS = {
    "sf_nfnet_f0": 62_970_654,
    "sf_resnet50": 25_967_208,
    "sf_resnet50_ln": 25_967_208,
    "sf_resnet50_in": 25_967_208,
    "sf_resnet50_nonorm": 25_936_896,
    "sf_nf_resnet50": 25_967_240,
    "nfnet_f0": 68_415_996,
    "resnet50": 23_501_760,
    "efficientnet_b0": 4_006_972,
    "vit_base": 85_327_872,
    "cnn14": 79_673_824,
    "byola_cnn": 5_584_000,
}
FULL_DIMS = {"sf_nfnet_f0": 3456, "sf_resnet50": 2304, "sf_nf_resnet50": 2304, "nfnet_f0": 3072, "resnet50": 2048}
FULL_DIMS |= {"efficientnet_b0": 1280, "vit_base": 768, "cnn14": 2048, "byola_cnn": 2048}


def _build(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kw)


def _meta_count(name: str, **kw) -> tuple[int, int]:
    with torch.device("meta"):
        model = create_model(name, **kw)
    return sum(p.numel() for p in model.parameters()), model.embed_dim


def test_every_full_size_name_has_a_small_twin() -> None:
    full = set(OURS) - set(SMALL)
    assert full == set(FULL_COUNTS), "pin the parameter count of every full-size model"
    families = {"sf_nfnet", "sf_resnet", "sf_nf_resnet", "nfnet", "resnet", "efficientnet", "vit", "cnn14", "byola"}
    assert {n.removesuffix("_tiny") for n in OURS if n.endswith("_tiny")} == families


@pytest.mark.parametrize("name", sorted(FULL_COUNTS))
def test_full_size_parameter_counts(name: str) -> None:
    count, dim = _meta_count(name)
    assert count == FULL_COUNTS[name]
    assert dim == FULL_DIMS.get(name, dim)


def test_paper_counts_at_reference_mel_bins() -> None:
    assert _meta_count("byola_cnn", n_mels=64)[0] == 5_321_856  # BYOL-A's own 64 mel bins
    assert _meta_count("cnn14", mel_bins=64)[0] == 79_673_792  # PANNs' 64 mel bins


@pytest.mark.parametrize("name", SMALL)
def test_forward_shapes_any_length(name: str) -> None:
    model = _build(name).eval()
    assert isinstance(model, Encoder)
    with torch.no_grad():
        for t in (101, 298, 1024):
            x = torch.randn(1, 1, t, 80)
            out = model(x)
            assert out.shape == (1, model.embed_dim)
            assert torch.isfinite(out).all()
        frames = model.forward_frames(torch.randn(2, 1, 298, 80))
    assert frames.ndim == 3 and frames.shape[0] == 2 and frames.shape[2] == model.embed_dim
    assert 1 <= frames.shape[1] <= 298


@pytest.mark.parametrize("name", SMALL)
def test_eval_is_deterministic_and_batch_independent(name: str) -> None:
    model = _build(name).eval()
    x = torch.randn(3, 1, 101, 80)
    with torch.no_grad():
        a, b = model(x), model(x)
        single = model(x[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_GRAD else n for n in SMALL])
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = _build(name).train()
    with torch.no_grad():  # open the zero-initialised gates (skip gains, last BN gammas) so every path counts
        for p in model.parameters():
            if not p.any():
                p.fill_(0.5)
    out = model(torch.randn(2, 1, 101, 80))
    assert out.shape == (2, model.embed_dim) and torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} got a zero gradient"


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("sf_nfnet_micro", {"slow": {"depth": [1, 1, 2, 1]}, "fast": {"depth": [1, 1, 2, 1]}}),
        ("sf_resnet_tiny", {"norm": "ln"}),
        ("sf_nf_resnet_tiny", {}),
        ("resnet_tiny", {}),
        ("vit_tiny", {}),
        ("cnn14_tiny", {"mel_bins": 64}),
        ("byola_tiny", {}),
    ],
)
def test_checkpoint_roundtrip(tmp_path, name: str, overrides: dict) -> None:
    model = _build(name, seed=3, **overrides).eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(model, path, extra={"step": 7})
    meta = read_metadata(path)
    assert meta["hares_name"] == name and json.loads(meta["hares_config"]) == overrides
    loaded = load_checkpoint(path).eval()
    x = torch.randn(2, 1, 101, overrides.get("mel_bins", 80))
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not path.with_suffix(".pkl").exists() and path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle


@pytest.mark.parametrize("norm", ["bn", "ln", "in", "none"])
def test_sf_resnet_norm_variants(norm: str) -> None:
    model = _build("sf_resnet_tiny", norm=norm)
    kinds = {type(m).__name__ for m in model.modules()}
    expected = {"bn": "BatchNorm2d", "ln": "GroupNorm", "in": "GroupNorm", "none": None}[norm]
    if expected:
        assert expected in kinds
    else:
        assert not kinds & {"BatchNorm2d", "GroupNorm"}
    if norm == "in":
        assert all(m.num_groups == m.num_channels for m in model.modules() if isinstance(m, torch.nn.GroupNorm))
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 101, 80)).shape == (2, model.embed_dim)
    with pytest.raises(ValueError, match="unknown norm"):
        create_model("sf_resnet_tiny", norm="batch")


def test_vit_handles_lengths_by_interpolating_positions() -> None:
    model = _build("vit_tiny").eval()
    pos = model.net.pos_embed
    with torch.no_grad():
        short, long = model(torch.randn(1, 1, 101, 80)), model(torch.randn(1, 1, 1024, 80))
        frames = model.forward_frames(torch.randn(1, 1, 1024, 80))
    assert short.shape == long.shape == (1, model.embed_dim)
    assert frames.shape[1] == 64  # 1024 / 16 patches in time
    assert model.net.pos_embed is pos and pos.shape[1] == 1 + 19 * 5  # the grid of a 3 s clip, not resized


def test_bad_input_shapes_are_named() -> None:
    for name in ("sf_nfnet_micro", "sf_resnet_tiny", "vit_tiny", "cnn14_tiny", "byola_tiny"):
        with pytest.raises(ValueError, match=r"\(B, 1, T"):
            _build(name)(torch.randn(2, 3, 101, 80))
    with pytest.raises(ValueError, match="80"):
        _build("cnn14_tiny")(torch.randn(1, 1, 101, 64))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_COUNTS))
def test_full_size_forward(name: str) -> None:
    model = _build(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 298, 80))
        frames = model.forward_frames(torch.randn(1, 1, 101, 80))
    assert out.shape == (2, FULL_DIMS.get(name, model.embed_dim)) and torch.isfinite(out).all()
    assert frames.shape[0] == 1 and frames.shape[2] == model.embed_dim


@pytest.mark.slow
def test_sf_nfnet_f0_official_test_shape() -> None:
    model = _build("sf_nfnet_f0").eval()  # slowfast_nfnet_test.py: (2, 400, 128, 1) -> (2, 3456)
    with torch.no_grad():
        h_f, h_s = model.forward_maps(torch.rand(2, 1, 400, 128) * 2 - 1)
    assert h_f.shape == (2, 384, 100, 4) and h_s.shape == (2, 3072, 25, 4)
