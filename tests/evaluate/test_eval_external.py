"""External encoders: HEAR 2021 modules (and ones breaking each rule), Hugging Face models offline, py: factories."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _eval_helpers import write_tone

from hares.data.manifest import Clip
from hares.evaluate.embed import cache_key, extract
from hares.evaluate.encoders import EvalEncoder, load_encoder
from hares.evaluate.external import EncoderContractError

HEAR_MODULE = '''
"""A tiny HEAR 2021 module for the tests: four waveform statistics through a linear layer."""
import torch
from torch import nn


class Model(nn.Module):
    sample_rate = SAMPLE_RATE
    scene_embedding_size = 6
    timestamp_embedding_size = 6

    def __init__(self, scale):
        super().__init__()
        self.proj = nn.Linear(4, 6)
        with torch.no_grad():
            self.proj.weight.mul_(scale)
        self.seen = []


def load_model(model_file_path=""):
    return Model(float(open(model_file_path).read()) if model_file_path else 1.0)


def _stats(audio):
    zcr = (audio[:, 1:] * audio[:, :-1] < 0).float().mean(1)
    return torch.stack([audio.mean(1), audio.std(1), audio.abs().amax(1), zcr], 1)


def get_scene_embeddings(audio, model):
    model.seen.append(tuple(audio.shape))
    emb = model.proj(_stats(audio))
    return RETURN


def get_timestamp_embeddings(audio, model):
    frames = audio.unfold(1, 400, 160)  # (n, T, 400)
    emb = model.proj(_stats(frames.reshape(-1, 400))).reshape(audio.shape[0], -1, 6)
    ts = (torch.arange(frames.shape[1]) * 160 + 200) / model.sample_rate * 1000
    return emb, ts.expand(audio.shape[0], -1)
'''


def write_hear_module(root: Path, name: str, rate: int = 16000, ret: str = "emb", edit=None) -> str:
    text = HEAR_MODULE.replace("SAMPLE_RATE", str(rate)).replace("RETURN", ret)
    if edit:
        text = edit(text)
    (root / f"{name}.py").write_text(text)
    return name


@pytest.fixture
def hear_dir(tmp_path, monkeypatch):
    root = tmp_path / "hear_modules"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("hear_t_"):
            del sys.modules[name]


def test_hear_module_is_resampled_batched_and_used_as_is(hear_dir):
    name = write_hear_module(hear_dir, "hear_t_48k", rate=48000)
    enc = load_encoder(f"hear:{name}")
    assert isinstance(enc, EvalEncoder) and enc.frontend is None and enc.embed_dim == 6
    wav = torch.from_numpy(np.random.default_rng(1).uniform(-0.5, 0.5, (3, 8000)).astype(np.float32))
    emb = enc(wav)
    assert emb.shape == (3, 6) and emb.dtype == torch.float32
    assert enc.model.seen[-1] == (3, 24000)  # 16 kHz windows resampled (soxr) to the module's 48 kHz
    assert enc.info.kind == "hear" and enc.info.module == name and enc.info.options["sample_rate"] == 48000
    assert enc.info.input_kind == "waveform" and enc.info.files  # the module's source is hashed


def test_hear_cache_key_follows_the_weights_file(hear_dir, tmp_path):
    name = write_hear_module(hear_dir, "hear_t_weights")
    weights = tmp_path / "w.txt"
    weights.write_text("1.0")
    a = load_encoder(f"hear:{name}:{weights}").info.fingerprint()
    assert load_encoder(f"hear:{name}:{weights}").info.fingerprint() == a
    weights.write_text("2.0")  # a retrained model: same module, same path
    assert load_encoder(f"hear:{name}:{weights}").info.fingerprint() != a
    assert load_encoder(f"hear:{name}").info.fingerprint() != a


@pytest.mark.parametrize(
    ("case", "kw", "match"),
    [
        ("missing", {"edit": lambda t: t.replace("def get_timestamp_embeddings", "def _x")}, "get_timestamp_emb"),
        ("rate", {"rate": 8000}, "sample_rate 8000 is not one of"),
        (
            "size",
            {"edit": lambda t: t.replace("scene_embedding_size = 6", "scene_embedding_size = 6.0")},
            "scene_embedding_size must be a positive int",
        ),
        (
            "noattr",
            {"edit": lambda t: t.replace("    timestamp_embedding_size = 6\n", "")},
            "timestamp_embedding_size must be",
        ),
        ("shape", {"ret": "emb[:, :5]"}, r"returned shape \(2, 5\).*scene_embedding_size"),
        ("dtype", {"ret": "emb.double()"}, "float64; the HEAR API requires float32"),
        ("type", {"ret": "emb.tolist()"}, "returned list"),
        (
            "load",
            {"edit": lambda t: t.replace("return Model(", "raise RuntimeError('no GPU'); return Model(")},
            "load_model.*no GPU",
        ),
        ("import", {"edit": lambda t: "import no_such_dependency_xyz\n" + t}, "cannot import.*no_such_dependency"),
    ],
)
def test_hear_modules_breaking_a_rule_fail_clearly(hear_dir, case, kw, match):
    name = write_hear_module(hear_dir, f"hear_t_bad_{case}", **kw)
    with pytest.raises(EncoderContractError, match=match):
        load_encoder(f"hear:{name}")


def test_hear_errors_for_missing_modules_and_weights(hear_dir, tmp_path):
    with pytest.raises(EncoderContractError, match="cannot import 'hear_t_nothing'"):
        load_encoder("hear:hear_t_nothing")
    name = write_hear_module(hear_dir, "hear_t_noweights")
    with pytest.raises(FileNotFoundError, match="weights .* not found"):
        load_encoder(f"hear:{name}:{tmp_path / 'absent.pt'}")
    with pytest.raises(ValueError, match="takes no @options"):
        load_encoder(f"hear:{name}@layers=all")


PY_FACTORY = '''
import torch
from torch import nn


class Frames(nn.Module):
    """(B, N) -> (B, T, 5): framed waveform through a random linear layer."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(160, 5)

    def forward(self, wav):
        return self.lin(wav.unfold(1, 160, 160))


def make():
    return Frames()


def not_a_module():
    return "hello"
'''


def test_py_factory_from_a_file(tmp_path):
    path = tmp_path / "my_encoder.py"
    path.write_text(PY_FACTORY)
    enc = load_encoder(f"py:{path}:make")
    assert enc.embed_dim == 5 and enc.frontend is None
    wav = torch.randn(2, 3200)
    expected = enc.model.lin(wav.unfold(1, 160, 160)).mean(1)  # (B, T, D) is averaged over T
    torch.testing.assert_close(enc(wav), expected)
    again = load_encoder(f"py:{path}:make")
    assert again.info.fingerprint() == enc.info.fingerprint()  # seeded factory: reproducible random weights
    path.write_text(PY_FACTORY.replace("160, 5", "160, 5, bias=False"))
    assert load_encoder(f"py:{path}:make").info.fingerprint() != enc.info.fingerprint()
    with pytest.raises(EncoderContractError, match="not a torch.nn.Module"):
        load_encoder(f"py:{path}:not_a_module")
    with pytest.raises(EncoderContractError, match="no callable 'absent'"):
        load_encoder(f"py:{path}:absent")
    with pytest.raises(ValueError, match="py:MODULE:FACTORY"):
        load_encoder("py:justonething")


def test_hear_encoder_through_the_cached_pipeline(hear_dir, tmp_path):
    name = write_hear_module(hear_dir, "hear_t_pipe", rate=22050)
    clips = [Clip(str(write_tone(tmp_path / f"c{i}.wav", 300 + 200 * i, 0.4 + 0.3 * i)), ("a",), "train")
             for i in range(3)]  # fmt: skip
    enc = load_encoder(f"hear:{name}")
    cache = extract(enc, clips, tmp_path / "cache", batch_size=2, num_workers=0, progress=False)
    one = [enc(torch.from_numpy(_window(c.path))[None]) for c in clips]  # each clip alone
    np.testing.assert_allclose(cache.take([0, 1, 2]).astype(np.float32), torch.cat(one).numpy(), rtol=2e-3, atol=2e-3)


def _window(path: str) -> np.ndarray:
    from hares.audio import load_audio
    from hares.evaluate.embed import frame_exact

    return frame_exact(load_audio(path))


# ---- Hugging Face: a tiny random wav2vec 2.0 written with save_pretrained, loaded offline


@pytest.fixture(scope="module")
def tiny_w2v(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("w2v")
    torch.manual_seed(3)
    transformers.Wav2Vec2Model(cfg).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(folder)
    return folder


def test_hf_wav2vec2_offline_matches_the_model_called_directly(tiny_w2v, monkeypatch):
    from transformers import Wav2Vec2Model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = load_encoder(f"hf:{tiny_w2v}")
    assert enc.embed_dim == 32 and enc.frontend is None and enc.info.label == f"hf:{tiny_w2v.name}"
    wav = torch.randn(3, 8000)
    model = Wav2Vec2Model.from_pretrained(tiny_w2v, local_files_only=True).eval()
    norm = (wav - wav.mean(1, keepdim=True)) / torch.sqrt(wav.var(1, keepdim=True, unbiased=False) + 1e-7)
    with torch.no_grad():
        out = model(norm, output_hidden_states=True)
    torch.testing.assert_close(enc(wav), out.last_hidden_state.mean(1), rtol=1e-5, atol=1e-5)

    layer1 = load_encoder(f"hf:{tiny_w2v}@layer=1")
    torch.testing.assert_close(layer1(wav), out.hidden_states[1].mean(1), rtol=1e-5, atol=1e-5)
    every = load_encoder(f"hf:{tiny_w2v}@layers=all")
    assert [n for n, _ in every.layers] == ["layer0", "layer1", "layer2"] and every.embed_dim == 96
    torch.testing.assert_close(every(wav)[:, every.layers[1][1]], layer1(wav))
    keys = {e.info.fingerprint() for e in (enc, layer1, every)}
    assert len(keys) == 3
    with pytest.raises(ValueError, match="layer 7 outside 0..2"):
        load_encoder(f"hf:{tiny_w2v}@layer=7")


@pytest.mark.parametrize("changed", ["model.safetensors", "config.json", "preprocessor_config.json"])
def test_hf_cache_key_changes_when_any_file_changes(tiny_w2v, tmp_path, changed):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_w2v, folder)
    before = load_encoder(f"hf:{folder}").info.fingerprint()
    path = folder / changed
    if changed.endswith(".json"):
        path.write_text(path.read_text().rstrip() + "\n\n")  # same content to the loader, other bytes
    else:
        from safetensors.torch import load_file, save_file

        state = load_file(path)
        key = sorted(state)[0]
        state[key] = state[key] + 1e-3
        save_file(state, path, metadata={"format": "pt"})
    after = load_encoder(f"hf:{folder}").info.fingerprint()
    assert after != before
    from hares.evaluate.embed import ClipPolicy

    assert cache_key(after, ClipPolicy(), "m") != cache_key(before, ClipPolicy(), "m")


def test_hf_missing_model_fails_offline_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="offline"):
        load_encoder("hf:nobody/no-such-model-for-hares-tests")


@pytest.mark.parametrize("kind", ["whisper", "ast"])
def test_hf_whisper_encoder_and_ast(kind, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "whisper":  # the encoder of an encoder-decoder model; its extractor pads to 30 s
        cfg = transformers.WhisperConfig(
            d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=100, max_target_positions=8, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        )  # fmt: skip
        transformers.WhisperModel(cfg).save_pretrained(tmp_path)
        extractor = transformers.WhisperFeatureExtractor()
    else:
        cfg = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                     max_length=128, num_mel_bins=32)  # fmt: skip
        transformers.ASTModel(cfg).save_pretrained(tmp_path)
        extractor = transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=128)
    extractor.save_pretrained(tmp_path)
    enc = load_encoder(f"hf:{tmp_path}")
    wav = torch.randn(2, 16000)
    model = transformers.AutoModel.from_pretrained(tmp_path, local_files_only=True).eval()
    inputs = extractor(list(wav.numpy()), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        if kind == "whisper":  # 1 s = 100 mel frames = 50 encoder frames: the padding's frames are left out
            expected = model.get_encoder()(inputs["input_features"]).last_hidden_state[:, :50].mean(1)
        else:
            expected = model(**inputs).last_hidden_state.mean(1)
    assert enc.embed_dim == 16
    torch.testing.assert_close(enc(wav), expected, rtol=1e-5, atol=1e-5)
    if kind == "ast":  # a final norm after the hidden states: the per-layer set ends with the usual embedding
        every = load_encoder(f"hf:{tmp_path}@layers=all")
        assert [n for n, _ in every.layers] == ["layer0", "layer1", "last"]
        torch.testing.assert_close(every(wav)[:, every.layers[-1][1]], expected, rtol=1e-5, atol=1e-5)
