"""Pre-training data: sources, seeded sampling per rank, crops, corrupt files, shards."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import write_tone
from torch.utils.data import DataLoader

from hares.cli import main
from hares.train.data import (
    ClipDataset,
    DataError,
    ShardStream,
    StepSampler,
    balanced_weights,
    collate,
    detect_format,
    open_source,
    write_shards,
)


def test_folder_is_scanned_recursively_with_subfolder_labels(tone_folder: Path) -> None:
    src = open_source(tone_folder)
    assert src.kind == "folder" and len(src) == 12
    assert src.label_names == ["class0", "class1", "class2", "class3"]
    assert all(it.labels == (Path(it.path).parent.name,) for it in src.items)


def test_empty_folder_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no audio")
    with pytest.raises(DataError, match="no audio files"):
        open_source(tmp_path)


def test_csv_manifest_relative_paths_labels_and_segments(tmp_path: Path, tone_folder: Path) -> None:
    rows = "path,labels,start,end\nclips/class0/clip00.wav,dog;bark,0.0,1.0\nclips/class1/clip01.wav,cat,,\n"
    (tmp_path / "m.csv").write_text(rows)
    src = open_source(tmp_path / "m.csv")
    assert src.kind == "manifest" and src.label_names == ["bark", "cat", "dog"]
    assert src.items[0].labels == ("dog", "bark") and src.items[0].end == 1.0
    assert Path(src.items[1].path).is_file()
    (tmp_path / "bad.csv").write_text("file,label\nx.wav,a\n")
    with pytest.raises(DataError, match="needs a `path` column"):
        open_source(tmp_path / "bad.csv")


def test_audioset_layout(tmp_path: Path) -> None:
    root = tmp_path / "audioset"
    (root / "meta").mkdir(parents=True)
    (root / "class_labels_indices.csv").write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0jbk,"Animal, pet"\n'
    )
    (root / "meta" / "balanced_train_segments.csv").write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=3\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/0jbk"\n'
        'abcdefghijk, 0.000, 10.000, "/m/0jbk"\n'
        'missing1234, 0.000, 10.000, "/m/09x0r"\n'
    )
    write_tone(root / "audio" / "Y--PJHxphWEs.wav", 300.0)  # PANNs naming
    write_tone(root / "audio" / "abcdefghijk.flac", 500.0)  # HF mirror naming
    assert detect_format(root) == "audioset"
    src = open_source(root)
    assert src.label_names == ["/m/09x0r", "/m/0jbk"] and src.missing == 1 and len(src) == 2
    ds = ClipDataset(src.items, src.label_names, 8000, 1, seed=0)
    assert ds[(0, 0)]["target"].tolist() == [1.0, 1.0] and ds[(1, 0)]["target"].tolist() == [0.0, 1.0]


def test_step_sampler_ranks_partition_each_global_batch_and_resume_anywhere() -> None:
    full = StepSampler(10, 4, seed=3)
    it = iter(full)
    global_batches = [next(it) for _ in range(7)]
    ranks = [iter(StepSampler(10, 4, rank=r, world=2, seed=3)) for r in range(2)]
    for gb in global_batches:
        assert next(ranks[0]) + next(ranks[1]) == gb
    # two batches per epoch (10 clips // 4), each a slice of a seeded permutation, no repeats inside an epoch
    assert full.position(5) == {"epoch": 2, "batch_in_epoch": 1, "batches_per_epoch": 2}
    epoch0 = [i for i, e in global_batches[0] + global_batches[1]]
    assert len(set(epoch0)) == 8 and {e for _, e in global_batches[2]} == {1}
    assert next(iter(StepSampler(10, 4, seed=3, start_step=5))) == global_batches[5]
    # fewer clips than a global batch: an epoch concatenates permutations
    small = next(iter(StepSampler(3, 8, seed=0)))
    assert len(small) == 8 and set(i for i, _ in small) == {0, 1, 2}


def test_balanced_weights_favour_rare_labels(tone_folder: Path) -> None:
    src = open_source(tone_folder)
    items = src.items + src.items[:3]  # class0 now has 6 clips, the others 3 each
    w = balanced_weights(items, src.label_names)
    assert src.items[3].labels == ("class1",) and w[0] < w[3] and abs(w.sum() - 1) < 1e-9
    draws = StepSampler(len(items), 4, seed=0, weights=w).order(0)
    assert len(draws) == len(items)


def test_crops_are_a_function_of_seed_epoch_and_index(tone_folder: Path) -> None:
    src = open_source(tone_folder)
    ds = ClipDataset(src.items, src.label_names, crop_samples=4000, views=2, seed=7)
    a, b = ds[(3, 0)], ds[(3, 0)]
    assert a["wav"].shape == (2, 4000) and torch.equal(a["wav"], b["wav"])
    assert not torch.equal(a["wav"][0], a["wav"][1])  # two independent crops
    assert not torch.equal(ds[(3, 1)]["wav"], a["wav"])  # another epoch, other crops
    # short clips are zero-padded to the crop
    assert ds[(0, 0)]["wav"].shape == (2, 4000) and ClipDataset(src.items, [], 40000, 1, 0)[(0, 0)]["wav"].shape == (
        1,
        40000,
    )


def test_same_batches_with_worker_processes(tone_folder: Path) -> None:
    src = open_source(tone_folder)
    ds = ClipDataset(src.items, src.label_names, 2000, 2, seed=1)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(ds, batch_sampler=StepSampler(len(ds), 4, seed=1), collate_fn=collate, num_workers=workers)
        it = iter(loader)
        return [next(it)["wav"] for _ in range(4)]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)


def test_corrupt_files_are_skipped_and_counted(tmp_path: Path, tone_folder: Path) -> None:
    (tone_folder / "class0" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (tone_folder / "class1" / "empty.flac").write_bytes(b"")
    src = open_source(tone_folder)
    assert len(src) == 14
    ds = ClipDataset(src.items, src.label_names, 2000, 1, seed=0)
    bad = [i for i, it in enumerate(src.items) if Path(it.path).stem in ("broken", "empty")]
    with pytest.warns(UserWarning, match="skipping undecodable"):
        sample = ds[(bad[0], 0)]
    assert sample["bad"] >= 1 and sample["wav"].abs().sum() > 0
    assert sum(int(ds[(i, 0)]["bad"]) for i in range(len(ds)) if i not in bad) == 0


def test_all_bad_dataset_fails_clearly(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"bad{i}.wav").write_bytes(b"garbage" * i)
    src = open_source(tmp_path)
    ds = ClipDataset(src.items, src.label_names, 2000, 1, seed=0, max_bad=10)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="could not be decoded.*whole dataset bad"):
        ds[(0, 0)]


def test_write_and_stream_shards(tmp_path: Path, tone_folder: Path) -> None:
    (tone_folder / "class0" / "broken.wav").write_bytes(b"RIFF junk")
    src = open_source(tone_folder)
    summary = write_shards(src, tmp_path / "shards", shard_size=5)
    assert summary["num_samples"] == 12 and summary["skipped"] == 1
    assert [s["count"] for s in summary["shards"]] == [5, 5, 2]
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as tar:
        names = tar.getnames()
    assert names[:2] == ["000000000.flac", "000000000.json"]
    assert not list((tmp_path / "shards").glob(".*tmp"))

    shards = open_source(tmp_path / "shards")
    assert shards.kind == "shards" and len(shards) == 12 and shards.label_names == src.label_names

    def stream(rank: int, start: int, workers: int = 0) -> list[dict]:
        ds = ShardStream(shards, 2000, 2, 3, seed=0, rank=rank, world=2, num_workers=workers, start_step=start)
        it = iter(DataLoader(ds, batch_size=None, num_workers=workers))
        return [next(it) for _ in range(5)]

    r0, r1 = stream(0, 0), stream(1, 0)
    assert r0[0]["wav"].shape == (3, 2, 2000) and r0[0]["target"].shape == (3, 4)
    assert not torch.equal(r0[0]["wav"], r1[0]["wav"])  # ranks read different shards
    for a, b in zip(r0[2:], stream(0, 2)):  # restarting at step 2 gives the same batches
        assert torch.equal(a["wav"], b["wav"]) and torch.equal(a["target"], b["target"])
    w2 = stream(0, 0, workers=2)
    for a, b in zip(w2[1:], stream(0, 1, workers=2)):
        assert torch.equal(a["wav"], b["wav"])


def test_shards_cli(tmp_path: Path, tone_folder: Path, capsys) -> None:
    assert main(["shards", "--data", str(tone_folder), "--out", str(tmp_path / "s"), "--shard-size", "8"]) == 0
    meta = json.loads((tmp_path / "s" / "shards.json").read_text())
    assert meta["num_samples"] == 12 and len(meta["shards"]) == 2
    assert "12 clips in 2 shards" in capsys.readouterr().out
    assert np.isclose(sum(s["count"] for s in meta["shards"]), 12)
