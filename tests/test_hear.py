"""hares.hear: hares checkpoints under the HEAR 2021 API rules (as hear-validator checks them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hares.hear as hear
from hares.data.manifest import Clip
from hares.evaluate.embed import extract
from hares.evaluate.encoders import load_encoder
from hares.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "encoder.safetensors"
    save_checkpoint(create_model("sf_nfnet_micro"), path)
    return path


def check_hear_rules(model, seconds: float, n: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The checks of hear-validator (hearvalidator/validate.py), plus timestamps within the clip."""
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16000, 22050, 32000, 44100, 48000)
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    audio = torch.rand(n, int(seconds * model.sample_rate)) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.dtype == torch.float32 and emb.shape[0] == n and emb.shape[:2] == ts.shape
    assert emb.shape[2] == model.timestamp_embedding_size
    diff = torch.diff(ts)
    assert torch.all(torch.abs(diff - diff.mean()) < 1e-3)  # regular spacing (validator: deviation < 1 ms)
    assert ts.min() >= 0 and ts.max() <= seconds * 1000  # within the clip
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.dtype == torch.float32 and scene.shape == (n, model.scene_embedding_size)
    return audio, emb, ts


@pytest.mark.parametrize("seconds", [0.5, 3.74])
def test_checkpoint_follows_the_hear_api(checkpoint, seconds):
    model = hear.load_model(str(checkpoint))
    assert model.sample_rate == 16000 and model.scene_embedding_size == 320 == model.timestamp_embedding_size
    _, emb, ts = check_hear_rules(model, seconds, n=2)
    assert abs(float(torch.diff(ts).mean()) - 40.0) < 1e-6  # NFNet's fast pathway: 4 log-mel frames of 10 ms
    assert emb.shape[1] == int((seconds * 1000 - 27.5) // 40) + 1  # every frame whose centre lies in the clip


def test_scene_embeddings_are_what_hares_eval_caches(tmp_path):
    import soundfile as sf

    torch.manual_seed(0)
    checkpoint = tmp_path / "cnn.safetensors"
    save_checkpoint(create_model("cnn14_tiny"), checkpoint)

    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((2, 16000 * 11))).astype(np.float32)  # 11 s: two windows
    clips = []
    for i, a in enumerate(audio):
        sf.write(tmp_path / f"c{i}.wav", a, 16000, subtype="FLOAT")
        clips.append(Clip(str(tmp_path / f"c{i}.wav"), ("x",), "train"))
    cache = extract(load_encoder(str(checkpoint)), clips, tmp_path / "cache", num_workers=0, progress=False)
    model = hear.load_model(str(checkpoint))
    scene = hear.get_scene_embeddings(torch.from_numpy(audio), model).numpy()
    np.testing.assert_allclose(scene, cache.take([0, 1]).astype(np.float32), rtol=5e-3, atol=5e-3)


def test_long_clips_logmel_and_other_networks():
    model = hear.load_model("logmel")
    _, emb, ts = check_hear_rules(model, 12.0)  # two windows: stamps stay regular across the boundary
    assert emb.shape[2] == 80 and abs(float(torch.diff(ts).mean()) - 10.0) < 1e-6 and float(ts[0, 0]) == 12.5
    assert emb.shape[1] == 1 + (192000 - 400) // 160  # every log-mel frame inside the 12 s clip
    _, emb, ts = check_hear_rules(hear.load_model("random:cnn14_tiny"), 12.0, n=1)
    assert abs(float(torch.diff(ts).mean()) - 320.0) < 1e-6  # CNN14: 32 log-mel frames per frame
    check_hear_rules(hear.load_model("random:vit_tiny"), 1.3, n=2)
    with pytest.raises(ValueError, match="needs a hares checkpoint"):
        hear.load_model()


def test_round_trip_through_hear_colon_equals_the_native_encoder(checkpoint, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(1)
    clips = []
    for i, seconds in enumerate((0.7, 1.3)):
        sf.write(tmp_path / f"r{i}.wav", (0.2 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        clips.append(Clip(str(tmp_path / f"r{i}.wav"), ("x",), "train"))
    kw = {"num_workers": 0, "progress": False}
    native = extract(load_encoder(str(checkpoint)), clips, tmp_path / "cache", **kw)
    via = load_encoder(f"hear:hares.hear:{checkpoint}")  # hares' HEAR export read back by the hear: importer
    assert via.info.kind == "hear" and via.info.fingerprint() != load_encoder(str(checkpoint)).info.fingerprint()
    hear_cache = extract(via, clips, tmp_path / "cache", **kw)
    assert hear_cache.key != native.key
    np.testing.assert_allclose(hear_cache.take([0, 1]), native.take([0, 1]), rtol=2e-3, atol=2e-3)
