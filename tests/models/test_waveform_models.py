"""The waveform networks (Bidir-CPC, wav2vec 2.0): parameter counts against the paper, the waveform contract,
checkpoints, and `hares eval` giving them waveforms (no log-mel frontend)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from hares.models import cpc, create_model, load_checkpoint, save_checkpoint

# wav2vec 2.0 is built on transformers (hares[hf]; hares[dev] installs it, so `make test` runs these)
needs_hf = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")
WAVEFORM = ["cpc_bidir_tiny", pytest.param("wav2vec2_tiny", marks=needs_hf)]


def _count(name: str, **kw) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kw).parameters())


def test_cpc_parameter_count_against_the_paper() -> None:
    # Table 2: Bidir-CPC 38m. Counted: conv encoder + forward and backward 4 x 768 LSTM stacks (no CPC heads).
    assert _count("cpc_bidir") == 37_375_872
    assert abs(_count("cpc_bidir") - 38e6) / 38e6 < 0.10
    assert _count("cpc_bidir", hidden=512) == 17_960_832  # the public scaling-contrastive 2 x 4 x 512 model


@needs_hf
def test_wav2vec2_parameter_count_against_the_paper() -> None:
    # Table 2: Wav2Vec2.0 95m = fairseq BASE = transformers' Wav2Vec2ForPreTraining with the same tensors.
    assert _count("wav2vec2_base") == 95_044_608
    assert abs(_count("wav2vec2_base") - 95e6) / 95e6 < 0.03


@needs_hf
def test_wav2vec2_base_has_fairseq_base_shapes() -> None:
    with torch.device("meta"):
        net = create_model("wav2vec2_base")
    c = net.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (768, 12, 12, 3072)
    assert (c.num_codevector_groups, c.num_codevectors_per_group, c.proj_codevector_dim) == (2, 320, 256)
    assert c.feat_extract_norm == "group" and not c.conv_bias and c.layerdrop == 0.05
    assert c.mask_time_prob == 0.0  # transformers never draws masks itself; the objective does
    assert net.embed_dim == 768 and net.hf.wav2vec2.masked_spec_embed.shape == (768,)


@pytest.mark.parametrize("name", WAVEFORM)
def test_waveform_networks_take_any_length(name: str) -> None:
    torch.manual_seed(0)
    net = create_model(name).eval()
    assert type(net).input_kind == "waveform"
    with torch.no_grad():
        for n in (200, 16000, 16000 * 3 + 17):  # shorter than one frame is padded to one frame
            out = net(0.1 * torch.randn(2, n))
            assert out.shape == (2, net.embed_dim) and torch.isfinite(out).all()
        frames = net.forward_frames(0.1 * torch.randn(1, 16000))
        layers = net.forward_layers(0.1 * torch.randn(1, 16000))
    assert frames.shape[0] == 1 and frames.shape[2] == net.embed_dim
    assert frames.shape[1] == (100 if name.startswith("cpc") else 49)  # CPC: 10 ms frames, wav2vec 2.0: 20 ms
    assert all(v.shape[0] == 1 for _, v in layers) and len({name for name, _ in layers}) == len(layers)


def test_cpc_context_is_forward_and_backward() -> None:
    """The forward half of a frame's context ignores later frames, the backward half ignores earlier ones."""
    torch.manual_seed(0)
    net = create_model("cpc_bidir_tiny").eval()
    z = torch.randn(1, 20, net.frame_dim)
    z2 = z.clone()
    z2[:, 10:] += 1.0  # change the future of frame 9
    with torch.no_grad():
        (f1, b1), (f2, b2) = net.context(z), net.context(z2)
    assert torch.equal(f1[:, :10], f2[:, :10]) and not torch.allclose(f1[:, 10:], f2[:, 10:])
    assert not torch.allclose(b1[:, :10], b2[:, :10])
    last = net.forward_layers(0.1 * torch.randn(1, 8000))
    assert [n for n, _ in last] == ["encoder", "context1"]


def test_cpc_frame_rate() -> None:
    assert cpc.HOP == 160
    net = create_model("cpc_bidir").encoder
    with torch.no_grad():
        assert net(torch.zeros(1, 20480)).shape == (1, 128, 512)  # CPC_audio's 20480-sample window, 10 ms frames
        assert net(torch.zeros(1, 20481)).shape == (1, 129, 512)  # "same" padding: ceil(N / 160)
    twenty = create_model("cpc_bidir_tiny", encoder={"strides": [5, 4, 2, 2, 2, 2], "groups": 8}).encoder
    assert twenty(torch.zeros(1, 16000)).shape[1] == 50


@pytest.mark.parametrize("name", WAVEFORM)
def test_eval_is_deterministic_and_batch_independent(name: str) -> None:
    torch.manual_seed(0)
    net = create_model(name).eval()
    x = 0.1 * torch.randn(3, 8000)
    with torch.no_grad():
        a, b, single = net(x), net(x), net(x[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", WAVEFORM)
def test_checkpoint_roundtrip_and_hares_eval_gets_waveforms(tmp_path, name: str) -> None:
    from hares.evaluate.encoders import load_encoder

    torch.manual_seed(3)
    net = create_model(name).eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(net, path)
    back = load_checkpoint(path).eval()
    x = 0.1 * torch.randn(2, 12000)
    with torch.no_grad():
        assert torch.equal(net(x), back(x))
    enc = load_encoder(str(path))
    assert enc.frontend is None and enc.embed_dim == net.embed_dim  # a waveform network: no log-mel frontend
    torch.testing.assert_close(enc(x), net(x).float())
    assert load_encoder(f"random:{name}").frontend is None


@pytest.mark.parametrize(
    "name, layers",
    [
        ("cpc_bidir_tiny", ["encoder", "context1"]),
        pytest.param("wav2vec2_tiny", ["layer0", "layer1", "layer2"], marks=needs_hf),
    ],
)
def test_per_layer_evaluation(name: str, layers: list[str]) -> None:
    """`@layers=all`: every stage time-averaged, the last one the usual embedding (context / last layer)."""
    from hares.evaluate.encoders import load_encoder

    enc = load_encoder(f"random:{name}@layers=all")
    assert enc.frontend is None and [n for n, _ in enc.layers] == layers
    x = 0.1 * torch.randn(2, 8000)
    out = enc(x)
    last = enc.layers[-1][1]
    torch.testing.assert_close(out[:, last], load_encoder(f"random:{name}")(x))
