"""One data layer: pre-training and evaluation read the same files the same way (labels, BOM, AudioSet rows, decoding).

Each test reads one input through both paths (the evaluation adapter / task and the pre-training source) and
checks they agree, so the drifts the two parsers once had cannot come back.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hares.audio import AudioError, load_audio
from hares.data.adapters.csv_task import read_clip_csv
from hares.data.manifest import Clip
from hares.data.shards import read_shard
from hares.data.sources import DataError, open_source
from hares.tasks import get_task


def write_noise(path: Path, seconds: float = 0.5, sr: int = 16000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32), sr)
    return path


def test_csv_labels_split_on_semicolons_only_with_or_without_bom(tmp_path):
    write_noise(tmp_path / "a.wav")
    write_noise(tmp_path / "b.wav", seed=1)
    write_noise(tmp_path / "c.wav", seed=2)
    text = 'path,labels,split\na.wav,"Male speech, man speaking;dog",train\nb.wav,cat,valid\nc.wav,,test\n'
    for name, encoding in (("plain.csv", "utf-8"), ("bom.csv", "utf-8-sig")):
        (tmp_path / name).write_text(text, encoding=encoding)
        pre = open_source(tmp_path / name).items
        ev = get_task(f"csv:{tmp_path / name}").build_manifest(None)
        for clips in (pre, ev):
            assert [c.labels for c in clips] == [("Male speech, man speaking", "dog"), ("cat",), ()], name
            assert all(isinstance(c, Clip) and Path(c.path).is_file() for c in clips)


def test_csv_segments_and_errors_are_the_same_in_both_paths(tmp_path):
    write_noise(tmp_path / "a.wav", seconds=2.0)
    (tmp_path / "seg.csv").write_text("path,label,start,end\na.wav,x,0.5,1.5\n")
    (clip,) = open_source(tmp_path / "seg.csv").items
    assert (clip.start, clip.end) == (0.5, 1.5)
    assert read_clip_csv(tmp_path / "seg.csv")[0][0] == clip
    (tmp_path / "bad.csv").write_text("path,label,start,end\na.wav,x,1.5,0.5\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: segment 1\.5-0\.5 s is empty"):
        open_source(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"bad\.csv:2: segment 1\.5-0\.5 s is empty"):
        get_task(f"csv:{tmp_path / 'bad.csv'}").build_manifest(None)


def audioset_root(tmp_path: Path, rows: str) -> Path:
    root = tmp_path / "AudioSet"
    root.mkdir(parents=True)
    (root / "class_labels_indices.csv").write_text('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0jbk,"Animal"\n')
    head = "# Segments csv created\n# num_ytids=2\n# YTID, start_seconds, end_seconds, positive_labels\n"
    (root / "balanced_train_segments.csv").write_text(head + rows)
    (root / "eval_segments.csv").write_text(head + 'zyxwvutsrqp, 0.000, 10.000, "/m/0jbk"\n')
    write_noise(root / "audio" / "bal" / "-0123456789.flac")
    write_noise(root / "audios" / "bal" / "YabcdefghijK.wav")  # PANNs naming
    write_noise(root / "audio" / "eval" / "zyxwvutsrqp.flac")
    return root


def test_malformed_audioset_rows_are_errors_in_both_paths(tmp_path):
    good = '-0123456789, 0.000, 10.000, "/m/09x0r"\nabcdefghijK, 0.000, 10.000, "/m/0jbk"\n'
    root = audioset_root(tmp_path / "ok", good)
    pre = open_source(root)
    assert sorted(c.labels for c in pre.items) == [("/m/09x0r",), ("/m/0jbk",)]
    assert pre.label_names == ["/m/09x0r", "/m/0jbk"] and pre.missing == 0
    assert len(get_task("audioset").build_manifest(tmp_path / "ok")) == 3  # 2 train/valid + 1 test
    bad = good + '#NAME?, 0.000, 10.000, "/m/0jbk"\n'
    root = audioset_root(tmp_path / "bad", bad)
    with pytest.raises(DataError, match=r"balanced_train_segments\.csv:6: '#NAME\?' is not a YouTube id"):
        open_source(root)
    with pytest.raises(ValueError, match=r"balanced_train_segments\.csv:6: '#NAME\?' is not a YouTube id"):
        get_task("audioset").build_manifest(tmp_path / "bad")


def test_one_decoder_scales_files_segments_and_shard_bytes_alike(tmp_path):
    sr = 22050
    loud = (1.4 * np.sin(np.arange(sr) / 3.0)).astype(np.float32)  # beyond full scale: a float file can hold it
    sf.write(str(tmp_path / "loud.wav"), np.stack([loud, -loud], axis=1), sr, subtype="FLOAT")
    whole = load_audio(tmp_path / "loud.wav")
    assert whole.dtype == np.float32 and np.abs(whole).max() <= 1.0 and len(whole) == 16000
    blob = (tmp_path / "loud.wav").read_bytes()
    assert np.array_equal(load_audio(blob, name="shard:0.wav"), whole)  # shard members decode the same way
    seg = load_audio(tmp_path / "loud.wav", start=0.25, end=0.75)
    assert abs(len(seg) - 8000) <= 1 and np.abs(seg).max() <= 1.0  # soxr may round up
    with pytest.raises(AudioError, match=r"loud\.wav: segment 2\.0-3\.0 s has zero samples"):
        load_audio(tmp_path / "loud.wav", start=2.0, end=3.0)
    with pytest.raises(AudioError, match="shard:1.flac: cannot decode"):
        load_audio(b"not audio", name="shard:1.flac")


def test_shards_round_trip_through_the_same_clip_type(tmp_path):
    from hares.data.shards import write_shards

    for i in range(3):
        write_noise(tmp_path / "clips" / f"k{i % 2}" / f"{i}.wav", seed=i)
    src = open_source(tmp_path / "clips")
    summary = write_shards(src, tmp_path / "shards", shard_size=2)
    assert [s["count"] for s in summary["shards"]] == [2, 1]
    stream = open_source(tmp_path / "shards")
    assert stream.kind == "shards" and stream.shard_counts == [2, 1] and stream.label_names == ["k0", "k1"]
    name, data, meta = read_shard(stream.shards[0])[0]
    assert name.endswith("000000000.flac") and meta["labels"] == ["k0"]
    np.testing.assert_allclose(load_audio(data, name=name), load_audio(src.items[0].path), atol=1e-4)  # PCM 16
    with tarfile.open(stream.shards[1]) as tar:
        assert sorted(m.name for m in tar) == ["000000002.flac", "000000002.json"]
    assert isinstance(io.BytesIO(data).read(4), bytes)
