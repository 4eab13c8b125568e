"""Embedding extraction: clip policy, batching invariance, the content-addressed cache, resume, bad audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _eval_helpers import write_tone

from hares.audio import LogMel
from hares.data.manifest import Clip
from hares.evaluate.embed import ClipPolicy, EmbeddingCache, extract
from hares.evaluate.encoders import load_encoder, parse_encoder_arg
from hares.models import create_model, save_checkpoint


def _clips(root: Path, seconds: list[float]) -> list[Clip]:
    return [
        Clip(str(write_tone(root / f"c{i}.wav", 300 + 100 * i, s, seed=i)), ("a",), "train")
        for i, s in enumerate(seconds)
    ]


class Counting(torch.nn.Module):
    """Wraps an encoder; counts windows embedded and can fail after `fail_after` batches (a simulated crash)."""

    def __init__(self, encoder, fail_after: int | None = None) -> None:
        super().__init__()
        self.encoder, self.frontend, self.info, self.embed_dim = (
            encoder,
            encoder.frontend,
            encoder.info,
            encoder.embed_dim,
        )
        self.windows, self.batches, self.fail_after = 0, 0, fail_after

    def _count(self, n: int) -> None:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.batches += 1
        self.windows += n

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        self._count(wav.shape[0])
        return self.encoder(wav)

    def embed_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        self._count(logmel.shape[0])
        return self.encoder.embed_logmel(logmel)


def test_logmel_encoder_is_mean_and_std_of_the_logmel(tmp_path):
    clips = _clips(tmp_path, [0.7])
    cache = extract(load_encoder("logmel"), clips, tmp_path / "cache", num_workers=0, progress=False)
    mel = LogMel()(torch.from_numpy(sf.read(clips[0].path, dtype="float32")[0]))[0, 0]  # (T, 80)
    expected = torch.cat([mel.mean(0), mel.std(0, unbiased=False)]).numpy()
    got = cache.take([0])[0].astype(np.float32)
    assert got.shape == (160,)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)  # float16 storage


def test_batching_never_mixes_clips_and_long_clips_average_windows(tmp_path, tiny_net):
    seconds = [0.5, 0.5031, 1.2, 0.9, 21.0, 0.2]  # 0.5 and 0.5031 s share a frame count; 21 s -> 3 windows
    seconds += [0.3 + 0.07 * i for i in range(8)]  # many lengths: more than 4 batches pending -> early flushes
    clips = _clips(tmp_path, seconds)
    enc = load_encoder(f"random:{tiny_net}")
    batched = extract(enc, clips, tmp_path / "a", batch_size=2, num_workers=0, progress=False)
    for i, clip in enumerate(clips):
        alone = extract(enc, [clip], tmp_path / f"b{i}", batch_size=1, num_workers=0, progress=False)
        # equal up to float16 storage (kernels may differ by batch size); padding would change far more
        np.testing.assert_allclose(batched.take([i]).astype(np.float32), alone.take([0]).astype(np.float32), rtol=2e-3)
    short = torch.from_numpy(sf.read(clips[0].path, dtype="float32")[0])
    padded = enc(torch.nn.functional.pad(short, (0, 8000))[None])[0].numpy()  # what padding in a batch would give
    assert not np.allclose(batched.take([0])[0].astype(np.float32), padded, rtol=2e-3)
    wav = torch.from_numpy(sf.read(clips[4].path, dtype="float32")[0])
    win = int(10.24 * 16000)
    parts = [wav[:win], wav[win : 2 * win], wav[2 * win :]]  # 0.52 s last window: padded to 1 s
    parts[2] = torch.nn.functional.pad(parts[2], (0, 16000 - parts[2].shape[0]))
    expected = torch.stack([enc(p[None])[0] for p in parts]).mean(0).numpy()
    np.testing.assert_allclose(batched.take([4])[0].astype(np.float32), expected, rtol=3e-3, atol=3e-3)


def test_cache_is_reused_and_invalidated_when_weights_change(tmp_path, tiny_net):
    clips = _clips(tmp_path, [0.4, 0.6, 0.8])
    net = create_model(tiny_net)
    ckpt = tmp_path / "w.safetensors"
    save_checkpoint(net, ckpt)
    first = Counting(load_encoder(f"{tiny_net}:{ckpt}"))
    a = extract(first, clips, tmp_path / "cache", num_workers=0, progress=False)
    again = Counting(load_encoder(f"{tiny_net}:{ckpt}"))
    b = extract(again, clips, tmp_path / "cache", num_workers=0, progress=False)
    assert again.windows == 0 and a.key == b.key  # same weights: nothing recomputed

    with torch.no_grad():
        net.conv.weight.mul_(1.01)  # a new checkpoint with other weights at the same path
    save_checkpoint(net, ckpt)
    changed = Counting(load_encoder(f"{tiny_net}:{ckpt}"))
    c = extract(changed, clips, tmp_path / "cache", num_workers=0, progress=False)
    assert changed.windows == 3 and c.key != a.key
    assert not np.array_equal(a.take([0, 1, 2]), c.take([0, 1, 2]))
    # the key also covers the clip policy and the manifest
    other_policy = extract(load_encoder(f"{tiny_net}:{ckpt}"), clips, tmp_path / "cache", ClipPolicy(window_s=5.0),
                           num_workers=0, progress=False)  # fmt: skip
    other_clips = extract(load_encoder(f"{tiny_net}:{ckpt}"), clips[:2], tmp_path / "cache", num_workers=0,
                          progress=False)  # fmt: skip
    assert len({c.key, other_policy.key, other_clips.key}) == 3


def test_resume_after_a_crash_recomputes_only_unfinished_shards(tmp_path):
    clips = _clips(tmp_path, [0.3 + 0.05 * i for i in range(10)])
    crashing = Counting(load_encoder("logmel"), fail_after=5)  # batch 1, shards of 2: crash in shard 3
    with pytest.raises(KeyboardInterrupt):
        extract(crashing, clips, tmp_path / "cache", batch_size=1, shard_size=2, num_workers=0, progress=False)
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.name != "orders"]  # orders/: shared by encoders
    assert not (entry / ".done").exists()
    assert sorted(p.name for p in entry.glob("shard-*.json")) == ["shard-00000.json", "shard-00001.json"]
    assert not list(entry.glob(".*.tmp"))  # nothing half-written left under any name
    with pytest.raises(FileNotFoundError, match="incomplete"):
        EmbeddingCache(entry)

    resumed = Counting(load_encoder("logmel"))
    cache = extract(resumed, clips, tmp_path / "cache", batch_size=1, shard_size=2, num_workers=0, progress=False)
    assert resumed.windows == 6  # the 4 clips of the 2 finished shards are not recomputed
    fresh = extract(load_encoder("logmel"), clips, tmp_path / "fresh", num_workers=0, progress=False)
    np.testing.assert_array_equal(cache.take(range(10)), fresh.take(range(10)))
    assert all(isinstance(s, np.memmap) for s in cache.shards) and cache.shards[0].dtype == np.float16


def test_corrupt_and_missing_audio_is_skipped_and_listed(tmp_path):
    clips = _clips(tmp_path, [0.5, 0.6])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk" * 10)
    clips += [Clip(str(broken), ("a",), "train"), Clip(str(tmp_path / "gone.wav"), ("a",), "train")]
    cache = extract(load_encoder("logmel"), clips, tmp_path / "cache", num_workers=1, progress=False)
    assert sorted(cache.bad) == [2, 3]
    assert "broken.wav" in cache.bad[2] and "gone.wav" in cache.bad[3]
    assert np.abs(cache.take([0, 1]).astype(np.float32)).sum() > 0
    done = json.loads((cache.path / ".done").read_text())
    assert len(done["bad"]) == 2


def test_encoder_specs(tmp_path, tiny_net):
    assert parse_encoder_arg("simclr=x:y.safetensors") == ("simclr", "x:y.safetensors")
    a, b = load_encoder(f"random:{tiny_net}"), load_encoder(f"random:{tiny_net}")
    c = load_encoder(f"r7=random:{tiny_net}@7")
    assert a.info.seed == 0 and c.info.seed == 7 and c.info.label == "r7"
    assert a.info.weights_hash == b.info.weights_hash != c.info.weights_hash  # seeded, reproducible
    with pytest.raises(ValueError, match="random:"):
        load_encoder(tiny_net)
    with pytest.raises(ValueError, match="unknown network"):
        load_encoder("random:no_such_net")


def test_ranks_write_their_own_shards(tmp_path):
    clips = _clips(tmp_path, [0.3 + 0.1 * i for i in range(5)])
    kw = {"batch_size": 2, "shard_size": 2, "num_workers": 0, "progress": False}
    with pytest.raises(RuntimeError, match="other ranks"):
        extract(load_encoder("logmel"), clips, tmp_path / "cache", rank=1, world_size=2, **kw)  # shard 1 only
    rank0 = Counting(load_encoder("logmel"))
    cache = extract(rank0, clips, tmp_path / "cache", rank=0, world_size=2, **kw)  # shards 0 and 2
    assert rank0.windows == 3
    single = extract(load_encoder("logmel"), clips, tmp_path / "single", **kw)
    np.testing.assert_array_equal(cache.take(range(5)), single.take(range(5)))


def test_reduced_precision_is_an_option_in_the_cache_key(tmp_path, tiny_net):
    clips = _clips(tmp_path, [0.5, 0.9, 1.3])
    enc = load_encoder(f"random:{tiny_net}")
    kw = {"num_workers": 0, "progress": False}
    full = extract(enc, clips, tmp_path / "cache", **kw)
    half = extract(enc, clips, tmp_path / "cache", precision="bf16", **kw)
    assert full.key != half.key and half.meta["precision"] == "bf16" and full.meta["precision"] == "fp32"
    a, b = full.take(range(3)).astype(np.float32), half.take(range(3)).astype(np.float32)
    assert not np.array_equal(a, b)  # bf16 autocast really ran the network in bf16
    np.testing.assert_allclose(b, a, rtol=0.05, atol=0.02)  # ... and stays close to fp32
    with pytest.raises(ValueError, match="precision 'int8'"):
        extract(enc, clips, tmp_path / "cache", precision="int8", **kw)


def test_waveform_encoder_gets_waveforms_on_cpu(tmp_path):
    """Contract I1: an encoder without a frontend is called on waveforms, never through `embed_logmel`."""

    class Rms(torch.nn.Module):
        frontend, embed_dim = None, 1
        info = load_encoder("logmel").info

        def forward(self, wav: torch.Tensor) -> torch.Tensor:
            assert wav.ndim == 2  # (B, N)
            return wav.square().mean(dim=1, keepdim=True).sqrt()

    clips = _clips(tmp_path, [0.5, 0.8])
    cache = extract(Rms(), clips, tmp_path / "cache", num_workers=1, progress=False)
    for i, clip in enumerate(clips):
        wav = sf.read(clip.path, dtype="float32")[0]
        assert cache.take([i])[0, 0] == pytest.approx(
            np.sqrt(np.mean(wav[: len(wav) - (len(wav) - 400) % 160] ** 2)), rel=2e-3
        )


def test_device_path_equals_the_worker_frontend_path(tmp_path, tiny_net, monkeypatch):
    """The GPU data flow (workers send waveforms, the encoder runs frontend + network, embeddings collected one
    batch late), exercised on CPU: same embeddings as log-mels computed in the workers."""
    clips = _clips(tmp_path, [0.4, 0.4, 0.4, 0.9, 1.3, 21.0])
    enc = load_encoder(f"random:{tiny_net}")
    kw = {"batch_size": 2, "num_workers": 1, "progress": False}
    workers = extract(Counting(enc), clips, tmp_path / "a", **kw)
    monkeypatch.setattr("hares.evaluate.embed._frontend_in_workers", lambda encoder, device: False)
    calls = []

    class Waveforms(Counting):
        def forward(self, wav):
            calls.append(tuple(wav.shape))
            return super().forward(wav)

    counting = Waveforms(enc)
    device_path = extract(counting, clips, tmp_path / "b", **kw)
    assert counting.windows == 8  # forward(wav) on every window: 5 short clips + 3 windows of the 21 s clip
    assert sum(b for b, _ in calls) == 8 and all(len(c) == 2 for c in calls)  # (B, N) waveforms, never log-mels
    np.testing.assert_allclose(device_path.take(range(6)).astype(np.float32),
                               workers.take(range(6)).astype(np.float32), rtol=2e-3, atol=1e-3)  # fmt: skip
