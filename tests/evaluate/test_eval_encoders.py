"""The evaluation encoder contract: spec options, native waveform networks, fingerprints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hares.evaluate.encoders import EvalEncoder, load_encoder, parse_encoder_arg, split_options
from hares.models import MODELS, register_model


class WaveNet(nn.Module):
    """A native waveform network: (B, N) -> (B, 4)."""

    input_kind = "waveform"

    def __init__(self) -> None:
        super().__init__()
        self.embed_dim = 4
        self.conv = nn.Conv1d(1, 4, 160, stride=160)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(wav[:, None])).mean(dim=2)  # (B, 4)


@pytest.fixture
def wave_net():
    def evaluate_test_wavenet(**overrides) -> nn.Module:
        return WaveNet(**overrides)

    register_model(evaluate_test_wavenet)
    yield "evaluate_test_wavenet"
    MODELS._items.pop("evaluate_test_wavenet", None)


def test_native_waveform_network_has_no_frontend(wave_net, tiny_net):
    enc = load_encoder(f"random:{wave_net}")
    assert isinstance(enc, EvalEncoder) and enc.frontend is None and enc.info.input_kind == "waveform"
    wav = torch.randn(2, 4000)
    torch.testing.assert_close(enc(wav), enc.network(wav))
    with pytest.raises(TypeError, match="waveform"):
        enc.embed_logmel(torch.zeros(2, 1, 20, 80))
    mel = load_encoder(f"random:{tiny_net}")
    assert mel.frontend is not None and mel.info.input_kind == "logmel"
    torch.testing.assert_close(mel(wav), mel.embed_logmel(mel.frontend(wav)))


def test_spec_options_and_labels():
    assert split_options("random:net@3@layers=all") == ("random:net@3", {"layers": "all"})
    assert split_options("hf:/m/w2v@layer=4") == ("hf:/m/w2v", {"layer": "4"})
    with pytest.raises(ValueError, match="KEY=VALUE options last"):
        split_options("random:net@layers=all@3")
    assert parse_encoder_arg("hf:/models/wav2vec2-base@layer=4") == (
        "hf:wav2vec2-base@layer=4",
        "hf:/models/wav2vec2-base@layer=4",
    )
    assert parse_encoder_arg("w=hf:/m/x") == ("w", "hf:/m/x")
    assert parse_encoder_arg("random:net@layers=all") == ("random:net@layers=all", "random:net@layers=all")
    assert parse_encoder_arg("hear:mymod:/w/model.pt") == ("hear:mymod", "hear:mymod:/w/model.pt")
    with pytest.raises(ValueError, match="unknown option"):
        load_encoder("logmel@layer=3")


def test_native_encoders_give_frames_with_their_centre_times():
    enc = load_encoder("random:sf_nfnet_micro")
    frames, times = enc.forward_frames(torch.randn(2, 16000))
    assert frames.shape == (2, len(times), enc.embed_dim) and frames.dtype == torch.float32
    assert float(times[0]) == 27.5 and torch.allclose(torch.diff(times), torch.full_like(times[1:], 40.0))
    assert float(times[-1]) <= 1000


def test_cli_checkpoint_precheck_leaves_external_specs_to_their_loaders():
    from hares.evaluate.cli import _check_checkpoints

    _check_checkpoints(["hear:hares.hear:runs/x/encoder.safetensors", "w=hf:/m/w2v@layers=all", "py:a.py:make"])
    with pytest.raises(FileNotFoundError):
        _check_checkpoints(["sf_nfnet_micro:/no/such/encoder.safetensors"])
