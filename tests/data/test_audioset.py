"""AudioSet adapter: segment CSVs with `#` headers and quoted MID lists, missing YouTube clips skipped and counted."""

from __future__ import annotations

import hashlib

import pytest
from fixtures_layouts import AUDIOSET_MIDS, audioset

from hares.data.adapters.audioset import read_class_labels, read_segments
from hares.tasks import get_task


def test_audioset_parsing_quirks(tmp_path):
    d, _ = audioset(tmp_path)
    labels = read_class_labels(d / "class_labels_indices.csv")
    assert list(labels) == list(AUDIOSET_MIDS) and labels["/m/05zppz"] == "Male speech, man speaking"
    rows = read_segments(d / "balanced_train_segments.csv")
    assert len(rows) == 40
    assert rows[2] == ("-b002xyzABC", 30.0, 40.0, ("/m/09x0r", "/m/05zppz", "/m/02zsn"))


def test_audioset_manifest_missing_and_valid(tmp_path):
    d, missing = audioset(tmp_path)
    task = get_task("audioset")
    clips = task.build_manifest(tmp_path)
    assert clips.report["missing"] == missing == {
        "balanced_train_segments.csv": 5, "unbalanced_train_segments.csv": 7, "eval_segments.csv": 1
    }  # fmt: skip
    n = clips.report["clips"]
    assert n["test"] == 9 and n["train"] + n["valid"] == 35 + 53

    # valid = ids whose sha256 falls in the first 5% (independent re-computation)
    def in_valid(ytid: str) -> bool:
        h = hashlib.sha256(f"hares-audioset-valid-v1\x1f{ytid}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < 0.05

    for c in clips:
        ytid = c.path.rsplit("/", 1)[1].rsplit(".", 1)[0]
        ytid = ytid[1:] if "/audios/" in c.path else ytid
        assert (c.split == "valid") == (c.split != "test" and in_valid(ytid))
    eval_clip = next(c for c in clips if c.split == "test")
    assert eval_clip.path.endswith("audios/eval_segments/YYe000abcdef.wav") and eval_clip.labels == ("/m/09x0r",)
    assert task.multilabel and set(task.classes(clips)) <= set(AUDIOSET_MIDS)
    assert any(c.path.endswith("audio/unbal_train/u000_Yzqrst.flac") for c in clips)
    assert len(task.build_manifest(tmp_path, balanced_only=True)) == 35 + 9


def test_audioset_unknown_mid_is_an_error(tmp_path):
    d, _ = audioset(tmp_path)
    f = d / "eval_segments.csv"
    f.write_text(f.read_text().replace('"/m/09x0r', '"/m/nope', 1))
    with pytest.raises(ValueError, match="/m/nope.*not in class_labels_indices"):
        get_task("audioset").build_manifest(tmp_path)
    (d / "class_labels_indices.csv").unlink()
    with pytest.raises(FileNotFoundError, match="class_labels_indices.csv.*research.google.com/audioset"):
        get_task("audioset").build_manifest(tmp_path)
