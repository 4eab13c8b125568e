"""Slowfast NFNet against DeepMind's official model: golden outputs, parameter counts, block identities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hares.models import create_model, load_haiku
from hares.models.haiku import haiku_to_torch_name
from hares.models.layers import WSConv2d, avg_pool_same, max_pool_same, same_pads, sgelu
from hares.models.nfnet import NFBlock


def _count(name: str, **kw) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kw).parameters())


@pytest.fixture(scope="module")
def golden(shared_dir):
    path = shared_dir / "golden" / "sf_nfnet_tiny.npz"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return dict(np.load(path))


def test_golden_tiny_reproduces_official_outputs(golden) -> None:
    config = json.loads(bytes(golden["config_json"]).decode())
    model = create_model("sf_nfnet_tiny").eval()
    assert sum(p.numel() for p in model.parameters()) == config["num_params"] == 5_430_725
    load_haiku(model, {k: v for k, v in golden.items() if k.startswith("params/")})
    for i in range(3):
        x = torch.from_numpy(golden[f"input_{i}"])[:, None]  # (B, T, F) -> (B, 1, T, F)
        ref = torch.from_numpy(golden[f"output_{i}"])
        with torch.no_grad():
            out = model(x)
        assert out.shape == ref.shape == (2, 1152)
        rel = ((out - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-5, f"output_{i}: relative error {rel:.2e}"


def test_golden_variant_table_is_ours(golden) -> None:
    config = json.loads(bytes(golden["config_json"]).decode())
    # The official table as overrides builds the same network as our registered tiny variant.
    with torch.device("meta"):
        model = create_model("sf_nfnet_tiny")
        twin = create_model("sf_nfnet_f0", slow=config["pathways"]["tiny-slow"], fast=config["pathways"]["tiny-fast"])
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_f0_parameter_count_and_names_match_official(shared_dir) -> None:
    with torch.device("meta"):
        model = create_model("sf_nfnet_f0")
    assert sum(p.numel() for p in model.parameters()) == 62_970_654
    assert model.embed_dim == 3456
    assert (model.fast.out_ch, model.slow.out_ch) == (384, 3072)
    tsv = shared_dir / "golden" / "sf_nfnet_f0_params.tsv"
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:] if line.strip()]
    assert len(rows) == 474
    params = dict(model.named_parameters())
    for name, shape in rows:
        key = haiku_to_torch_name(name)
        hk_shape = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
        ours = tuple(params.pop(key).shape)
        if len(hk_shape) == 4:
            hk_shape = (hk_shape[3], hk_shape[2], hk_shape[0], hk_shape[1])
        elif len(hk_shape) == 2:
            hk_shape = hk_shape[::-1]
        assert ours == hk_shape, name
    assert not params, f"parameters without a Haiku twin: {list(params)[:5]}"


def test_f0_shapes_on_meta() -> None:
    with torch.device("meta"):
        model = create_model("sf_nfnet_f0").eval()
        h_f, h_s = model.forward_maps(torch.empty(2, 1, 400, 80))
        assert tuple(h_f.shape) == (2, 384, 100, 3) and tuple(h_s.shape) == (2, 3072, 25, 3)
        assert tuple(model(torch.empty(2, 1, 400, 128)).shape) == (2, 3456)


def test_skip_gain_zero_block_returns_shortcut() -> None:
    torch.manual_seed(0)
    model = create_model("sf_nfnet_micro").eval()
    for block in list(model.fast.blocks) + list(model.slow.blocks):
        assert block.skip_gain.item() == 0.0
    # An identity block (no projection): output == raw input.
    block = NFBlock(16, 16, use_projection=False, group_size=8, beta=0.9).eval()
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        assert torch.equal(block(x), x)
        # A projection block with a stride: output == conv_shortcut(avgpool(act(x) * beta)).
        block = NFBlock(16, 32, use_projection=True, group_size=8, stride=(1, 2), beta=0.9).eval()
        expected = block.conv_shortcut(avg_pool_same(sgelu(x) * 0.9, (1, 2), (1, 2)))
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-6)
        block.skip_gain.fill_(1.0)
        assert not torch.allclose(block(x), expected)


def test_same_padding_and_pools() -> None:
    assert same_pads((100, 80), (7, 1), (4, 1)) == [0, 0, 1, 2]
    assert same_pads((400, 80), (3, 3), (2, 2)) == [0, 1, 0, 1]
    x = torch.arange(10.0).view(1, 1, 10, 1)
    # SAME max-pool of 10 frames by 4: pad (1, 1) with -inf -> windows [-,0,1,2] [3..6] [7,8,9,-].
    assert max_pool_same(-x, (4, 1), (4, 1)).flatten().tolist() == [0.0, -3.0, -7.0]
    # SAME avg-pool counts only valid elements.
    assert avg_pool_same(x.view(1, 1, 1, 10)[..., :5], (1, 2), (1, 2)).flatten().tolist() == [0.5, 2.5, 4.0]


def test_wsconv_standardises_and_caches_in_eval() -> None:
    torch.manual_seed(0)
    conv = WSConv2d(4, 6, (3, 1), groups=2)
    w = conv.standardized_weight()
    fan_in = 2 * 3
    torch.testing.assert_close(w.mean(dim=(1, 2, 3)), torch.zeros(6), atol=1e-6, rtol=0)
    torch.testing.assert_close(w.var(dim=(1, 2, 3), correction=0) * fan_in, torch.ones(6), atol=1e-5, rtol=0)
    conv.eval()
    x = torch.randn(1, 4, 5, 3)
    with torch.no_grad():
        a = conv(x)
        conv.gain.mul_(2.0)  # an in-place change must invalidate the cached weight
        b = conv(x)
        conv.weight.data.mul_(-1.0)  # `.data` writes (EMA updates) do not bump the version counter
        c = conv(x)
    torch.testing.assert_close(b - conv.bias.view(1, -1, 1, 1), 2 * (a - conv.bias.view(1, -1, 1, 1)))
    torch.testing.assert_close(c - conv.bias.view(1, -1, 1, 1), -(b - conv.bias.view(1, -1, 1, 1)))


def test_stochastic_depth_only_in_training() -> None:
    torch.manual_seed(0)
    model = create_model("sf_nfnet_micro", stochdepth_rate=0.9)
    for b in list(model.fast.blocks) + list(model.slow.blocks):
        b.skip_gain.data.fill_(1.0)
    x = torch.randn(4, 1, 64, 40)
    model.train()
    with torch.no_grad():
        train_outs = [model(x) for _ in range(3)]
    assert not all(torch.equal(train_outs[0], o) for o in train_outs[1:])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_overrides_build_other_sizes() -> None:
    n = _count("sf_nfnet_micro", slow={"depth": [1, 1, 2, 1]}, fast={"depth": [1, 1, 2, 1]})
    assert n > _count("sf_nfnet_micro")
    with pytest.raises(KeyError, match="unknown key"):
        create_model("sf_nfnet_micro", slow={"widths": [1]})
    with pytest.raises(ValueError, match="depths must match"):
        create_model("sf_nfnet_micro", slow={"depth": [1, 1, 2, 1]})


def test_load_haiku_accepts_nested_params_and_rejects_misfits(golden) -> None:
    flat = {k.removeprefix("params/"): v for k, v in golden.items() if k.startswith("params/")}
    nested: dict[str, dict] = {}
    for name, value in flat.items():
        module, param = name.rsplit("/", 1)
        nested.setdefault(module, {})[param] = value  # Haiku's own {module: {param: array}} layout
    a = load_haiku(create_model("sf_nfnet_tiny"), flat).state_dict()
    b = load_haiku(create_model("sf_nfnet_tiny"), nested).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    w = flat["slow_fast_nf_net/~/NFNet_1/~/nf_block_3/~/conv1b/w"]  # HWIO (1, 3, 64, 64) -> OIHW
    torch.testing.assert_close(
        a["slow.blocks.3.conv1b.weight"], torch.from_numpy(w.astype(np.float32)).permute(3, 2, 0, 1)
    )
    with pytest.raises(ValueError, match="mis-shaped"):
        load_haiku(create_model("sf_nfnet_micro"), flat)
    with pytest.raises(KeyError, match="not a Slowfast NFNet parameter"):
        load_haiku(create_model("sf_nfnet_micro"), {"resnet/~/conv/w": w})
