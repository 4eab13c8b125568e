"""The embedding cache follows the audio files (issue 15, failure 3): a changed file is re-embedded (with the few
shards it touches), unchanged shards are reused bit-exactly, a repaired bad file is no longer listed, and the
settings that change float results (batch size, device) are part of the key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from _eval_helpers import write_tone
from test_eval_embed import Counting, _clips

from hares.data.manifest import Clip
from hares.evaluate.embed import extract
from hares.evaluate.encoders import load_encoder

KW = dict(batch_size=2, shard_size=2, num_workers=0, progress=False)


def _entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name not in ("orders", "latest")]


def test_changed_audio_is_re_embedded_and_unchanged_shards_are_reused(tmp_path: Path, tiny_net) -> None:
    clips = _clips(tmp_path, [0.3 + 0.1 * i for i in range(6)])  # durations rise: order = manifest order
    enc = f"random:{tiny_net}"
    first = extract(load_encoder(enc), clips, tmp_path / "cache", **KW)
    before = first.take(range(6)).copy()
    stat = os.stat(clips[3].path)
    noise = np.random.default_rng(0).standard_normal(int(0.6 * 16000)).astype(np.float32) * 0.3
    sf.write(clips[3].path, noise, 16000)  # same name, same length, new content (a re-download, a fix)
    os.utime(clips[3].path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with size and mtime as before
    assert os.stat(clips[3].path).st_size == stat.st_size

    again = Counting(load_encoder(enc))
    second = extract(again, clips, tmp_path / "cache", **KW)
    assert again.windows == 2  # only the shard holding clip 3 (clips 2 and 3)
    assert second.key != first.key and not first.path.exists()  # the stale entry is gone
    assert _entries(tmp_path / "cache") == [second.path]
    after = second.take(range(6))
    assert np.array_equal(after[[0, 1, 2, 4, 5]], before[[0, 1, 2, 4, 5]])
    assert not np.array_equal(after[3], before[3])
    fresh = extract(load_encoder(enc), clips, tmp_path / "fresh", **KW)
    assert np.array_equal(fresh.take(range(6)), after)  # bit-identical to a cache built from scratch

    third = Counting(load_encoder(enc))
    assert extract(third, clips, tmp_path / "cache", **KW).key == second.key and third.windows == 0


def test_a_repaired_bad_file_is_no_longer_listed(tmp_path: Path) -> None:
    clips = _clips(tmp_path, [0.5, 0.6])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk" * 10)
    clips.append(Clip(str(broken), ("a",), "train"))
    assert sorted(extract(load_encoder("logmel"), clips, tmp_path / "cache", **KW).bad) == [2]
    write_tone(broken, 440.0, 0.7)
    cache = extract(load_encoder("logmel"), clips, tmp_path / "cache", **KW)
    assert cache.bad == {} and np.abs(cache.take([2]).astype(np.float32)).sum() > 0
    deleted = extract(load_encoder("logmel"), clips[:2] + [Clip(str(tmp_path / "gone.wav"), ("a",), "train")],
                      tmp_path / "cache", **KW)  # fmt: skip
    assert sorted(deleted.bad) == [2]


def test_batch_size_and_device_are_part_of_the_key(tmp_path: Path, tiny_net) -> None:
    clips = _clips(tmp_path, [0.4, 0.45, 0.5, 1.2])
    enc = load_encoder(f"random:{tiny_net}")
    one = extract(enc, clips, tmp_path / "cache", **{**KW, "batch_size": 1})
    four = extract(enc, clips, tmp_path / "cache", **{**KW, "batch_size": 4})
    assert one.key != four.key and len(_entries(tmp_path / "cache")) == 2
    meta = json.loads((four.path / "meta.json").read_text())
    assert meta["compute"] == {"batch_size": 4, "device": "cpu", "precision": "fp32"} and len(meta["files_hash"]) == 64


def test_cached_rerun_scores_like_a_fresh_cache_after_the_test_audio_changed(tmp_path: Path, csv_task: Path) -> None:
    """The issue's report: after overwriting the test wavs with noise the cached rerun still scored 31.7%."""
    from hares.evaluate.run import run_eval

    kw = dict(num_workers=0, progress=False, seeds=(0,), max_epochs=40, patience=40)
    stale = run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "cache", **kw)["results"][0]
    rng = np.random.default_rng(1)
    for wav in sorted(csv_task.parent.glob("*_test_*.wav")):
        n = sf.info(str(wav)).frames
        sf.write(str(wav), (0.3 * rng.standard_normal(n)).astype(np.float32), 16000)
    cached = run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "cache", **kw)["results"][0]
    fresh = run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "fresh", **kw)["results"][0]
    assert cached["cache_key"] == fresh["cache_key"] and cached["score"] == fresh["score"]
    assert cached["seed_scores"] == fresh["seed_scores"] and fresh["score"] < stale["score"] - 20  # noise: ~chance
